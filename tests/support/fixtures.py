"""Shared pytest fixtures (registered in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.bad_inputs import BAD_IMAGES, write_bad_image
from tests.support.fake_llm import FakeLLMServer
from tests.support.word_images import use_fake_llm


@pytest.fixture
def fake_llm() -> Iterator[FakeLLMServer]:
    """A fresh fake OpenAI-compatible server on 127.0.0.1 (hangs last 3 s at most)."""
    with FakeLLMServer(hang_seconds=3.0) as server:
        yield server


@pytest.fixture
def counted_llm(monkeypatch: pytest.MonkeyPatch, fake_llm: FakeLLMServer) -> FakeLLMServer:
    """The loopback fake LLM server, answering every LLM call of the test uncached and
    unthrottled (``use_fake_llm``), so its ``requests`` count the real calls."""
    use_fake_llm(monkeypatch, fake_llm)
    return fake_llm


@pytest.fixture
def fake_llm_factory() -> Iterator[Callable[..., FakeLLMServer]]:
    """Start any number of fake servers (e.g. one per region); all are stopped afterwards.

    ``fake_llm_factory(script=["503"], latency=0.1)`` takes ``FakeLLMServer``'s keyword
    arguments and returns a running server.
    """
    servers: list[FakeLLMServer] = []

    def start(**kwargs: Any) -> FakeLLMServer:
        kwargs.setdefault("hang_seconds", 3.0)
        server = FakeLLMServer(**kwargs).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def metrics_url() -> Iterator[str]:
    """narrate's /metrics served on a free loopback port, as ``narrate metrics`` would."""
    from narrate.ops import metrics

    server, thread = metrics.start_metrics_server(0, "127.0.0.1")
    yield f"http://127.0.0.1:{server.server_port}/metrics"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(params=sorted(BAD_IMAGES))
def bad_image(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A missing, an empty and a non-image "image" file in turn (``tests.images.BAD_IMAGES``)."""
    return write_bad_image(tmp_path, request.param)
