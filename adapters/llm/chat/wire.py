"""One chat-completions attempt on the wire: ``OpenAICompatClient`` (Qwen3 by default).

One class serves every OpenAI-compatible provider (Model Studio, a LiteLLM proxy, a
llama.cpp server, vLLM, ...); they differ only in ``base_url``, ``model`` and ``api_key``.
It makes exactly ONE HTTP request per call: retries, failover, continuation and rate
limiting belong to ``adapters.llm.chat.resilient``.

Every reply is read for what it says (see ``adapters.llm.chat.replies``):

- an event stream is parsed with httpx-sse (lines end only at CR, LF or CRLF, as the SSE
  specification says, so U+2028 or U+0085 inside a delta is just text), whether the request
  asked for a stream or not; a JSON body answers a streamed request too.
- an error object inside a 200, an HTML/text error page, a 4xx/5xx: a ``ChatError`` subclass
  with the server's message and code (a page becomes one line: status, reason, title).
- an answer that ends without a finish reason (a clean early close, ``[DONE]`` alone, or
  ``finish_reason: "null"``) comes back with ``finish_reason="incomplete"`` and
  ``truncated=True``: the caller continues it; it is never a whole answer.
- ``reasoning_content`` (Qwen3 thinking) is counted, never part of ``text``.
- ``usage`` is None when the server sent none; ``model`` is the model the server reported;
  ``http_version`` the protocol used.

Errors (``adapters.llm.chat.errors``): timeouts, resets, cut bodies -> ``ChatTransientError``;
TLS failures (untrusted certificate, a TLS version below ``tls_min_version``) ->
``ChatPermanentError`` naming the host. The API key is never part of a message or a repr.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import ssl
import time
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
from httpx_sse import EventSource, SSEError
from pydantic import SecretStr

from adapters.llm.chat.errors import (
    ChatError,
    ChatPermanentError,
    ChatTransientError,
)
from adapters.llm.chat.replies import (
    classify_status,
    content_text,
    embedded_error,
    error_fields,
    finish_kind,
    looks_like_page,
    page_summary,
    parse_retry_after,
    request_id_of,
    status_of,
    usage_of,
)
from adapters.llm.chat.transport import HoldsApiKey, HoldsHttpClient
from adapters.llm.chat.types import ChatRequest, ChatResult, OnDelta, Usage

log = logging.getLogger(__name__)


class OpenAICompatClient(HoldsApiKey, HoldsHttpClient):
    """``ChatClient`` for any OpenAI-compatible ``/chat/completions`` API; one attempt per call."""

    _repr_fields = ("base_url", "model", "timeout_s")

    def __init__(
        self,
        *,
        base_url: str,
        model: str = "qwen3-max",
        api_key: SecretStr | str | None = None,
        timeout_s: float = 60,
        client: httpx.Client | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout_s = float(timeout_s)
        self._hold_api_key(api_key)
        self._extra_headers = dict(extra_headers or {})
        self._hold_http(client, self.timeout_s)

    # -- public API ---------------------------------------------------------------------

    def complete(self, request: ChatRequest) -> ChatResult:
        """Send ``request`` once and return the answer (streamed when ``request.stream``).

        Args:
            request: messages and sampling parameters; ``model=None`` uses ``self.model``.

        Returns:
            The answer; ``finish_reason="incomplete"`` (and ``truncated=True``) when it
            ended without a finish reason.

        Raises:
            ChatTransientError: a retry may help (429, 5xx, timeouts, resets, cut bodies).
            ChatPermanentError: it cannot (bad key, no credit, unknown model or path, TLS).
        """
        return self.send(request)

    def stream(self, request: ChatRequest, on_delta: OnDelta | None = None) -> ChatResult:
        """Stream ``request`` once; ``on_delta`` gets each piece of answer text as it arrives.

        Args:
            request: as for ``complete``; it is sent with ``stream: true``.
            on_delta: called from this thread with every new piece of text.

        Returns:
            The whole answer (see ``complete``).

        Raises:
            ChatError: as for ``complete``; ``partial_text`` holds what was received.
        """
        return self.send(dataclasses.replace(request, stream=True), on_delta)

    def send(self, request: ChatRequest, on_delta: OnDelta | None = None) -> ChatResult:
        """One attempt, streamed iff ``request.stream``; ``on_delta`` gets any answer text.

        Args:
            request: as for ``complete``.
            on_delta: called with each piece of text (the whole text for a plain reply).

        Returns:
            The whole answer (see ``complete``).

        Raises:
            ChatError: as for ``complete``; ``partial_text`` holds what was received.
        """
        model = request.model or self.model
        started = time.perf_counter()
        reader = _Reader(self, request, model, started, on_delta)
        try:
            with self._http.stream(
                "POST",
                self._url,
                json=self._payload(request, model),
                headers=self._headers(request.stream),
                timeout=self.timeout_s,
            ) as response:
                return reader.read(response)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, model, reader.text) from exc

    def models(self) -> list[dict[str, Any]]:
        """The server's model listing (``GET /models``), one dict per model.

        Returns:
            The ``data`` entries (``id``, and whatever else the server tells).

        Raises:
            ChatError: as for ``complete``.
        """
        try:
            response = self._http.get(
                f"{self.base_url}/models", headers=self._headers(False), timeout=self.timeout_s
            )
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, self.model, "") from exc
        reader = _Reader(self, ChatRequest(messages=()), self.model, time.perf_counter(), None)
        if response.status_code >= 400:
            raise reader._status_error(response)
        try:
            data = response.json()
        except ValueError:
            return []
        entries = data.get("data") if isinstance(data, dict) else data
        return [e for e in entries or () if isinstance(e, dict)]

    def model_entry(self, model: str) -> dict[str, Any] | None:
        """The ``/models`` entry for ``model``; None when unknown or the listing fails."""
        try:
            entries = self.models()
        except ChatError as exc:
            log.info("model listing: %s unavailable (%s)", self.base_url, exc.short())
            return None
        return next((e for e in entries if e.get("id") == model), None)

    # -- helpers ------------------------------------------------------------------------

    @property
    def _url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def where(self, model: str) -> str:
        """``"<base URL> (model <name>)"`` for messages."""
        return f"{self.base_url} (model {model})"

    def _headers(self, stream: bool) -> dict[str, str]:
        accept = "text/event-stream" if stream else "application/json"
        headers = {"Accept": accept, **self._extra_headers}
        if self._api_key is not None:
            headers["Authorization"] = f"Bearer {self._api_key.get_secret_value()}"
        return headers

    def _payload(self, request: ChatRequest, model: str) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": model,
            "messages": [m.to_dict() for m in request.messages],
            "temperature": request.temperature,
            "top_p": request.top_p,
            "max_tokens": request.max_tokens,
            "stream": request.stream,
        }
        if request.stream:
            payload["stream_options"] = {"include_usage": True}
        if request.enable_thinking is not None:
            payload["enable_thinking"] = request.enable_thinking
        return payload

    def scrub(self, text: str) -> str:
        """``text`` with the API key blanked out, in case a server or library echoes it."""
        if self._api_key is not None:
            text = text.replace(self._api_key.get_secret_value(), "***")
        return text

    def _transport_error(self, exc: httpx.HTTPError, model: str, partial: str) -> ChatError:
        where = self.where(model)
        facts: dict[str, Any] = {"endpoint": self.base_url, "model": model, "partial_text": partial}
        tls = _ssl_error(exc)
        if tls is not None:
            host = urlsplit(self.base_url).hostname or self.base_url
            return ChatPermanentError(self.scrub(f"{where}: {tls_problem(tls, host)}"), **facts)
        if isinstance(exc, httpx.TimeoutException):
            what = f"timed out after {self.timeout_s:g} s ({type(exc).__name__})"
        elif isinstance(exc, httpx.ConnectError):
            what = (
                f"could not connect ({exc}) — check the network and NARRATE_LLM_BASE_URL, or "
                "describe offline with NARRATE_LLM_BACKEND=offline (or "
                "NARRATE_LLM_FALLBACK_MODELS=offline)"
            )
        elif isinstance(exc, httpx.RemoteProtocolError):
            what = f"dropped the connection mid-answer ({exc})"
        elif isinstance(exc, httpx.NetworkError):
            what = f"lost the connection ({type(exc).__name__}: {exc})"
        else:
            what = f"failed in transport: {type(exc).__name__}: {exc}"
        return ChatTransientError(self.scrub(f"{where} {what}"), **facts)


@dataclasses.dataclass(eq=False)
class _Reader:
    """Reads one reply (stream or JSON) into a ``ChatResult``; raises what it says.

    The first five fields say what was asked; the rest fill in as the reply is read.
    """

    client: OpenAICompatClient
    request: ChatRequest
    model: str
    started: float
    on_delta: OnDelta | None
    pieces: list[str] = dataclasses.field(default_factory=list)
    ttft: float | None = None
    finish: str | None = None
    usage: Usage | None = None
    answered_model: str | None = None
    request_id: str | None = None
    reasoning_chars: int = 0
    http_version: str | None = None
    streamed: bool = False  # the reply was an event stream (ttft is measured)

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    def read(self, response: httpx.Response) -> ChatResult:
        self.http_version = response.http_version
        if response.status_code >= 400:
            raise self._status_error(response)
        content_type = response.headers.get("content-type", "")
        self.request_id = response.headers.get("x-request-id")
        if "text/event-stream" in content_type:
            self._read_events(response)
        else:
            body = response.read()
            if body.lstrip().startswith(b"data:"):  # an event stream under a wrong type
                self._read_events(response, lines=body.decode("utf-8", "replace"))
            else:
                self._read_json(response, body)
        return self._result()

    # -- replies ------------------------------------------------------------------------

    def _status_error(self, response: httpx.Response) -> ChatError:
        body = response.read()
        content_type = response.headers.get("content-type", "")
        page = looks_like_page(body, content_type)
        if page:
            code = kind = None
            message = page_summary(response.status_code, response.reason_phrase, body)
        else:
            code, kind, message = error_fields(body)
        retry_after_s = parse_retry_after(response.headers)
        return self._classify(response.status_code, code, kind, message, retry_after_s, page)

    def _embedded_error(self, data: Mapping[str, Any], status: int) -> ChatError:
        code, kind, message = error_fields(dict(data))
        return self._classify(status_of(code, status), code, kind, message)

    def _classify(
        self,
        status: int,
        code: str | None,
        kind: str | None,
        message: str,
        retry_after_s: float | None = None,
        is_page: bool = False,
    ) -> ChatError:
        return classify_status(
            status,
            code,
            kind,
            self.client.scrub(message),
            where=self.client.where(self.model),
            endpoint=self.client.base_url,
            model=self.model,
            retry_after_s=retry_after_s,
            has_image=self.request.has_image,
            is_page=is_page,
        )

    def _read_json(self, response: httpx.Response, body: bytes) -> None:
        where = self.client.where(self.model)
        facts: dict[str, Any] = {"endpoint": self.client.base_url, "model": self.model}
        try:
            data = json.loads(body)
        except ValueError as exc:
            if looks_like_page(body, response.headers.get("content-type", "")):
                summary = page_summary(response.status_code, response.reason_phrase, body)
                message = f"{where} sent a web page instead of an answer ({summary})"
            else:
                message = f"{where} sent a reply that is not JSON ({len(body)} bytes; cut short?)"
            raise ChatTransientError(message, status_code=response.status_code, **facts) from exc
        if not isinstance(data, dict):
            raise ChatTransientError(f"{where} sent JSON that is not an object", **facts)
        if embedded_error(data):
            raise self._embedded_error(data, response.status_code)
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise ChatTransientError(
                f"{where} answered HTTP {response.status_code} without any choices "
                f"(keys: {', '.join(sorted(map(str, data))) or 'none'})",
                status_code=response.status_code,
                **facts,
            )
        choice = choices[0]
        reply: Mapping[str, Any] = choice.get("message") or {}
        self.answered_model = _str_or_none(data.get("model"))
        self.request_id = request_id_of(data, response.headers)
        self.usage = usage_of(data.get("usage"))
        self._count_reasoning(reply)
        self._deliver(content_text(reply.get("content")))
        self._set_finish(choice.get("finish_reason"))

    def _read_events(self, response: httpx.Response, lines: str | None = None) -> None:
        self.streamed = True
        for raw in _event_data(response, lines):
            if raw == "[DONE]":
                return
            if not raw.strip():
                continue
            try:
                data = json.loads(raw)
            except ValueError as exc:
                raise ChatTransientError(
                    f"{self.client.where(self.model)} sent an event that is not JSON "
                    f"({len(raw)} chars after {len(self.text)} chars of answer)",
                    endpoint=self.client.base_url,
                    model=self.model,
                    partial_text=self.text,
                ) from exc
            if not isinstance(data, dict):
                continue
            if embedded_error(data):
                error = self._embedded_error(data, 200)
                error.partial_text = self.text
                raise error
            self.answered_model = self.answered_model or _str_or_none(data.get("model"))
            self.request_id = self.request_id or _str_or_none(data.get("id"))
            if isinstance(data.get("usage"), dict):
                self.usage = usage_of(data["usage"])
            for choice in data.get("choices") or ():
                if not isinstance(choice, dict):
                    continue
                delta = choice.get("delta") or choice.get("message") or {}
                self._count_reasoning(delta)
                self._deliver(content_text(delta.get("content")))
                self._set_finish(choice.get("finish_reason"))

    def _count_reasoning(self, message: Mapping[str, Any]) -> None:
        for key in ("reasoning_content", "reasoning"):
            value = message.get(key)
            if isinstance(value, str):
                self.reasoning_chars += len(value)

    def _deliver(self, text: str) -> None:
        if not text:
            return
        if self.ttft is None and self.streamed:
            self.ttft = time.perf_counter() - self.started
        self.pieces.append(text)
        if self.on_delta is not None:
            self.on_delta(text)

    def _set_finish(self, reason: Any) -> None:
        if reason is not None and finish_kind(reason) != "incomplete":
            self.finish = str(reason)

    def _result(self) -> ChatResult:
        kind = finish_kind(self.finish)
        answered = self.answered_model or self.model
        if kind == "incomplete":
            log.info(
                "%s ended the answer without a finish reason after %d chars",
                self.client.where(self.model),
                len(self.text),
            )
        return ChatResult(
            text=self.text,
            finish_reason="incomplete" if kind == "incomplete" else str(self.finish),
            usage=self.usage,
            latency_s=time.perf_counter() - self.started,
            model=answered,
            endpoint=self.client.base_url,
            truncated=kind in ("length", "incomplete"),
            filtered=kind == "filtered",
            ttft_s=self.ttft,
            request_id=self.request_id,
            requested_model=self.model,
            http_version=self.http_version,
            reasoning_chars=self.reasoning_chars,
        )


def _event_data(response: httpx.Response, body: str | None) -> Iterator[str]:
    """The ``data`` of each server-sent event, decoded per the SSE specification (httpx-sse).

    ``body`` is an already-read event stream sent under another content type.
    """
    if body is not None:
        response = httpx.Response(
            200, headers={"content-type": "text/event-stream"}, content=body.encode()
        )
    try:
        for event in EventSource(response).iter_sse():
            yield event.data
    except SSEError:  # pragma: no cover - the content type is checked by the caller
        return


def _str_or_none(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _ssl_error(exc: BaseException) -> ssl.SSLError | None:
    """The ``ssl.SSLError`` behind an httpx error, if the failure was in TLS."""
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def tls_problem(error: ssl.SSLError, host: str) -> str:
    """One actionable line for a TLS failure with ``host``."""
    text = str(error)
    if isinstance(error, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in text:
        detail = getattr(error, "verify_message", "") or text
        return (
            f"the TLS certificate of {host} was refused ({detail}); if this is a private "
            f"gateway, point NARRATE_LLM_CA_BUNDLE at its CA certificate file"
        )
    if any(
        marker in text
        for marker in ("PROTOCOL_VERSION", "UNSUPPORTED_PROTOCOL", "NO_PROTOCOLS", "WRONG_VERSION")
    ):
        return (
            f"{host} does not speak the TLS version required (NARRATE_LLM_TLS_MIN_VERSION); "
            f"the handshake failed: {text}"
        )
    return f"the TLS handshake with {host} failed: {text}"
