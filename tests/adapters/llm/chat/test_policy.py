"""The resilience policy: what a failure leads to and how long to wait, table-tested."""

from __future__ import annotations

import pytest

from adapters.llm.chat.errors import (
    ChatError,
    ChatPermanentError,
    ChatTransientError,
    ContextLengthError,
    ModelNotFoundError,
)
from adapters.llm.chat.policy import ResiliencePolicy, backoff_delay, next_step, retry_delay


@pytest.mark.parametrize(
    ("error", "step"),
    [
        (ModelNotFoundError("m", status_code=404), "next_model"),
        (ContextLengthError("c", status_code=400), "fail"),
        (ChatPermanentError("p", status_code=401), "fail"),
        (ChatTransientError("reset"), "failover"),
        (ChatTransientError("503", status_code=503), "failover"),
        (ChatTransientError("502", status_code=502), "failover"),
        (ChatTransientError("429", status_code=429), "retry"),
        (ChatTransientError("500", status_code=500), "retry"),
        (ChatTransientError("408", status_code=408), "retry"),
    ],
)
def test_next_step(error: ChatError, step: str) -> None:
    assert next_step(error) == step


@pytest.mark.parametrize(
    ("n", "draw", "retry_after_s", "delay"),
    [
        (0, 0.5, None, 0.25),
        (1, 1.0, None, 1.0),
        (3, 1.0, None, 4.0),
        (10, 1.0, None, 8.0),  # capped
        (0, 0.0, 2.5, 2.5),  # never less than Retry-After
        (2, 0.5, 0.1, 1.0),
    ],
)
def test_retry_delay(n: int, draw: float, retry_after_s: float | None, delay: float) -> None:
    policy = ResiliencePolicy(retry_base_s=0.5, retry_cap_s=8.0)
    assert retry_delay(n, policy, draw=draw, retry_after_s=retry_after_s) == pytest.approx(delay)
    assert backoff_delay(n, base=0.5, cap=8.0, draw=draw) <= 8.0


def test_policy_is_frozen_and_checked() -> None:
    policy = ResiliencePolicy()
    with pytest.raises(AttributeError):
        policy.max_retries = 9  # type: ignore[misc]
    with pytest.raises(ValueError, match="continuation"):
        ResiliencePolicy(continuation="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ResiliencePolicy(burst=0)
