"""A response cache for LLM calls: SQLite on this machine, or Redis shared by workers.

The key is the SHA-256 of the canonical JSON of (model, messages, sampling parameters):
the same request hits the cache whichever endpoint or API key served it. Values are
JSON-serialisable dicts (a completed response). A cache never fails the pipeline: a
broken database or an unreachable Redis logs a warning and behaves as a miss.

``NARRATE_CACHE_BACKEND``: ``auto`` (Redis when ``REDIS_URL`` is set, else SQLite),
``sqlite``, ``redis`` or ``off``; ``NARRATE_CACHE_TTL`` seconds; ``NARRATE_CACHE_PATH``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

from adapters.errors import ConfigError
from narrate.config.secrets import redact, register_secret
from narrate.config.settings import CacheSettings

log = logging.getLogger(__name__)

KEY_PREFIX = "narrate:llm:v1:"
# Request fields that say how or where to send, not what to answer: never part of the key.
TRANSPORT_PARAMS = frozenset(
    {"api_key", "base_url", "endpoint", "timeout", "headers", "extra_headers", "stream"}
)


def canonical_json(value: Any) -> bytes:
    """One byte string per JSON value: sorted keys, no spaces, UTF-8."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def message_dict(message: Any) -> Any:
    """A chat message as a dict: ``ChatMessage.to_dict()``, or the dict itself."""
    to_dict = getattr(message, "to_dict", None)
    return to_dict() if callable(to_dict) else message


def cache_key(model: str, messages: Iterable[Any], params: Mapping[str, Any] | None = None) -> str:
    """The cache key of a chat request; endpoint, API key, timeout and stream are ignored.

    ``messages`` are dicts or objects with ``to_dict()`` (``ChatMessage``); ``params`` the
    sampling parameters (temperature, top_p, max_tokens, ...).
    """
    sampling = {k: v for k, v in (params or {}).items() if k not in TRANSPORT_PARAMS}
    request = {"model": model, "messages": [message_dict(m) for m in messages], "params": sampling}
    return KEY_PREFIX + hashlib.sha256(canonical_json(request)).hexdigest()


@dataclass(frozen=True)
class CacheStats:
    """Counters since the cache was opened."""

    hits: int = 0
    misses: int = 0
    sets: int = 0
    errors: int = 0


@runtime_checkable
class ResponseCache(Protocol):
    """Where completed responses are kept between calls."""

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored value, or None when absent, expired or unreachable."""
        ...

    def set(self, key: str, value: dict[str, Any], ttl_s: float) -> None:
        """Store ``value`` for ``ttl_s`` seconds."""
        ...

    def clear(self) -> None:
        """Drop every entry this cache holds."""
        ...

    @property
    def stats(self) -> CacheStats:
        """Hits, misses, sets and errors so far."""
        ...


class _Counters:
    """Thread-safe counters behind ``stats``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values = {"hits": 0, "misses": 0, "sets": 0, "errors": 0}

    def add(self, name: str) -> None:
        with self._lock:
            self._values[name] += 1

    def snapshot(self) -> CacheStats:
        with self._lock:
            return CacheStats(**self._values)


class _CountingCache:
    """What every cache shares: its counters and the ``stats`` read from them."""

    def __init__(self) -> None:
        self._counters = _Counters()

    @property
    def stats(self) -> CacheStats:
        """Hits, misses, sets and errors so far."""
        return self._counters.snapshot()


def _encode(value: dict[str, Any]) -> str:
    if not isinstance(value, dict):
        raise TypeError(f"cache values are dicts, got {type(value).__name__}")
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


class NullCache(_CountingCache):
    """A cache that stores nothing (``NARRATE_CACHE_BACKEND=off``)."""

    def get(self, key: str) -> dict[str, Any] | None:
        """Always a miss."""
        self._counters.add("misses")
        return None

    def set(self, key: str, value: dict[str, Any], ttl_s: float) -> None:
        """Forget ``value`` at once."""
        _encode(value)

    def clear(self) -> None:
        """Nothing to clear."""

    def close(self) -> None:
        """Nothing to close."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    expires_at REAL NOT NULL
)
"""


