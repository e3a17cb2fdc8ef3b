"""Client-side rate limiting: a token bucket (requests per second + burst) per process.

``TokenBucket`` hands out tokens at ``qps`` per second and holds at most ``burst`` of them.
It reserves tokens under a lock (a negative balance is a queue of reservations), so callers
are served in arrival order and, over any window of ``t`` seconds, at most
``burst + qps * t`` acquisitions complete. Threads call ``acquire()`` (it sleeps), asyncio
code awaits ``acquire_async()`` (it awaits ``asyncio.sleep``); both draw on the same tokens.

``shared_bucket(key, qps, burst)`` returns the ONE bucket of this process for ``key`` (e.g.
the endpoint list and the model), so every ``ResilientChatClient`` with the same key, in any
thread or event loop, shares one limit. ``qps <= 0`` means unlimited.

``RedisTokenBucket`` keeps the same bucket in Redis, updated by one atomic Lua script, so
every process and Prefect worker pointed at the same Redis and key shares one limit.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, Protocol


class RateLimiter(Protocol):
    """Hands out permission to send one request."""

    def acquire(self, max_wait_s: float = math.inf) -> bool:
        """Wait for a token.

        Args:
            max_wait_s: the longest wait, in seconds, worth accepting.

        Returns:
            True once a token is taken; False at once (nothing taken) when the wait would
            exceed ``max_wait_s``.
        """
        ...


class _Reserving:
    """``acquire`` on top of a ``reserve`` that books a token and says how long to wait."""

    _sleep: Callable[[float], None]

    def reserve(self, max_wait_s: float = math.inf) -> float | None:  # pragma: no cover
        """Book a token; the seconds to wait before using it, or None (nothing booked)."""
        raise NotImplementedError

    def acquire(self, max_wait_s: float = math.inf) -> bool:
        """Wait for a token; False at once (nothing taken) if that would take > ``max_wait_s``."""
        wait = self.reserve(max_wait_s)
        if wait is None:
            return False
        if wait > 0:
            self._sleep(wait)
        return True


class TokenBucket(_Reserving):
    """Thread-safe token bucket; ``qps`` tokens per second, at most ``burst`` banked."""

    def __init__(
        self,
        qps: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep
        self.qps = float(qps)
        self.burst = max(1, int(burst))
        self._tokens = float(self.burst)
        self._updated = clock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(qps={self.qps:g}, burst={self.burst})"

    @property
    def unlimited(self) -> bool:
        """True when the bucket never makes anyone wait (``qps <= 0``)."""
        return self.qps <= 0

    def configure(self, qps: float, burst: int) -> None:
        """Change the rate and burst in place (banked tokens are kept, up to the new burst)."""
        with self._lock:
            self._refill()
            self.qps = float(qps)
            self.burst = max(1, int(burst))
            self._tokens = min(self._tokens, float(self.burst))

    def reserve(self, max_wait_s: float = math.inf) -> float | None:
        """Take a token and say how long to wait before using it.

        Returns:
            The seconds to wait, or None (nothing taken) when that wait would exceed
            ``max_wait_s``.
        """
        if self.unlimited:
            return 0.0
        with self._lock:
            self._refill()
            wait = 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.qps
            if wait > max_wait_s:
                return None
            self._tokens -= 1
            return wait

    async def acquire_async(self, max_wait_s: float = math.inf) -> bool:
        """``acquire`` for asyncio: awaits instead of blocking the event loop."""
        wait = self.reserve(max_wait_s)
        if wait is None:
            return False
        if wait > 0:
            await asyncio.sleep(wait)
        return True

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._updated = now
        if self.qps > 0:
            self._tokens = min(float(self.burst), self._tokens + elapsed * self.qps)


_BUCKETS: dict[Hashable, TokenBucket] = {}
_BUCKETS_LOCK = threading.Lock()


def shared_bucket(key: Hashable, qps: float, burst: int) -> TokenBucket:
    """The process-wide bucket for ``key``; created on first use, re-configured if changed."""
    with _BUCKETS_LOCK:
        bucket = _BUCKETS.get(key)
        if bucket is None:
            bucket = _BUCKETS[key] = TokenBucket(qps, burst)
        elif bucket.qps != float(qps) or bucket.burst != max(1, int(burst)):
            bucket.configure(qps, burst)
        return bucket


def reset_buckets() -> None:
    """Forget every shared bucket (tests; a process that re-reads its settings)."""
    with _BUCKETS_LOCK:
        _BUCKETS.clear()


# The same reservation bucket, kept in Redis and updated atomically by one Lua script, so
# every process and worker that names the same key draws on one limit. The clock is Redis's
# own (TIME), so the workers' clocks need not agree.
_REDIS_BUCKET_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens < 1 then
  wait = (1 - tokens) / rate
end
if wait > max_wait then
  return '-1'
end
tokens = tokens - 1
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate + wait) + 60)
return tostring(wait)
"""


class RedisTokenBucket(_Reserving):
    """A token bucket shared by every process through Redis (atomic Lua script).

    Same contract as ``TokenBucket``: at most ``burst + qps * t`` acquisitions complete in
    any ``t`` seconds, now summed over every process using ``key``.
    """

    def __init__(
        self,
        redis_client: Any,
        key: str,
        qps: float,
        burst: int = 1,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.key = key
        self.qps = float(qps)
        self.burst = max(1, int(burst))
        self._sleep = sleep
        self._script = redis_client.register_script(_REDIS_BUCKET_LUA)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(key={self.key!r}, qps={self.qps:g}, burst={self.burst})"

    def reserve(self, max_wait_s: float = math.inf) -> float | None:
        """Take a token; the seconds to wait before using it, or None (nothing taken)."""
        if self.qps <= 0:
            return 0.0
        limit = min(max_wait_s, 1e9)
        wait = float(self._script(keys=[self.key], args=[self.qps, self.burst, limit]))
        return None if wait < 0 else wait
