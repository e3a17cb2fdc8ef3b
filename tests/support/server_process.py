"""A throw-away server process on a free 127.0.0.1 port, for tests.

``ServerProcess`` runs ``command()`` in a temporary directory, its output going to a log file
there, retries on another port when the one picked was taken meanwhile, waits until
``ready()`` and stops the process on ``stop()`` / context exit. Subclasses say what to run
and how to tell it is ready (``RedisServer``, ``Prometheus``, ``Pushgateway``).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(process: subprocess.Popen[bytes] | None, *, timeout_s: float) -> None:
    """Terminate ``process`` if it still runs; kill it after ``timeout_s`` seconds."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


class ServerProcess:
    """One server process listening on 127.0.0.1 only; ``name`` is its program."""

    name = ""
    install_hint = ""

    def __init__(self, *, startup_timeout: float = 60.0) -> None:
        self.startup_timeout = startup_timeout
        self.port = 0
        self.dir = Path()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def log_path(self) -> Path:
        """Where the server's output goes."""
        return self.dir / f"{self.name}-{self.port}.log"

    def command(self, binary: str) -> list[str]:
        """The command line for ``self.port`` in ``self.dir``."""
        raise NotImplementedError

    def ready(self) -> bool:
        """True once the server answers."""
        raise NotImplementedError

    def start(self) -> Any:
        """Start the server and wait until it is ready; RuntimeError if it never is."""
        binary = shutil.which(self.name)
        if binary is None:
            raise RuntimeError(f"{self.name} is not installed ({self.install_hint})")
        self._tmp = tempfile.TemporaryDirectory(prefix=f"narrate-{self.name}-")
        self.dir = Path(self._tmp.name)
        for _ in range(5):  # another process may take the port between pick and bind
            self.port = free_port()
            self._log = self.log_path.open("ab")
            self._process = subprocess.Popen(
                self.command(binary), stdout=self._log, stderr=subprocess.STDOUT
            )
            deadline = time.monotonic() + self.startup_timeout
            while time.monotonic() < deadline and self._process.poll() is None:
                if self.ready():
                    return self
                time.sleep(0.05)
            self._kill()
        raise RuntimeError(f"{self.name} did not get ready; see {self.dir}")

    def _kill(self) -> None:
        process, self._process = self._process, None
        stop_process(process, timeout_s=20)
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self) -> None:
        """Stop the server and delete its directory."""
        self._kill()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
