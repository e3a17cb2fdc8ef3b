"""A real, fault-injecting HTTP server that speaks the OpenAI chat-completions protocol.

It listens on 127.0.0.1 (port 0 = any free port) in a background thread, records every
request, and answers each one according to a *fault*: scripted in order, then drawn from a
seeded probabilistic mix, then the default (``ok``). Faults, with an optional ``:arg``::

    ok                  a deterministic answer that quotes the last user message
    length              finish_reason "length" with half the answer
    429[:s]             rate limited, ``Retry-After: s`` (default ``retry_after_s``)
    429-ms[:ms]         rate limited, ``retry-after-ms: ms``
    429-bare            rate limited, no retry header
    insufficient_quota  429 with error.code "insufficient_quota" (out of credit)
    401                 invalid API key
    500 / 503[:s]       server errors (503 carries ``Retry-After`` when s is given)
    reset               the socket is closed with SO_LINGER 0: the client sees a reset
    hang[:s]            no answer for s seconds (default ``hang_seconds``), then a close
    stream-cut[:n]      n deltas of an SSE stream (part of the body when not streaming),
                        then the connection is dropped
    malformed           HTTP 200 whose body (or SSE event) is not valid JSON

Odd replies seen from real servers and gateways (each from a public bug report)::

    error-200[:code]    HTTP 200 holding a vLLM-style error object ("model does not exist",
                        ``code`` 404 by default; 0 = no code, "server busy")
    html-502            an nginx "502 Bad Gateway" HTML page
    html-200            an HTML page with status 200 (a captive portal, a login page)
    filter[:n]          n deltas, then finish_reason "content_filter"
    null-finish[:n]     n deltas, each with finish_reason as the STRING "null", then a clean
                        close with no [DONE] (plain: the half answer with "null")
    done-no-finish[:n]  n deltas, then [DONE] with no finish reason (llama.cpp interrupted)
    sse-for-plain       an event stream for a request that did not ask for one
    context-full        the prompt is over the context: 400 context_length_exceeded when
                        plain, a 200 with an empty stream when streamed (llama.cpp)
    reasoning[:n]       Qwen3 thinking: ``reasoning_content`` deltas, then the answer;
                        n = 0 sends reasoning only and stops with "length"

Server options for whole behaviours: ``honours_partial=False`` ignores partial mode and
``honours_continue=False`` ignores a "continue" turn (both restart the answer, as llama.cpp
does); ``context_chars=N`` treats longer prompts as ``context-full``; ``text_only=True``
answers image parts with a bare HTTP 500; ``served_model`` answers every request as that
model; ``send_usage=False`` sends no usage (llama.cpp streams).

Continuations: when the last message is ``{"role": "assistant", "content": T, "partial":
true}`` (Model Studio's partial mode) the reply holds only the rest of the answer after T;
when an assistant turn T is followed by a user turn (the portable form), the reply is the
rest after T too, without its leading space, as a model starting a new turn writes it.

Use it as a context manager (``with FakeLLMServer() as fake: fake.base_url``), through the
``fake_llm`` / ``fake_llm_factory`` fixtures, or by hand::

    python -m tests.support.fake_llm --port 8000 --script 429,503,ok --latency 0.3 \\
        --tokens-per-second 30
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import re
import socket
import ssl
import struct
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAULTS = (
    "ok",
    "length",
    "429",
    "429-ms",
    "429-bare",
    "insufficient_quota",
    "401",
    "500",
    "503",
    "reset",
    "hang",
    "stream-cut",
    "malformed",
    "error-200",
    "html-502",
    "html-200",
    "filter",
    "null-finish",
    "done-no-finish",
    "sse-for-plain",
    "context-full",
    "reasoning",
)
NGINX_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 "
    b"Bad Gateway</h1></center>\r\n<hr><center>nginx/1.25.3</center>\r\n</body>\r\n</html>\r\n"
)
PORTAL_200 = (
    b"<!DOCTYPE html><html><head><title>Sign in to the guest network</title></head>"
    b"<body><form>...</form></body></html>"
)
VISION_MODELS = ("qwen3-vl-plus", "qwen3-vl-flash")  # listed with an image input modality
DEFAULT_MODELS = ("qwen3-max", "qwen3-vl-plus", "qwen3-vl-flash", "qwen-plus", "qwen-flash")
_TOKEN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[^\s\u3400-\u9fff\uf900-\ufaff]+\s*|\s+")


@dataclass(frozen=True)
class RecordedRequest:
    """One request the server received."""

    time: float  # time.time() when it arrived
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any  # the parsed JSON body, or None
    raw: bytes
    fault: str  # what the server did with it, e.g. "ok", "429:2"

    @property
    def user_text(self) -> str:
        """The text of the last user message (text parts joined)."""
        return _last_user_text(self.body)

    @property
    def image_urls(self) -> list[str]:
        """The ``image_url`` URLs in all messages."""
        return _image_urls(self.body)


class _Dropped(Exception):
    """Raised by a handler that has closed its connection on purpose."""


def check_fault(spec: str) -> str:
    """Return ``spec`` if it names a known fault (``name`` or ``name:arg``), else ValueError."""
    name, _, arg = spec.strip().partition(":")
    if name not in FAULTS:
        raise ValueError(f"unknown fault {name!r}; choose from {', '.join(FAULTS)}")
    if arg:
        float(arg)  # ValueError for a bad argument
    return spec.strip()


def tokenize(text: str) -> list[str]:
    """Split ``text`` into stream pieces: a word with its trailing space, or one CJK character."""
    return _TOKEN.findall(text)


def _last_user_text(body: Any) -> str:
    """The question: the last user message before any assistant turn."""
    if not isinstance(body, dict):
        return ""
    messages = body.get("messages") or []
    for index, message in enumerate(messages):
        if isinstance(message, dict) and message.get("role") == "assistant":
            messages = messages[:index]
            break
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(
                    str(p.get("text", "")) for p in content if isinstance(p, dict)
                ).strip()
    return ""


def _partial_prefix(body: Any) -> str | None:
    """The text of a final ``{"role": "assistant", "partial": true}`` message, if any."""
    if not isinstance(body, dict):
        return None
    messages = body.get("messages") or []
    last = messages[-1] if messages else None
    if isinstance(last, dict) and last.get("role") == "assistant" and last.get("partial"):
        content = last.get("content")
        return content if isinstance(content, str) else None
    return None


def _portable_prefix(body: Any) -> str | None:
    """The text of an assistant turn followed by a user turn (a portable continuation)."""
    if not isinstance(body, dict):
        return None
    messages = body.get("messages") or []
    if len(messages) < 2:
        return None
    turn, last = messages[-2], messages[-1]
    if (
        isinstance(turn, dict)
        and isinstance(last, dict)
        and turn.get("role") == "assistant"
        and last.get("role") == "user"
        and isinstance(turn.get("content"), str)
    ):
        return str(turn["content"])
    return None


def _image_urls(body: Any) -> list[str]:
    urls: list[str] = []
    if not isinstance(body, dict):
        return urls
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and part.get("type") == "image_url":
                    url = part.get("image_url")
                    urls.append(url.get("url", "") if isinstance(url, dict) else str(url))
    return urls


class FakeLLMServer:
    """An OpenAI-compatible chat server on loopback with scripted and random faults."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        script: Iterable[str] = (),
        default: str = "ok",
        mix: Mapping[str, float] | None = None,
        seed: int = 0,
        latency_s: float = 0.0,
        tokens_per_second: float = 0.0,
        reply: str | None = None,
        models: Iterable[str] = DEFAULT_MODELS,
        reject_models: Iterable[str] = (),
        api_key: str | None = None,
        retry_after_s: float = 1.0,
        hang_seconds: float = 30.0,
        stream_cut_after: int = 3,
        honours_partial: bool = True,
        honours_continue: bool = True,
        context_chars: int | None = None,
        text_only: bool = False,
        served_model: str | None = None,
        send_usage: bool = True,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.default = check_fault(default)
        self.mix = {check_fault(k): float(v) for k, v in (mix or {}).items()}
        self._rng = random.Random(seed)
        self.latency_s = latency_s
        self.tokens_per_second = tokens_per_second
        self.reply = reply
        self.models = tuple(models)
        self.reject_models = frozenset(reject_models)
        self.api_key = api_key
        self.retry_after_s = retry_after_s
        self.hang_seconds = hang_seconds
        self.stream_cut_after = stream_cut_after
        self.honours_partial = honours_partial
        self.honours_continue = honours_continue
        self.context_chars = context_chars
        self.text_only = text_only
        self.served_model = served_model
        self.send_usage = send_usage
        self.ssl_context = ssl_context  # serve HTTPS with this server-side context
        self._lock = threading.Lock()
        self._script: deque[str] = deque()
        self._requests: list[RecordedRequest] = []
        self._stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self.script(*script)

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> FakeLLMServer:
        """Bind and serve in a daemon thread; return self."""
        self._stopping.clear()
        self._httpd = _Server((self.host, self._requested_port), _Handler)
        self._httpd.fake = self
        if self.ssl_context is not None:
            self._httpd.socket = self.ssl_context.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake hanging handlers and close every open connection."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.close_all_connections()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port the server listens on."""
        if self._httpd is None:
            raise RuntimeError("the fake LLM server is not running")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL, e.g. ``http://127.0.0.1:41234/v1``."""
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{self.host}:{self.port}/v1"

    # -- scripting and records ----------------------------------------------------------

    def script(self, *faults: str) -> FakeLLMServer:
        """Queue faults for the next requests, in order (``"429,ok"`` strings are split)."""
        specs = [check_fault(s) for f in faults for s in f.split(",") if s.strip()]
        with self._lock:
            self._script.extend(specs)
        return self

    @property
    def pending(self) -> list[str]:
        """The scripted faults not yet used."""
        with self._lock:
            return list(self._script)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of every request received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        """Forget recorded requests and pending scripted faults."""
        with self._lock:
            self._requests.clear()
            self._script.clear()

    def _next_fault(self) -> str:
        with self._lock:
            if self._script:
                return self._script.popleft()
            if self.mix:
                names = list(self.mix)
                return self._rng.choices(names, weights=[self.mix[n] for n in names])[0]
            return self.default

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def answer_text(self, body: Any) -> str:
        """The full ``ok`` answer for a request body: the configured reply, or an echo."""
        if self.reply is not None:
            return self.reply
        said = " ".join(_last_user_text(body).split()[:12])[:120]
        images = len(_image_urls(body))
        seen = f" I was shown {images} image{'s' if images != 1 else ''}." if images else ""
        return f"This is a fake answer about: {said}.{seen}"

    def reply_text(self, body: Any) -> str:
        """The text to send: the full answer, or for a continuation what follows the prefix."""
        full = self.answer_text(body)
        prefix = _partial_prefix(body) if self.honours_partial else None
        portable = None
        if prefix is None and self.honours_continue:
            portable = _portable_prefix(body)
        if not prefix and not portable:
            return full
        common = 0
        for a, b in zip(full, prefix or portable or "", strict=False):
            if a != b:
                break
            common += 1
        return full[common:] if prefix else full[common:].lstrip()

    def prompt_chars(self, body: Any) -> int:
        """Characters of message content in ``body`` (the fake's context measure)."""
        total = 0
        for message in body.get("messages") or []:
            content = message.get("content") if isinstance(message, dict) else None
            total += len(content) if isinstance(content, str) else len(json.dumps(content))
        return total

    def sleep(self, seconds: float) -> bool:
        """Sleep unless the server is stopping; True when the full time passed."""
        return not self._stopping.wait(seconds) if seconds > 0 else True


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that remembers open connections so ``stop`` can close them."""

    daemon_threads = True
    allow_reuse_address = True
    fake: FakeLLMServer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conn_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conn_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_all_connections(self) -> None:
        with self._conn_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle's algorithm and
        # delayed ACKs add ~40 ms to every answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle(self) -> None:
        try:
            super().handle()
        except (_Dropped, ConnectionError, OSError, ValueError):
            self.close_connection = True

    # -- routing ------------------------------------------------------------------------

    def do_GET(self) -> None:
        fake = self.server.fake
        if self.path.rstrip("/") == "/v1/models":
            models = [m for m in fake.models if m not in fake.reject_models]
            data = [
                {
                    "id": m,
                    "object": "model",
                    "owned_by": "fake",
                    "input_modalities": ["text", "image"] if m in VISION_MODELS else ["text"],
                }
                for m in models
            ]
            self._json(200, {"object": "list", "data": data})
        elif self.path.rstrip("/") in ("/health", "/v1/health"):
            self._json(200, {"status": "ok"})
        else:
            self._error(404, "not_found", f"no route for GET {self.path}", "invalid_request_error")

    def do_POST(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        fault = fake._next_fault()
        auth = self.headers.get("Authorization")
        if fake.api_key is not None and auth != f"Bearer {fake.api_key}":
            fault = "401"
        fake._record(
            RecordedRequest(
                time=time.time(),
                method="POST",
                path=self.path,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                raw=raw,
                fault=fault,
            )
        )
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._error(404, "not_found", f"no route for POST {self.path}", "invalid_request_error")
            return
        fake.sleep(fake.latency_s)
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            self._error(400, "invalid_parameter", "body must be JSON with a messages list")
            return
        model = str(body.get("model") or "")
        if fake.text_only and _image_urls(body):
            self._json(500, {"error": "Internal Server Error"})
            return
        if fake.context_chars is not None and fake.prompt_chars(body) > fake.context_chars:
            fault = "context-full"
        if fake.served_model is not None:
            model = fake.served_model
        elif model in fake.reject_models or not model:
            self._error(
                404,
                "model_not_found",
                f"The model `{model}` does not exist or you do not have access to it.",
                "invalid_request_error",
            )
            return
        self._serve_fault(fault, body, model)

    # -- faults -------------------------------------------------------------------------

    def _serve_fault(self, spec: str, body: dict[str, Any], model: str) -> None:
        fake = self.server.fake
        name, _, arg_text = spec.partition(":")
        arg = float(arg_text) if arg_text else None
        stream = bool(body.get("stream"))
        if name in ("ok", "length"):
            self._answer(body, model, stream=stream, force_length=name == "length")
        elif name in ("429", "429-ms"):  # Retry-After in seconds, or retry-after-ms
            in_ms = name == "429-ms"
            wait = fake.retry_after_s * (1000 if in_ms else 1) if arg is None else arg
            self._error(
                429,
                "Throttling.RateQuota" if in_ms else "limit_requests",
                "Requests rate limit exceeded, please try again later.",
                "limit_requests",
                headers={"retry-after-ms" if in_ms else "Retry-After": _num(wait)},
            )
        elif name == "429-bare":
            self._error(429, "rate_limit_exceeded", "Too many requests.", "requests")
        elif name == "insufficient_quota":
            self._error(
                429,
                "insufficient_quota",
                "You exceeded your current quota, please check your plan and billing details.",
                "insufficient_quota",
            )
        elif name == "401":
            self._error(
                401, "invalid_api_key", "Incorrect API key provided.", "invalid_request_error"
            )
        elif name in ("500", "503"):
            headers = {"Retry-After": _num(arg)} if arg is not None else {}
            message = "Internal server error" if name == "500" else "Service is overloaded"
            self._error(int(name), "internal_error", message, "server_error", headers=headers)
        elif name == "reset":
            self._reset()
        elif name == "hang":
            fake.sleep(fake.hang_seconds if arg is None else arg)
            self._drop()
        elif name == "stream-cut":
            self._stream_cut(body, model, stream, int(arg or fake.stream_cut_after))
        elif name == "malformed":
            self._malformed(stream)
        elif name == "error-200":
            code = 404 if arg is None else int(arg)
            message = f"The model `{model}` does not exist." if code else "The server is busy."
            error: dict[str, Any] = {"object": "error", "message": message, "type": "NotFoundError"}
            if code:
                error["code"] = code
            self._json(200, error)
        elif name in ("html-502", "html-200"):
            page = NGINX_502 if name == "html-502" else PORTAL_200
            self.send_response(502 if name == "html-502" else 200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
        elif name in ("filter", "null-finish", "done-no-finish"):
            self._odd_end(name, body, model, stream, int(arg or fake.stream_cut_after))
        elif name == "sse-for-plain":
            self._answer(body, model, stream=True, force_length=False)
        elif name == "context-full":
            if stream:
                self._start_sse()
                self._send_chunk(b"data: [DONE]\n\n")
                self._send_chunk(b"")
            else:
                self._error(
                    400,
                    "context_length_exceeded",
                    "Requested tokens exceed context window of 2048",
                    "invalid_request_error",
                )
        elif name == "reasoning":
            self._reasoning(body, model, stream, arg)

    def _answer(
        self, body: dict[str, Any], model: str, *, stream: bool, force_length: bool
    ) -> None:
        fake = self.server.fake
        tokens = tokenize(fake.reply_text(body))
        finish = "stop"
        max_tokens = body.get("max_tokens")
        if force_length:
            tokens, finish = tokens[: max(1, len(tokens) // 2)], "length"
        if isinstance(max_tokens, int) and 0 < max_tokens < len(tokens):
            tokens, finish = tokens[:max_tokens], "length"
        prompt_chars = sum(len(json.dumps(m, ensure_ascii=False)) for m in body["messages"])
        prompt_tokens = max(1, prompt_chars // 4)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(tokens),
            "total_tokens": prompt_tokens + len(tokens),
        }
        ident = f"chatcmpl-fake-{len(fake.requests)}"
        if not stream:
            reply = {
                "id": ident,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "".join(tokens)},
                        "finish_reason": finish,
                    }
                ],
            }
            if fake.send_usage:
                reply["usage"] = usage
            self._json(200, reply)
            return
        self._start_sse()
        self._event(_chunk(ident, model, {"role": "assistant", "content": ""}))
        for token in tokens:
            if not fake.sleep(1.0 / fake.tokens_per_second if fake.tokens_per_second > 0 else 0):
                self._drop()
            self._event(_chunk(ident, model, {"content": token}))
        self._event(_chunk(ident, model, {}, finish))
        options = body.get("stream_options") or {}
        if fake.send_usage and isinstance(options, dict) and options.get("include_usage"):
            self._event({**_chunk(ident, model, {}), "choices": [], "usage": usage})
        self._send_chunk(b"data: [DONE]\n\n")
        self._send_chunk(b"")

    def _odd_end(
        self, name: str, body: dict[str, Any], model: str, stream: bool, after: int
    ) -> None:
        fake = self.server.fake
        tokens = tokenize(fake.reply_text(body))[:after]
        finish = {"filter": "content_filter", "null-finish": "null"}.get(name)
        ident = "chatcmpl-odd"
        if not stream:
            message = {"role": "assistant", "content": "".join(tokens)}
            choice = {"index": 0, "message": message, "finish_reason": finish}
            self._json(200, {"id": ident, "object": "chat.completion", "model": model,
                             "choices": [choice]})  # fmt: skip
            return
        self._start_sse()
        for token in tokens:
            chunk_finish = "null" if name == "null-finish" else None
            self._event(_chunk(ident, model, {"content": token}, chunk_finish))
        if name == "filter":
            self._event(_chunk(ident, model, {}, "content_filter"))
        if name != "null-finish":
            self._send_chunk(b"data: [DONE]\n\n")
        self._send_chunk(b"")

    def _reasoning(self, body: dict[str, Any], model: str, stream: bool, arg: float | None) -> None:
        fake = self.server.fake
        thoughts = "Let me think about the picture. The user wants a short description."
        text = "" if arg == 0 else fake.reply_text(body)
        finish = "length" if arg == 0 else "stop"
        ident = "chatcmpl-think"
        if not stream:
            message = {"role": "assistant", "content": text, "reasoning_content": thoughts}
            choice = {"index": 0, "message": message, "finish_reason": finish}
            self._json(200, {"id": ident, "object": "chat.completion", "model": model,
                             "choices": [choice]})  # fmt: skip
            return
        self._start_sse()
        for token in tokenize(thoughts):
            self._event(_chunk(ident, model, {"reasoning_content": token}))
        for token in tokenize(text):
            self._event(_chunk(ident, model, {"content": token}))
        self._event(_chunk(ident, model, {}, finish))
        self._send_chunk(b"data: [DONE]\n\n")
        self._send_chunk(b"")

    def _stream_cut(self, body: dict[str, Any], model: str, stream: bool, after: int) -> None:
        fake = self.server.fake
        tokens = tokenize(fake.reply_text(body))
        if stream:
            self._start_sse()
            for token in tokens[:after]:
                self._event(_chunk("chatcmpl-cut", model, {"content": token}))
            self._drop()
        payload = json.dumps({"id": "chatcmpl-cut", "choices": []}).encode() * 4
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload[: len(payload) // 3])
        self._drop()

    def _malformed(self, stream: bool) -> None:
        if stream:
            self._start_sse()
            self._send_chunk(b'data: {"choices": [{"delta": {"content": "Hel\n\n')
            self._send_chunk(b"data: [DONE]\n\n")
            self._send_chunk(b"")
            return
        payload = b'{"id": "chatcmpl-broken", "choices": [{"message": {"content": "Hel'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    # -- low-level writers --------------------------------------------------------------

    def _json(self, status: int, data: Any, headers: Mapping[str, str] | None = None) -> None:
        payload = json.dumps(data, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-request-id", f"fake-{time.monotonic_ns()}")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

    def _error(
        self,
        status: int,
        code: str,
        message: str,
        kind: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        error = {"message": message, "type": kind or code, "param": None, "code": code}
        self._json(status, {"error": error}, headers)

    def _start_sse(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _send_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _event(self, data: Any) -> None:
        self._send_chunk(b"data: " + json.dumps(data, ensure_ascii=False).encode() + b"\n\n")

    def _drop(self) -> None:
        """Close the connection with a FIN, mid-answer; the client sees it cut short."""
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
        raise _Dropped

    def _reset(self) -> None:
        """Close the connection with an RST (SO_LINGER 0): the client sees a reset."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()
        self.wfile.close()
        self.connection.close()
        raise _Dropped


