"""An OpenAI-compatible chat-completions client (Qwen3 on Model Studio by default), on httpx.

One ``OpenAICompatClient`` serves every OpenAI-compatible provider; they differ only in
``base_url``, ``model`` and ``api_key``. It makes exactly ONE HTTP attempt per call:
retries, failover and rate limiting belong to a wrapper that calls ``complete``/``stream``
once per attempt and reads ``TransientError.retry_after``.

Streaming: ``complete(request)`` with ``request.stream=True`` reads the server-sent events
and returns the whole answer; ``stream(request, on_delta=print)`` does the same and calls
``on_delta(text)`` for every piece of text as it arrives (from the calling thread).

Errors are converted here, at the boundary (see ``adapters.errors``):

- timeouts, connection errors, resets, a stream or body cut mid-way -> ``TransientError``
- HTTP 408, 409, 429, 5xx -> ``TransientError`` with ``retry_after`` from ``retry-after-ms``
  or ``Retry-After`` (seconds or an HTTP date)
- HTTP 429 with an out-of-credit code (``insufficient_quota``, ``Arrearage``) ->
  ``PermanentError``: retrying cannot help until the account is topped up
- HTTP 401/403 -> ``PermanentError`` telling the user to check the API key
- any other 4xx (bad request, unknown model, ...) -> ``PermanentError`` with the server's message
- a 200 whose body is not JSON or has no ``choices`` -> ``TransientError``: a real API never
  does that, a proxy or gateway glitch (an HTML error page, a truncated body) does, and the
  next attempt usually goes through.

The concrete classes are ``ChatTransientError``/``ChatPermanentError``, subclasses that also
carry ``status_code``, ``error_code`` and ``endpoint`` for a failover wrapper. The API key is
never part of an exception message, ``repr(client)`` or a log line.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from pydantic import SecretStr

from adapters.errors import PermanentError, TransientError
from adapters.llm.base import ChatRequest, ChatResult, Usage

log = logging.getLogger(__name__)

TRANSIENT_STATUS = frozenset({408, 409, 425, 429})
# Error codes that mean "out of credit": a retry cannot succeed until someone pays.
QUOTA_CODES = frozenset(
    {"insufficient_quota", "arrearage", "billing_hard_limit_reached", "billing_not_active"}
)
MAX_SERVER_MESSAGE = 300


class ChatTransientError(TransientError):
    """A chat call failed in a way a retry may fix; carries the HTTP details when known."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        status_code: int | None = None,
        error_code: str | None = None,
        endpoint: str | None = None,
    ) -> None:
        super().__init__(message, retry_after=retry_after)
        self.status_code = status_code
        self.error_code = error_code
        self.endpoint = endpoint


