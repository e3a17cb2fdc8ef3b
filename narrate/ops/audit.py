"""An append-only audit log of LLM calls: one JSON object per line, one file per UTC day.

Each call is recorded as ``audit-YYYY-MM-DD.jsonl`` in the audit directory with the time,
request id, endpoint, model, sampling parameters, the SHA-256 of the messages (the
messages themselves only when ``include_messages`` is on), status, latency, token counts,
attempt, cache hit and outcome. Every line is written with one ``os.write`` on a file
opened with ``O_APPEND`` and held under ``flock``, so threads and processes that share
the directory never interleave or lose lines. Registered secrets (``narrate.config.secrets``) are
redacted from every value before it is written. Files older than ``retention_days`` (by
the date in their name) are deleted, at most once a day per process.

Settings: ``NARRATE_AUDIT_DIR``, ``NARRATE_AUDIT_RETENTION_DAYS``,
``NARRATE_AUDIT_INCLUDE_MESSAGES``, ``NARRATE_AUDIT_ENABLED``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from narrate.config.secrets import redact_data
from narrate.config.settings import AuditSettings
from narrate.ops.cache import canonical_json, message_dict

log = logging.getLogger(__name__)

FILE_RE = re.compile(r"audit-(\d{4}-\d{2}-\d{2})\.jsonl")


def messages_sha256(messages: Iterable[Any]) -> str:
    """The hex SHA-256 of the canonical JSON of the messages (dicts or ``ChatMessage``)."""
    return hashlib.sha256(canonical_json([message_dict(m) for m in messages])).hexdigest()


_DATA_URL = re.compile(r"^data:([^;,]*)(?:;[^,]*)?,(.*)$", re.DOTALL)


def _shrink_data_urls(value: Any) -> Any:
    """Replace inline data URLs (base64 images) with their size and digest."""
    if isinstance(value, str):
        match = _DATA_URL.match(value) if value.startswith("data:") else None
        if match is None:
            return value
        payload = match.group(2).encode()
        digest = hashlib.sha256(payload).hexdigest()
        return f"data:{match.group(1)};sha256={digest};bytes={len(payload)}"
    if isinstance(value, dict):
        return {k: _shrink_data_urls(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_shrink_data_urls(v) for v in value]
    return value


def _tokens(value: Any) -> dict[str, int] | None:
    """Token counts from a mapping or a ``Usage``-like object."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return {k: int(value.get(k, 0)) for k in ("prompt", "completion", "total")}
    return {
        "prompt": int(getattr(value, "prompt_tokens", 0)),
        "completion": int(getattr(value, "completion_tokens", 0)),
        "total": int(getattr(value, "total_tokens", 0)),
    }


@dataclass(frozen=True)
class AuditRecord:
    """One LLM call as the audit log records it; every field is optional.

    ``messages`` are hashed into ``messages_sha256`` and only written when the log
    includes messages. ``tokens`` is ``{"prompt", "completion", "total"}`` or a ``Usage``.
    ``status`` is the HTTP status or an error kind (``"timeout"``); ``outcome`` is e.g.
    ``"ok"``, ``"error"``, ``"cache_hit"``.
    """

    request_id: str | None = None
    endpoint: str | None = None
    model: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    messages: tuple[Any, ...] | list[Any] | None = None
    messages_sha256: str | None = None
    status: int | str | None = None
    latency_s: float | None = None
    tokens: Any = None
    attempt: int | None = None
    cache_hit: bool | None = None
    outcome: str | None = None
    error: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    ts: str | None = None


def _utc(now: dt.datetime) -> dt.datetime:
    return now.replace(tzinfo=dt.UTC) if now.tzinfo is None else now.astimezone(dt.UTC)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# Directory -> the UTC day it was last pruned on, shared by every AuditLog in the process.
_pruned_on: dict[Path, dt.date] = {}
_prune_lock = threading.Lock()


