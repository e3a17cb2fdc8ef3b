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

    ``fake_llm_factory(script=["503"], latency_s=0.1)`` takes ``FakeLLMServer``'s keyword
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


@pytest.fixture
def llm_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Callable[..., None]]:
    """Point the LLM step at fake servers, with this test's own cache and audit folders.

    ``llm_env(primary, *backups, NARRATE_X="...")`` sends the LLM calls to ``primary`` (the
    others are its backup endpoints), sets any further variables given, and rebuilds the
    describer on the next call.
    """
    from narrate.ops.llm import forget_describers

    def configure(*servers: FakeLLMServer, **extra: str) -> None:
        monkeypatch.setenv("NARRATE_LLM_BACKEND", "openai")
        monkeypatch.setenv("NARRATE_LLM_BASE_URL", servers[0].base_url)
        if len(servers) > 1:
            backups = ",".join(s.base_url for s in servers[1:])
            monkeypatch.setenv("NARRATE_LLM_BACKUP_BASE_URLS", backups)
        monkeypatch.setenv("NARRATE_LLM_RETRY_BASE", "0.05")
        monkeypatch.setenv("NARRATE_CACHE_BACKEND", "sqlite")
        monkeypatch.setenv("NARRATE_CACHE_PATH", str(tmp_path / "cache.sqlite3"))
        monkeypatch.setenv("NARRATE_AUDIT_DIR", str(tmp_path / "audit"))
        for name, value in extra.items():
            monkeypatch.setenv(name, value)
        forget_describers()

    yield configure
    forget_describers()


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
