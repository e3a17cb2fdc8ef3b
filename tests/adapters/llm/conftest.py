"""Fixtures for the LLM adapter tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapters.llm.chat.breaker import reset_breakers
from adapters.llm.chat.ratelimit import reset_buckets
from adapters.llm.chat.resilient import reset_continuation_probes


@pytest.fixture(autouse=True)
def _fresh_shared_state() -> Iterator[None]:
    """Breakers, token buckets and server probes are process-wide: each test starts afresh."""
    reset_breakers()
    reset_buckets()
    reset_continuation_probes()
    yield
    reset_breakers()
    reset_buckets()
    reset_continuation_probes()
