"""An OpenAI-compatible chat server on loopback that speaks HTTP/2 (hypercorn, TLS + ALPN).

Hypercorn is a real HTTP/2 server (on the h2 library, like httpx's client side), so this
tests and benchmarks narrate's HTTP/2 path against a server we did not write. TLS uses a CA
made on the fly with trustme: ``server.ca_path`` is the PEM file a client must trust.
``connections`` counts the TCP connections the server accepted (via the ASGI scope's
client address, one per port).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trustme

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class H2ChatServer:
    """Chat completions over HTTPS with HTTP/2 offered through ALPN (``h2``, ``http/1.1``)."""

    def __init__(self, workdir: Path, *, reply: str = "A short answer.", latency_s: float = 0.0):
        self.workdir = Path(workdir)
        self.reply = reply
        self.latency_s = latency_s
        self.port = free_port()
        self.requests: list[dict[str, Any]] = []
        self.peers: set[tuple[str, int]] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.ca = trustme.CA()
        cert = self.ca.issue_cert("127.0.0.1", "localhost")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.ca_path = self.workdir / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_path))
        self.cert_path = self.workdir / "server.pem"
        self.key_path = self.workdir / "server.key"
        cert.cert_chain_pems[0].write_to_path(str(self.cert_path))
        for pem in cert.cert_chain_pems[1:]:
            pem.write_to_path(str(self.cert_path), append=True)
        cert.private_key_pem.write_to_path(str(self.key_path))

    @property
    def base_url(self) -> str:
        """``https://127.0.0.1:PORT/v1``."""
        return f"https://127.0.0.1:{self.port}/v1"

    @property
    def connections(self) -> int:
        """TCP connections seen (distinct client ports)."""
        with self._lock:
            return len(self.peers)

    def __enter__(self) -> H2ChatServer:
        from hypercorn.asyncio import serve
        from hypercorn.config import Config

        config = Config()
        config.bind = [f"127.0.0.1:{self.port}"]
        config.certfile = str(self.cert_path)
        config.keyfile = str(self.key_path)
        config.alpn_protocols = ["h2", "http/1.1"]
        config.accesslog = None
        config.errorlog = None
        config.keep_alive_timeout = 60
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._stop = asyncio.Event()
            stop = self._stop

            async def main() -> None:
                ready.set()
                await serve(self.app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]

            loop.run_until_complete(main())
            loop.close()

        self._thread = threading.Thread(target=run, name="h2-chat-server", daemon=True)
        self._thread.start()
        ready.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # wait until it accepts connections
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.02)
        raise RuntimeError("hypercorn did not start")

    def __exit__(self, *exc_info: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI app: ``POST /v1/chat/completions`` (plain or streamed), ``GET /v1/models``."""
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        client = scope.get("client") or ("?", 0)
        with self._lock:
            self.peers.add((str(client[0]), int(client[1])))
        if scope["path"] == "/v1/models":
            await _json(send, 200, {"object": "list", "data": [{"id": "qwen3-max"}]})
            return
        if scope["path"] != "/v1/chat/completions":
            await _json(send, 404, {"error": {"message": "not found", "code": "not_found"}})
            return
        request = json.loads(body or b"{}")
        with self._lock:
            self.requests.append({"http_version": scope.get("http_version"), **request})
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        model = request.get("model", "qwen3-max")
        if not request.get("stream"):
            choice = {"index": 0, "message": {"role": "assistant", "content": self.reply},
                      "finish_reason": "stop"}  # fmt: skip
            usage = {"prompt_tokens": 5, "completion_tokens": 4}
            reply = {"id": "h2", "model": model, "choices": [choice], "usage": usage}
            await _json(send, 200, reply)
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})  # fmt: skip
        for word in self.reply.split(" "):
            chunk = {"id": "h2", "model": model,
                     "choices": [{"index": 0, "delta": {"content": word + " "}}]}  # fmt: skip
            event = f"data: {json.dumps(chunk)}\n\n".encode()
            await send({"type": "http.response.body", "body": event, "more_body": True})
        end = {
            "id": "h2",
            "model": model,
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        }
        await send({"type": "http.response.body",
                    "body": f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode()})  # fmt: skip


async def _json(send: Send, status: int, data: Any) -> None:
    payload = json.dumps(data).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": payload})