def _chunk(ident: str, model: str, delta: dict[str, Any], finish: str | None = None) -> dict:
    return {
        "id": ident,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _parse_mix(text: str) -> dict[str, float]:
    mix: dict[str, float] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, _, weight = item.rpartition("=")
        mix[name] = float(weight)
    return mix


def main(argv: list[str] | None = None) -> None:
    """Run a fake LLM server in the foreground until Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--script", default="", help="faults in order, e.g. 429,503,ok")
    parser.add_argument("--default", default="ok", help="fault once the script is used up")
    parser.add_argument("--mix", default="", help="random faults, e.g. ok=0.9,429=0.05,500=0.05")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before answering")
    parser.add_argument("--tokens-per-second", type=float, default=30.0)
    parser.add_argument("--reply", default=None, help="fixed answer text (default: an echo)")
    parser.add_argument("--reject-model", action="append", default=[], help="answer 404")
    parser.add_argument("--api-key", default=None, help="require this Bearer key")
    parser.add_argument("--retry-after", type=float, default=1.0)
    parser.add_argument("--hang-seconds", type=float, default=30.0)
    parser.add_argument("--no-partial", action="store_true", help="ignore partial mode")
    parser.add_argument("--no-continue", action="store_true", help="ignore 'continue' turns")
    parser.add_argument("--context-chars", type=int, default=None, help="prompt size limit")
    parser.add_argument("--text-only", action="store_true", help="HTTP 500 for image parts")
    parser.add_argument("--served-model", default=None, help="answer as this model")
    parser.add_argument("--no-usage", action="store_true", help="send no token counts")
    args = parser.parse_args(argv)
    server = FakeLLMServer(
        host=args.host,
        port=args.port,
        script=[args.script] if args.script else (),
        default=args.default,
        mix=_parse_mix(args.mix),
        seed=args.seed,
        latency_s=args.latency,
        tokens_per_second=args.tokens_per_second,
        reply=args.reply,
        reject_models=args.reject_model,
        api_key=args.api_key,
        retry_after_s=args.retry_after,
        hang_seconds=args.hang_seconds,
        honours_partial=not args.no_partial,
        honours_continue=not args.no_continue,
        context_chars=args.context_chars,
        text_only=args.text_only,
        served_model=args.served_model,
        send_usage=not args.no_usage,
    ).start()
    print(f"fake OpenAI-compatible server at {server.base_url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        for r in server.requests:
            print(f"{r.time:.3f} {r.method} {r.path} -> {r.fault}")


if __name__ == "__main__":
    main()
