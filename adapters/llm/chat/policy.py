"""The resilience policy: one frozen object, and the pure functions that apply it.

``ResiliencePolicy`` holds every number the resilient client obeys (built once from the
settings, in ``narrate``'s ops layer). ``next_step(error)`` says what a failed attempt leads
to and ``retry_delay(...)`` how long to wait: both are pure, so they are table-tested.

The policy follows the OpenAI SDK's (retry 408/409/429/5xx and connection errors with
capped exponential back-off) with two differences: the jitter is "full jitter"
(https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/) and out-of-credit
429s are not retried.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from adapters.llm.chat.errors import (
    ChatError,
    ChatPermanentError,
    ModelNotFoundError,
)

FAILOVER_STATUS = frozenset({502, 503, 504})
Continuation = Literal["auto", "partial", "portable"]
Step = Literal["retry", "failover", "next_model", "fail"]


@dataclass(frozen=True)
class ResiliencePolicy:
    """How hard the client tries, and how fast.

    Attributes:
        timeout_s: seconds for one HTTP request (shrunk to the time left of the deadline).
        deadline_s: seconds for a whole call, waits included.
        max_retries: retries per model after its first attempt.
        retry_base_s: the first back-off ceiling; it doubles per retry up to ``retry_cap_s``.
        retry_cap_s: the largest back-off ceiling.
        qps: requests per second (per process, or shared through Redis); 0 = no limit.
        burst: requests allowed at once before ``qps`` applies.
        breaker_threshold: failures in a row that open an endpoint's circuit.
        breaker_cooldown_s: seconds before an open circuit lets a probe through.
        max_continuations: requests that may continue an answer cut short.
        continuation: ``partial`` (Model Studio's partial mode), ``portable`` (the text so
            far as an assistant turn plus "continue"), or ``auto`` (partial on Model Studio
            hosts, portable elsewhere).
    """

    timeout_s: float = 60.0
    deadline_s: float = 120.0
    max_retries: int = 4
    retry_base_s: float = 0.5
    retry_cap_s: float = 8.0
    qps: float = 5.0
    burst: int = 5
    breaker_threshold: int = 3
    breaker_cooldown_s: float = 30.0
    max_continuations: int = 2
    continuation: Continuation = "auto"

    def __post_init__(self) -> None:
        if self.timeout_s <= 0 or self.deadline_s <= 0:
            raise ValueError("timeout_s and deadline_s must be > 0")
        if self.max_retries < 0 or self.max_continuations < 0 or self.burst < 1:
            raise ValueError("max_retries and max_continuations must be >= 0, burst >= 1")
        if self.continuation not in ("auto", "partial", "portable"):
            raise ValueError(f"continuation must be auto, partial or portable: {self.continuation}")


def next_step(error: ChatError) -> Step:
    """What a failed attempt leads to.

    Args:
        error: the attempt's error.

    Returns:
        ``next_model`` for an unknown model, ``fail`` for any other permanent error,
        ``failover`` (another endpoint) for 502/503/504 and transport failures, ``retry``
        (same endpoint, after a wait) for the other transient errors (408, 429, 500, ...).
    """
    if isinstance(error, ModelNotFoundError):
        return "next_model"
    if isinstance(error, ChatPermanentError):
        return "fail"
    if error.status_code is None or error.status_code in FAILOVER_STATUS:
        return "failover"
    return "retry"


def backoff_delay(n: int, *, base: float, cap: float, draw: float) -> float:
    """Full-jitter delay before retry ``n`` (0-based) for a uniform ``draw`` in [0, 1).

    Returns:
        ``draw * min(cap, base * 2**n)`` seconds.
    """
    return draw * min(cap, base * 2 ** min(n, 60))


def retry_delay(
    n: int, policy: ResiliencePolicy, *, draw: float, retry_after_s: float | None = None
) -> float:
    """Seconds to wait before retry ``n``: full jitter, never less than ``retry_after_s``."""
    delay = backoff_delay(n, base=policy.retry_base_s, cap=policy.retry_cap_s, draw=draw)
    return delay if retry_after_s is None else max(delay, retry_after_s)
