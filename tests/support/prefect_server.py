"""A real ``prefect server`` on a free loopback port, for tests and benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

PREFECT = str(Path(sys.executable).with_name("prefect"))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(process: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    """Terminate ``process``; kill it when it has not exited after ``timeout_s``."""
    process.terminate()
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:  # a loaded machine: it may not stop in time
        process.kill()
        process.wait()


@contextmanager
def prefect_server(home: Path, startup_timeout_s: float = 180) -> Iterator[dict[str, str]]:
    """Start ``prefect server start`` with ``PREFECT_HOME=home``; stop it at the end.

    Args:
        home: the server's own PREFECT_HOME (its SQLite database and log go there).
        startup_timeout_s: how long to wait for ``/api/health``.

    Yields:
        An environment for clients: the caller's without any ``PREFECT_*`` or ``NARRATE_*``
        variable, plus ``PREFECT_HOME``, ``PREFECT_API_URL`` and telemetry off.

    Raises:
        RuntimeError: the server exited or did not become healthy in time (its log's tail).
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "NARRATE_"))}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_LEVEL="WARNING",
    )
    log_path = home / "server.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        env["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"
        try:
            deadline = time.monotonic() + startup_timeout_s
            while True:
                try:
                    health = httpx.get(f"{env['PREFECT_API_URL']}/health", timeout=2)
                    if health.status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "prefect server did not start:\n" + log_path.read_text()[-2000:]
                    )
                time.sleep(0.5)
            yield env
        finally:
            stop(server)