class SQLiteCache(_CountingCache):
    """An embedded cache in one SQLite file (WAL): safe across threads and processes.

    Each thread uses its own connection. Entries expire by the stored expiry time; expired
    rows are deleted when read and swept now and then on writes. ``clock`` (seconds, like
    ``time.time``) is injectable for tests.
    """

    SWEEP_EVERY = 200  # writes between sweeps of expired rows

    def __init__(self, path: str | Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self._clock = clock
        self._local = threading.local()
        super().__init__()
        self._writes = 0
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        conn = self._connection()
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(_SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=10.0, isolation_level=None, check_same_thread=False
            )  # used by its own thread only; close() may run elsewhere
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _failed(self, action: str, exc: sqlite3.Error) -> None:
        self._counters.add("errors")
        log.warning("response cache %s: %s failed (%s); treating as a miss", self.path, action, exc)

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored value when present and not expired, else None."""
        try:
            conn = self._connection()
            row = conn.execute(
                "SELECT value, expires_at FROM responses WHERE key = ?", (key,)
            ).fetchone()
            if row is not None and row[1] <= self._clock():
                conn.execute(
                    "DELETE FROM responses WHERE key = ? AND expires_at <= ?", (key, row[1])
                )
                row = None
        except sqlite3.Error as exc:
            self._failed("get", exc)
            self._counters.add("misses")
            return None
        if row is None:
            self._counters.add("misses")
            return None
        self._counters.add("hits")
        return json.loads(row[0])

    def set(self, key: str, value: dict[str, Any], ttl_s: float) -> None:
        """Store ``value`` until ``ttl_s`` seconds from now (replacing an older entry)."""
        text = _encode(value)
        now = self._clock()
        try:
            conn = self._connection()
            conn.execute(
                "INSERT OR REPLACE INTO responses (key, value, expires_at) VALUES (?, ?, ?)",
                (key, text, now + ttl_s),
            )
            self._counters.add("sets")
            with self._lock:
                self._writes += 1
                sweep = self._writes % self.SWEEP_EVERY == 0
            if sweep:
                conn.execute("DELETE FROM responses WHERE expires_at <= ?", (now,))
        except sqlite3.Error as exc:
            self._failed("set", exc)

    def clear(self) -> None:
        """Delete every entry."""
        try:
            self._connection().execute("DELETE FROM responses")
        except sqlite3.Error as exc:
            self._failed("clear", exc)

    def close(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self._local = threading.local()


class RedisCache(_CountingCache):
    """A cache in Redis (``SET ... PX``), shared by every worker that uses the same URL.

    Keys are stored under ``prefix``. When Redis cannot be reached the cache logs one
    warning, answers misses and skips Redis for ``retry_interval_s`` seconds, so an outage
    costs at most one connection timeout per interval.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "narrate:cache:",
        socket_timeout_s: float = 1.0,
        retry_interval_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        try:
            import redis
        except ImportError as exc:
            raise ConfigError(
                "the redis cache needs redis-py: pip install 'narrate[redis]'"
            ) from exc
        password = urlsplit(url).password
        if password:
            register_secret(password)
        self._redis_error: type[Exception] = redis.RedisError
        try:
            self._client = redis.Redis.from_url(
                url, socket_timeout=socket_timeout_s, socket_connect_timeout=socket_timeout_s
            )
        except ValueError as exc:
            raise ConfigError(f"invalid redis URL: {redact(str(exc))}") from None
        self.url = url
        self.prefix = prefix
        self.retry_interval_s = retry_interval_s
        self._clock = clock
        self._down_until = 0.0
        self._down_lock = threading.Lock()
        super().__init__()

    def _available(self) -> bool:
        return self._clock() >= self._down_until

    def _failed(self, action: str, exc: Exception) -> None:
        self._counters.add("errors")
        with self._down_lock:
            first = self._down_until == 0.0 or self._clock() >= self._down_until
            self._down_until = self._clock() + self.retry_interval_s
        if first:
            log.warning(
                "response cache: redis %s failed (%s); caching off for %.0f s",
                action,
                exc,
                self.retry_interval_s,
            )

    def _recovered(self) -> None:
        if self._down_until:
            with self._down_lock:
                self._down_until = 0.0

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored value, or None when absent, expired or Redis is unreachable."""
        raw = None
        if self._available():
            try:
                raw = self._client.get(self.prefix + key)
                self._recovered()
            except self._redis_error as exc:
                self._failed("get", exc)
        if raw is None:
            self._counters.add("misses")
            return None
        self._counters.add("hits")
        return json.loads(raw)

    def set(self, key: str, value: dict[str, Any], ttl_s: float) -> None:
        """Store ``value`` with an expiry of ``ttl_s`` seconds (millisecond precision)."""
        text = _encode(value)
        if not self._available():
            return
        try:
            self._client.set(self.prefix + key, text, px=max(1, round(ttl_s * 1000)))
            self._counters.add("sets")
            self._recovered()
        except self._redis_error as exc:
            self._failed("set", exc)

    def clear(self) -> None:
        """Delete every key under ``prefix`` (other keys in the database are left alone)."""
        try:
            batch: list[bytes] = []
            for name in self._client.scan_iter(match=self.prefix + "*", count=500):
                batch.append(name)
                if len(batch) >= 500:
                    self._client.delete(*batch)
                    batch.clear()
            if batch:
                self._client.delete(*batch)
        except self._redis_error as exc:
            self._failed("clear", exc)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


def open_cache(settings: CacheSettings | None = None) -> ResponseCache:
    """The cache the settings ask for; a SQLite file that cannot be opened gives a NullCache.

    ``backend=redis`` without a URL is a ``ConfigError``; ``auto`` with ``REDIS_URL`` but no
    redis-py installed falls back to SQLite with a warning.
    """
    settings = settings or CacheSettings()
    backend = settings.resolved_backend
    if backend == "off":
        return NullCache()
    if backend == "redis":
        if not settings.redis_url:
            raise ConfigError("NARRATE_CACHE_BACKEND=redis needs REDIS_URL")
        try:
            return RedisCache(settings.redis_url)
        except ConfigError:
            if settings.backend == "redis":
                raise
            log.warning("REDIS_URL is set but redis-py is missing; caching in SQLite")
    try:
        return SQLiteCache(settings.path)
    except (OSError, sqlite3.Error) as exc:
        log.warning("response cache %s cannot be opened (%s); caching off", settings.path, exc)
        return NullCache()
