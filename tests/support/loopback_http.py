"""Python's own ``http.server`` on a free loopback port, for tests that need a real HTTP peer."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Callable, Iterator
from typing import Any


@contextlib.contextmanager
def serve(
    handler: Callable[..., http.server.BaseHTTPRequestHandler], tls: Any = None
) -> Iterator[int]:
    """Serve ``handler`` on 127.0.0.1 (behind TLS when given an ``ssl.SSLContext``) in a thread;
    yields the port, and stops the server on exit."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
