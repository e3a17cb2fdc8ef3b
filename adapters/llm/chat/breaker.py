"""A per-endpoint circuit breaker, shared process-wide.

States::

    closed ──(threshold consecutive failures)──> open ──(cooldown_s passed)──> half-open
      ^                                           ^                              │
      └──────────────── probe succeeded ──────────┼──────── probe failed ────────┘

While open, ``allow()`` is False, so callers skip the endpoint; after the cool-down ONE
caller is let through as a probe (half-open) and its outcome closes or re-opens the circuit.
``shared_breaker(endpoint, ...)`` returns the one breaker of this process for an endpoint.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal

State = Literal["closed", "open", "half-open"]


class CircuitBreaker:
    """Closed -> open after ``threshold`` consecutive failures -> half-open after ``cooldown_s``."""

    def __init__(
        self,
        threshold: int = 3,
        cooldown_s: float = 30.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = max(1, int(threshold))
        self.cooldown_s = float(cooldown_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False
        self.last_failure_at = -float("inf")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(state={self.state!r}, failures={self._failures})"

    @property
    def state(self) -> State:
        """``closed``, ``open`` or ``half-open`` (cool-down over, probe allowed or running)."""
        with self._lock:
            return self._state()

    def _state(self) -> State:
        if self._opened_at is None:
            return "closed"
        if self._probing or self._clock() - self._opened_at >= self.cooldown_s:
            return "half-open"
        return "open"

    def allow(self) -> bool:
        """May a request go to this endpoint now? Claims the probe slot when half-open."""
        with self._lock:
            state = self._state()
            if state == "closed":
                return True
            if state == "open" or self._probing:
                return False
            self._probing = True
            return True

    def record_success(self) -> None:
        """The endpoint answered: close the circuit."""
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._probing = False

    def record_failure(self) -> None:
        """The endpoint failed (unreachable, 503, ...): count it; open or re-open the circuit."""
        with self._lock:
            now = self._clock()
            self.last_failure_at = now
            self._failures += 1
            if self._probing or self._failures >= self.threshold:
                self._opened_at = now
            self._probing = False

    def release(self) -> None:
        """Give back a probe slot claimed by ``allow()`` without an outcome (call abandoned)."""
        with self._lock:
            self._probing = False


_BREAKERS: dict[str, CircuitBreaker] = {}
_BREAKERS_LOCK = threading.Lock()


def shared_breaker(endpoint: str, threshold: int = 3, cooldown_s: float = 30.0) -> CircuitBreaker:
    """The process-wide breaker for ``endpoint``; its threshold and cool-down follow the caller."""
    with _BREAKERS_LOCK:
        breaker = _BREAKERS.get(endpoint)
        if breaker is None:
            breaker = _BREAKERS[endpoint] = CircuitBreaker(threshold, cooldown_s)
        else:
            breaker.threshold = max(1, int(threshold))
            breaker.cooldown_s = float(cooldown_s)
        return breaker


def reset_breakers() -> None:
    """Forget every shared breaker (tests; a process that re-reads its settings)."""
    with _BREAKERS_LOCK:
        _BREAKERS.clear()
