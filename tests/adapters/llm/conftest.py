"""Fixtures for the LLM adapter tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapters.llm.breaker import reset_breakers
from adapters.llm.ratelimit import reset_buckets


@pytest.fixture(autouse=True)
def _fresh_shared_state() -> Iterator[None]:
    """Circuit breakers and token buckets are process-wide: each test starts with none."""
    reset_breakers()
    reset_buckets()
    yield
    reset_breakers()
    reset_buckets()
