"""A real, throw-away redis-server on 127.0.0.1 for tests.

``RedisServer()`` picks a free port, runs ``redis-server`` with no persistence in a
temporary directory, waits until it answers PING and stops it on ``stop()`` / context exit::

    with RedisServer() as server:
        RedisCache(server.url)
"""

from __future__ import annotations

import shutil
import socket

from tests.support.server_process import ServerProcess, free_port

__all__ = ["RedisServer", "free_port", "ping", "redis_server_binary"]


def redis_server_binary() -> str | None:
    """The path of ``redis-server``, or None when it is not installed."""
    return shutil.which("redis-server")


def ping(port: int, timeout: float = 0.5) -> bool:
    """True when a Redis server on ``port`` answers PING with PONG."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer(ServerProcess):
    """One redis-server process listening on 127.0.0.1 only."""

    name = "redis-server"
    install_hint = "apt-get install redis-server"

    def __init__(self, *, startup_timeout: float = 10.0) -> None:
        super().__init__(startup_timeout=startup_timeout)

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self, binary: str) -> list[str]:
        """No persistence, no daemon, loopback only."""
        return [
            binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(self.dir), "--daemonize", "no",
        ]  # fmt: skip

    def ready(self) -> bool:
        """PING answers PONG."""
        return ping(self.port)

    def start(self) -> RedisServer:
        """Start the server and wait for PONG; raises RuntimeError if it never answers."""
        super().start()
        return self

    def __enter__(self) -> RedisServer:
        return self.start()