class ChatPermanentError(PermanentError):
    """A chat call failed in a way retrying cannot fix; carries the HTTP details when known."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error_code: str | None = None,
        endpoint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error_code = error_code
        self.endpoint = endpoint


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date)."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _error_fields(body: bytes) -> tuple[str | None, str | None, str]:
    """(code, type, message) from an OpenAI-style or DashScope-style error body."""
    try:
        data = json.loads(body)
    except ValueError:
        return None, None, body.decode("utf-8", "replace").strip()[:MAX_SERVER_MESSAGE]
    if not isinstance(data, dict):
        return None, None, str(data)[:MAX_SERVER_MESSAGE]
    err = data.get("error")
    if isinstance(err, dict):
        code, kind, message = err.get("code"), err.get("type"), err.get("message")
    else:  # DashScope native: {"code": "Arrearage", "message": "...", "request_id": "..."}
        code, kind, message = data.get("code"), data.get("type"), data.get("message")
        if isinstance(err, str) and not message:
            message = err
    return (
        None if code is None else str(code),
        None if kind is None else str(kind),
        ("" if message is None else str(message))[:MAX_SERVER_MESSAGE],
    )


class OpenAICompatClient:
    """``ChatClient`` for any OpenAI-compatible ``/chat/completions`` API; one attempt per call."""

    def __init__(
        self,
        *,
        base_url: str,
        model: str = "qwen3-max",
        api_key: SecretStr | str | None = None,
        timeout: float = 60,
        client: httpx.Client | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout = float(timeout)
        if isinstance(api_key, str):
            api_key = SecretStr(api_key)
        self._api_key = api_key if api_key and api_key.get_secret_value() else None
        self._extra_headers = dict(extra_headers or {})
        self._owns_client = client is None
        self._client = client if client is not None else httpx.Client(timeout=self.timeout)

    def __repr__(self) -> str:
        key = "set" if self._api_key else "none"
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, model={self.model!r}, "
            f"api_key=<{key}>, timeout={self.timeout})"
        )

    def close(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> OpenAICompatClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- public API ---------------------------------------------------------------------

    def complete(self, request: ChatRequest) -> ChatResult:
        """Send ``request`` once and return the answer (streamed when ``request.stream``)."""
        if request.stream:
            return self.stream(request)
        model = request.model or self.model
        started = time.perf_counter()
        try:
            response = self._client.post(
                self._url,
                json=self._payload(request, model, stream=False),
                headers=self._headers(),
                timeout=self.timeout,
            )
            body = response.content
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, model) from exc
        latency = time.perf_counter() - started
        if response.status_code >= 400:
            raise self._status_error(response.status_code, response.headers, body, model)
        data = self._parse_json(body, model)
        try:
            choice = data["choices"][0]
            message = choice.get("message") or {}
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise ChatTransientError(
                f"{self._where(model)} answered HTTP {response.status_code} without any "
                "choices (a proxy glitch?)",
                status_code=response.status_code,
                endpoint=self.base_url,
            ) from exc
        finish = str(choice.get("finish_reason") or "stop")
        log.debug("chat %s answered in %.2fs (%s)", self._where(model), latency, finish)
        return ChatResult(
            text=_content_text(message.get("content")),
            finish_reason=finish,
            usage=_usage(data.get("usage")),
            latency_s=latency,
            model=str(data.get("model") or model),
            endpoint=self.base_url,
            truncated=finish == "length",
            request_id=_request_id(data, response.headers),
        )

    def stream(
        self, request: ChatRequest, on_delta: Callable[[str], None] | None = None
    ) -> ChatResult:
        """Stream ``request`` once; ``on_delta`` gets each text piece; return the whole answer."""
        model = request.model or self.model
        started = time.perf_counter()
        pieces: list[str] = []
        ttft: float | None = None
        finish: str | None = None
        usage = Usage()
        answered_model: str | None = None
        request_id: str | None = None
        done = False
        try:
            with self._client.stream(
                "POST",
                self._url,
                json=self._payload(request, model, stream=True),
                headers=self._headers(),
                timeout=self.timeout,
            ) as response:
                if response.status_code >= 400:
                    body = response.read()
                    raise self._status_error(response.status_code, response.headers, body, model)
                request_id = response.headers.get("x-request-id")
                for data in self._events(response, model):
                    if data is None:
                        done = True
                        break
                    answered_model = answered_model or data.get("model")
                    request_id = request_id or data.get("id")
                    if data.get("usage"):
                        usage = _usage(data["usage"])
                    for choice in data.get("choices") or ():
                        delta = choice.get("delta") or {}
                        text = _content_text(delta.get("content"))
                        if text:
                            if ttft is None:
                                ttft = time.perf_counter() - started
                            pieces.append(text)
                            if on_delta is not None:
                                on_delta(text)
                        if choice.get("finish_reason"):
                            finish = str(choice["finish_reason"])
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, model) from exc
        if not done and finish is None:
            raise ChatTransientError(
                f"{self._where(model)} ended the stream before the answer was complete "
                f"({len(pieces)} pieces received)",
                endpoint=self.base_url,
            )
        finish = finish or "stop"
        return ChatResult(
            text="".join(pieces),
            finish_reason=finish,
            usage=usage,
            latency_s=time.perf_counter() - started,
            model=str(answered_model or model),
            endpoint=self.base_url,
            truncated=finish == "length",
            ttft_s=ttft,
            request_id=request_id,
        )

    # -- helpers ------------------------------------------------------------------------

    @property
    def _url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def _where(self, model: str) -> str:
        return f"{self.base_url} (model {model})"

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", **self._extra_headers}
        if self._api_key is not None:
            headers["Authorization"] = f"Bearer {self._api_key.get_secret_value()}"
        return headers

    def _payload(self, request: ChatRequest, model: str, *, stream: bool) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": model,
            "messages": [m.to_dict() for m in request.messages],
            "temperature": request.temperature,
            "top_p": request.top_p,
            "max_tokens": request.max_tokens,
            "stream": stream,
        }
        if stream:
            payload["stream_options"] = {"include_usage": True}
        return payload

    def _scrub(self, text: str) -> str:
        """``text`` with the API key blanked out, in case a server or library echoes it."""
        if self._api_key is not None:
            text = text.replace(self._api_key.get_secret_value(), "***")
        return text

    def _transport_error(self, exc: httpx.HTTPError, model: str) -> ChatTransientError:
        if isinstance(exc, httpx.TimeoutException):
            what = f"timed out after {self.timeout:g} s ({type(exc).__name__})"
        elif isinstance(exc, httpx.ConnectError):
            what = f"could not connect ({exc})"
        elif isinstance(exc, httpx.RemoteProtocolError):
            what = f"dropped the connection mid-answer ({exc})"
        elif isinstance(exc, httpx.NetworkError):
            what = f"lost the connection ({type(exc).__name__}: {exc})"
        else:
            what = f"failed in transport: {type(exc).__name__}: {exc}"
        message = self._scrub(f"{self._where(model)} {what}")
        return ChatTransientError(message, endpoint=self.base_url)

    def _status_error(
        self, status: int, headers: Mapping[str, str], body: bytes, model: str
    ) -> ChatTransientError | ChatPermanentError:
        code, kind, message = _error_fields(body)
        codes = {c.lower() for c in (code, kind) if c}
        detail = self._scrub(f": {message}" if message else "")
        tag = f" [{code or kind}]" if (code or kind) else ""
        where = self._where(model)
        if codes & QUOTA_CODES:
            return ChatPermanentError(
                f"{where} refused the request (HTTP {status}{tag}): the account is out of "
                f"credit or quota; top up or check billing for this API key, then try "
                f"again{detail}",
                status_code=status,
                error_code=code or kind,
                endpoint=self.base_url,
            )
        if status in (401, 403):
            return ChatPermanentError(
                f"{where} rejected the credentials (HTTP {status}{tag}): check the API key "
                f"(DASHSCOPE_API_KEY or NARRATE_LLM_API_KEY) and that it belongs to this "
                f"region's endpoint{detail}",
                status_code=status,
                error_code=code or kind,
                endpoint=self.base_url,
            )
        if status in TRANSIENT_STATUS or status >= 500:
            return ChatTransientError(
                f"{where} answered HTTP {status}{tag}{detail}",
                retry_after=parse_retry_after(headers),
                status_code=status,
                error_code=code or kind,
                endpoint=self.base_url,
            )
        return ChatPermanentError(
            f"{where} refused the request (HTTP {status}{tag}){detail}",
            status_code=status,
            error_code=code or kind,
            endpoint=self.base_url,
        )

    def _parse_json(self, body: bytes, model: str) -> dict[str, Any]:
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise ChatTransientError(
                self._scrub(
                    f"{self._where(model)} sent a reply that is not JSON "
                    f"({len(body)} bytes, starting {body[:60]!r}; a proxy glitch?)"
                ),
                endpoint=self.base_url,
            ) from exc
        if not isinstance(data, dict):
            raise ChatTransientError(
                f"{self._where(model)} sent JSON that is not an object", endpoint=self.base_url
            )
        return data

    def _events(self, response: httpx.Response, model: str) -> Iterator[dict[str, Any] | None]:
        """The JSON payload of each ``data:`` event; ``None`` for ``[DONE]``."""
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue  # blank separators, ": keep-alive" comments, "event:" / "id:" fields
            raw = line[5:].strip()
            if raw == "[DONE]":
                yield None
                return
            data = self._parse_json(raw.encode(), model)
            if data.get("error"):
                code, kind, message = _error_fields(raw.encode())
                if {c.lower() for c in (code, kind) if c} & QUOTA_CODES:
                    raise self._status_error(429, {}, raw.encode(), model)
                raise ChatTransientError(
                    self._scrub(f"{self._where(model)} reported an error mid-stream: {message}"),
                    error_code=code or kind,
                    endpoint=self.base_url,
                )
            yield data


def _content_text(content: Any) -> str:
    """Text of a message ``content``: a string, or a list of ``{"type": "text"}`` parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content)


def _usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    prompt = int(raw.get("prompt_tokens") or 0)
    completion = int(raw.get("completion_tokens") or 0)
    return Usage(prompt, completion, int(raw.get("total_tokens") or prompt + completion))


def _request_id(data: Mapping[str, Any], headers: Mapping[str, str]) -> str | None:
    value = data.get("id") or data.get("request_id") or headers.get("x-request-id")
    return None if value is None else str(value)
