"""Fixtures of the flow tests."""

from __future__ import annotations

import pytest

from tests.support.fake_llm import FakeLLMServer
from tests.support.word_images import use_fake_llm


@pytest.fixture
def counted_llm(monkeypatch: pytest.MonkeyPatch, fake_llm: FakeLLMServer) -> FakeLLMServer:
    """The loopback fake LLM server, answering every LLM call of the test uncached and
    unthrottled (``use_fake_llm``), so its ``requests`` count the real calls."""
    use_fake_llm(monkeypatch, fake_llm)
    return fake_llm
