"""A real ``narrate serve`` (uvicorn on a free loopback port, in a thread) for the service tests.

``serve_api(env)`` sets ``NARRATE_*`` variables, builds the app and the uvicorn server exactly
as ``narrate serve`` does (``create_app`` + ``build_server``), listens on a socket bound to
port 0 and returns a ``Served`` with the base URL; every server is stopped after the test.
Tokens are minted with PyJWT, as an identity provider would.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi_offline", reason="needs the service extra: pip install '.[service]'")
jwt = pytest.importorskip("jwt", reason="needs the service extra: pip install '.[service]'")

from narrate.config.settings import Settings, load_settings  # noqa: E402
from narrate.service.app import create_app  # noqa: E402
from narrate.service.server import build_server  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[3]
SAMPLES = REPO_ROOT / "assets" / "samples"
SECRET = "test-secret-0123456789abcdef-0123456789abcdef"  # >= 32 bytes for HS256


def make_token(
    subject: str = "alice",
    *,
    key: Any = SECRET,
    algorithm: str = "HS256",
    lifetime_s: float = 300,
    **claims: Any,
) -> str:
    """A signed JWT with ``sub``, ``iat`` and ``exp`` (``lifetime_s`` from now) and ``claims``."""
    now = int(time.time())
    payload = {"sub": subject, "iat": now, "exp": now + int(lifetime_s), **claims}
    return jwt.encode(payload, key, algorithm=algorithm)


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Served:
    """A running server: its URL, settings and app; ``stop()`` ends it."""

    url: str
    host: str
    port: int
    settings: Settings
    app: Any
    server: Any
    thread: threading.Thread

    def stop(self) -> None:
        """Ask uvicorn to shut down gracefully and wait for it."""
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture
def serve_api(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Start servers: ``serve_api({"NARRATE_API_MAX_QUEUE": "0"}, host=..., engine=...)``."""
    started: list[Served] = []

    def start(
        env: dict[str, str] | None = None,
        *,
        host: str = "127.0.0.1",
        engine: str = "direct",
        work: Any = None,
    ) -> Served:
        monkeypatch.setenv("NARRATE_LLM_BACKEND", "offline")
        monkeypatch.setenv("NARRATE_API_WORK_DIR", str(tmp_path / f"work{len(started)}"))
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        settings = load_settings()
        app = create_app(settings, engine=engine, work=work)  # type: ignore[arg-type]
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, 0))
        port = sock.getsockname()[1]
        server = build_server(app, host, port, settings.api, log_level="warning")
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        scheme = "https" if settings.api.tls_cert else "http"
        shown = f"[{host}]" if ":" in host else host
        served = Served(f"{scheme}://{shown}:{port}", host, port, settings, app, server, thread)
        started.append(served)
        return served

    yield start
    for served in started:
        served.stop()