class AuditLog:
    """Daily JSON-lines audit files in ``directory``; safe for threads and processes."""

    def __init__(
        self,
        directory: str | Path,
        *,
        retention_days: int = 180,
        include_messages: bool = False,
        clock: Callable[[], dt.datetime] = _now,
    ) -> None:
        if retention_days < 1:
            raise ValueError(f"retention_days must be >= 1, got {retention_days}")
        self.directory = Path(directory)
        self.retention_days = retention_days
        self.include_messages = include_messages
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: AuditSettings) -> AuditLog:
        """An audit log configured by ``settings`` (``enabled`` is not checked here)."""
        return cls(
            settings.dir,
            retention_days=settings.retention_days,
            include_messages=settings.include_messages,
        )

    def path_for(self, day: dt.date) -> Path:
        """The file that holds the records of ``day`` (UTC)."""
        return self.directory / f"audit-{day.isoformat()}.jsonl"

    def _entry(self, rec: AuditRecord, now: dt.datetime) -> dict[str, Any]:
        digest = rec.messages_sha256
        if digest is None and rec.messages is not None:
            digest = messages_sha256(rec.messages)
        entry: dict[str, Any] = {
            "ts": rec.ts or now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "request_id": rec.request_id,
            "endpoint": rec.endpoint,
            "model": rec.model,
            "parameters": dict(rec.parameters),
            "messages_sha256": digest,
        }
        if self.include_messages and rec.messages is not None:
            entry["messages"] = _shrink_data_urls([message_dict(m) for m in rec.messages])
        entry |= {
            "status": rec.status,
            "latency_s": None if rec.latency_s is None else round(rec.latency_s, 6),
            "tokens": _tokens(rec.tokens),
            "attempt": rec.attempt,
            "cache_hit": rec.cache_hit,
            "outcome": rec.outcome,
            "error": rec.error,
        }
        if rec.extra:
            entry["extra"] = dict(rec.extra)
        return redact_data(entry)

    def record(self, rec: AuditRecord | None = None, /, **fields: Any) -> dict[str, Any]:
        """Append one record (an ``AuditRecord``, keyword fields, or both).

        Returns:
            The record as written.

        Raises:
            TypeError: an unknown field name.
        """
        if rec is None:
            rec = AuditRecord(**fields)
        elif fields:
            rec = dataclasses.replace(rec, **fields)
        now = _utc(self._clock())
        entry = self._entry(rec, now)
        line = (json.dumps(entry, ensure_ascii=False, default=str) + "\n").encode("utf-8")
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._maybe_prune(now)
        self._append(self.path_for(now.date()), line)
        return entry

    @staticmethod
    def _append(path: Path, data: bytes) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            view = memoryview(data)
            while view:  # a short write is finished under the same lock
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)  # closing releases the lock

    def prune(self, now: dt.datetime | None = None) -> list[Path]:
        """Delete the daily files dated more than ``retention_days`` before ``now``.

        Only names of the form ``audit-YYYY-MM-DD.jsonl`` are considered; every other file
        is left alone. Returns the deleted paths.
        """
        today = _utc(now or self._clock()).date()
        cutoff = today - dt.timedelta(days=self.retention_days)
        removed: list[Path] = []
        if not self.directory.is_dir():
            return removed
        for path in sorted(self.directory.iterdir()):
            match = FILE_RE.fullmatch(path.name)
            if match is None or not path.is_file():
                continue
            try:
                day = dt.date.fromisoformat(match.group(1))
            except ValueError:
                continue
            if day < cutoff:
                path.unlink(missing_ok=True)
                removed.append(path)
        return removed

    def _maybe_prune(self, now: dt.datetime) -> None:
        key = self.directory.resolve()
        with _prune_lock:
            if _pruned_on.get(key) == now.date():
                return
            _pruned_on[key] = now.date()
        try:
            removed = self.prune(now)
        except OSError as exc:
            log.warning("audit log %s: pruning failed: %s", self.directory, exc)
            return
        if removed:
            log.info("audit log %s: deleted %d expired file(s)", self.directory, len(removed))


class NullAuditLog:
    """An audit log that records nothing (``NARRATE_AUDIT_ENABLED=false``)."""

    def record(self, rec: AuditRecord | None = None, /, **fields: Any) -> dict[str, Any]:
        """Accept and drop the record; returns an empty dict."""
        if rec is None:
            AuditRecord(**fields)  # same TypeError on a misspelt field as AuditLog
        return {}

    def prune(self, now: dt.datetime | None = None) -> list[Path]:
        """Nothing to prune."""
        return []


def open_audit_log(settings: AuditSettings | None = None) -> AuditLog | NullAuditLog:
    """The audit log the settings ask for, or a ``NullAuditLog`` when auditing is off."""
    settings = settings or AuditSettings()
    return AuditLog.from_settings(settings) if settings.enabled else NullAuditLog()
