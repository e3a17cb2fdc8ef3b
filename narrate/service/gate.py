"""The ASGI middleware every request passes first: address, token, size, queue, audit.

In order, before the application reads a byte of the body:

1. the source address (``AddressPolicy``): outside the allowlist -> 403;
2. on ``/v1/*``, the bearer token (``TokenVerifier``): missing or bad -> 401 with
   ``WWW-Authenticate: Bearer``; the verified ``Caller`` goes into ``scope["state"]``;
3. the body size: a ``Content-Length`` over the limit -> 413 at once; a body that grows
   over it while streaming (chunked) is cut off there and answered 413;
4. on the routes that queue work, a full queue -> 503 with ``Retry-After``.

Every ``/v1/*`` request, and every refused one, becomes one audit record (time, caller
subject, source address, route, status, latency, the error's one line) in narrate's audit
log. The token itself is never recorded.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import KW_ONLY, dataclass
from typing import Any

import anyio
from starlette.datastructures import Headers

from narrate.ops.audit import AuditLog, NullAuditLog
from narrate.service import telemetry
from narrate.service.access import (
    LOCAL_CALLER,
    AddressPolicy,
    AuthError,
    TokenVerifier,
    bearer_token,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

QUEUED_ROUTES = frozenset({"/v1/describe", "/v1/ask", "/v1/jobs"})


class BodyTooLarge(Exception):
    """The request body went over the limit while it was being read."""


def json_message(
    status: int, detail: str, headers: dict[str, str] | None = None
) -> tuple[Message, Message]:
    """The two ASGI messages of a JSON error response ``{"detail": ...}``.

    Args:
        status: the HTTP status.
        detail: the one-line reason.
        headers: more response headers.

    Returns:
        The ``http.response.start`` and ``http.response.body`` messages.
    """
    body = json.dumps({"detail": detail}, ensure_ascii=False).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [
        (k.lower().encode(), v.encode("latin-1", "replace")) for k, v in (headers or {}).items()
    ]
    return (
        {"type": "http.response.start", "status": status, "headers": raw},
        {"type": "http.response.body", "body": body},
    )


@dataclass(frozen=True)
class Gate:
    """The middleware; see the module docstring.

    Args:
        app: the application behind it.
        policy: the allowlist and trusted proxies.
        verifier: checks bearer tokens; None = no tokens (every caller is ``local``).
        max_body_bytes: the largest request body accepted.
        audit: where the request records go.
        queue_full: returns the ``Retry-After`` seconds when the queue is full, else None.
    """

    app: ASGIApp
    _: KW_ONLY
    policy: AddressPolicy
    verifier: TokenVerifier | None
    max_body_bytes: int
    audit: AuditLog | NullAuditLog
    queue_full: Callable[[], int | None] = lambda: None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the request, pass it on (or answer it), and audit it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = _Exchange(scope, send, lambda: self._audit(scope, request))
        try:
            refusal = self._refusal(scope, request)
            if refusal is not None:
                await request.answer(*refusal)
                return
            await self._forward(scope, receive, request)
        except Exception as exc:
            request.status = 500
            request.detail = f"internal error ({type(exc).__name__})"
            raise
        finally:
            await request.record()  # if the response did not already (an exception)

    def _refusal(self, scope: Scope, request: _Exchange) -> tuple[int, str, dict[str, str]] | None:
        """Why the request is refused before its body is read, or None."""
        headers = Headers(scope=scope)
        state = scope.setdefault("state", {})
        client = scope.get("client")
        peer = client[0] if client else None
        address = self.policy.client_address(peer, headers.getlist("x-forwarded-for"))
        request.address = state["client_address"] = str(address) if address else None
        if not self.policy.allows(address):
            request.to_audit = True
            shown = address or "unknown"
            return 403, f"your address ({shown}) is not allowed to use this server", {}
        path: str = scope["path"]
        if not path.startswith("/v1/"):
            return None
        request.to_audit = True
        if self.verifier is None:
            state["caller"] = LOCAL_CALLER
        else:
            try:
                state["caller"] = self.verifier.verify(bearer_token(headers.get("authorization")))
            except AuthError as exc:
                return exc.status, exc.detail, {"WWW-Authenticate": exc.www_authenticate}
        request.subject = state["caller"].subject
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            return 413, self._too_large(int(length)), {"Connection": "close"}
        if scope["method"] == "POST" and path in QUEUED_ROUTES:
            retry_after = self.queue_full()
            if retry_after is not None:
                detail = f"the server is busy (queue full): try again in {retry_after} s"
                return 503, detail, {"Retry-After": str(retry_after)}
        return None

    def _too_large(self, size: int | None = None) -> str:
        limit = f"{self.max_body_bytes / 2**20:.1f} MiB"
        got = f" ({size / 2**20:.1f} MiB)" if size is not None else ""
        return (
            f"the upload is too large{got}: at most {limit} (NARRATE_API_MAX_UPLOAD_BYTES); "
            "send a smaller or downscaled image"
        )

    async def _forward(self, scope: Scope, receive: Receive, request: _Exchange) -> None:
        """Run the app with the body counted, and answer 413 if it grows over the limit."""
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    request.overflow = True
                    raise BodyTooLarge
            return message

        with contextlib.suppress(BodyTooLarge):  # the app was reading what we cut off
            await self.app(scope, counted_receive, request.send_from_app)
        if request.overflow and not request.started:
            await request.answer(413, self._too_large(), {"Connection": "close"})

    async def _audit(self, scope: Scope, request: _Exchange) -> None:
        template = getattr(scope.get("route"), "path", None)
        state = scope.get("state", {})
        status = request.status or 500
        latency_s = time.perf_counter() - request.started_at
        refused = status in (401, 403, 413, 503)
        outcome = "ok" if status < 400 else "refused" if refused else "error"
        entry = {
            "request_id": state.get("job_id") or uuid.uuid4().hex,
            "endpoint": f"{scope['method']} {template or scope['path']}",
            "status": status,
            "latency_s": latency_s,
            "outcome": outcome,
            "error": request.detail if status >= 400 else None,
            "extra": {"kind": "api", "subject": request.subject, "client": request.address},
        }
        await anyio.to_thread.run_sync(lambda: self.audit.record(**entry))
        route = f"{scope['method']} {template}" if template else "unmatched"  # bounded labels
        telemetry.record_request(route, status, latency_s)


class _Exchange:
    """One request's bookkeeping: what was answered, to whom, and whether to take over."""

    def __init__(self, scope: Scope, send: Send, audit: Callable[[], Awaitable[None]]) -> None:
        self._send = send
        self._audit = audit
        self._security_headers = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
        ]
        if scope.get("scheme") == "https":
            self._security_headers.append((b"strict-transport-security", b"max-age=31536000"))
        self.started_at = time.perf_counter()
        self.status: int | None = None
        self.detail: str | None = None
        self.address: str | None = None
        self.subject: str | None = None
        self.to_audit = False
        self._recorded = False
        self.started = False
        self.overflow = False
        self._error_body = b""

    async def answer(self, status: int, detail: str, headers: dict[str, str]) -> None:
        """Send a JSON error response of our own."""
        start, body = json_message(status, detail, headers)
        start["headers"] = [*start["headers"], *self._security_headers]
        self.status, self.detail, self.started = status, detail, True
        await self._send(start)
        await self.record()
        await self._send(body)

    async def record(self) -> None:
        """Write the audit record once, before the last byte of the response leaves."""
        if self.to_audit and not self._recorded:
            self._recorded = True
            await self._audit()

    async def send_from_app(self, message: Message) -> None:
        """The app's ``send``: passes through, notes the status and an error's detail."""
        if self.overflow:
            return  # the app is answering a body we cut off; the 413 is ours to send
        if message["type"] == "http.response.start":
            self.started = True
            self.status = int(message["status"])
            message = {**message, "headers": [*message.get("headers", []), *self._security_headers]}
        elif message["type"] == "http.response.body":
            last = not message.get("more_body")
            if (self.status or 0) >= 400:
                self._error_body += message.get("body", b"")[:4096]
                if last:
                    self.detail = _detail_of(self._error_body)
            if last:  # the caller sees the response only once it is on record
                await self.record()
        await self._send(message)


def _detail_of(body: bytes) -> str | None:
    try:
        detail = json.loads(body).get("detail")
    except (ValueError, AttributeError):
        return None
    return detail if isinstance(detail, str) else json.dumps(detail)[:500]
