"""Reading what a server said: pure functions from status, headers and body to facts.

Every reply is classified by what it says, not only by its status line:

- ``error_fields(body)``: (code, type, message) of an OpenAI-style ``{"error": {...}}``, a
  DashScope-style ``{"code", "message"}`` or a vLLM-style ``{"object": "error", ...}`` body.
- ``embedded_error(data)``: an error object inside a 200 (some vLLM deployments, gateways).
- ``page_summary(status, reason, body)``: one line for an HTML or plain-text error page
  (status, reason, the page's ``<title>``), never the page itself.
- ``finish_kind(reason)``: ``stop`` / ``length`` / ``filtered`` / ``incomplete`` for any
  ``finish_reason`` a server sends (including the string ``"null"``).
- ``classify_status(...)``: which ``ChatError`` an error reply becomes.
- ``parse_retry_after(headers)``: ``retry-after-ms`` or ``Retry-After`` in seconds.

Sources: OpenAI's error codes (https://platform.openai.com/docs/guides/error-codes), Model
Studio's (https://help.aliyun.com/zh/model-studio/error-code), RFC 9110 section 10.2.3.
"""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

from adapters.llm.chat.errors import (
    ChatError,
    ChatPermanentError,
    ChatTransientError,
    ContextLengthError,
    EndpointNotFoundError,
    ImageInputRejectedError,
    ModelNotFoundError,
)
from adapters.llm.chat.types import FinishKind, Usage

TRANSIENT_STATUS = frozenset({408, 409, 425, 429})
# Error codes that mean "out of credit": a retry cannot succeed until someone pays.
QUOTA_CODES = frozenset(
    {"insufficient_quota", "arrearage", "billing_hard_limit_reached", "billing_not_active"}
)
MODEL_ERROR_CODES = frozenset(
    {"model_not_found", "model_not_supported", "modelnotfound", "model_not_available"}
)
CONTEXT_CODES = frozenset({"context_length_exceeded", "context_window_exceeded"})
# Normal ends under other names (TGI, Anthropic-style gateways).
STOP_REASONS = frozenset({"stop", "eos", "eos_token", "end_turn", "stop_sequence"})
INCOMPLETE_REASONS = frozenset({"", "null", "none", "incomplete", "abort", "aborted", "cancelled"})
MAX_SERVER_MESSAGE = 300

_MODEL_MISSING = re.compile(
    r"\bmodel\b.*\b(does not exist|not found|not exist|unknown|no such|not available|"
    r"not supported|is not served|invalid model)|\binvalid model( name)?\b|\bunknown model\b",
    re.IGNORECASE | re.DOTALL,
)
_CONTEXT_FULL = re.compile(
    r"context[ _-]?(length|window)|maximum context|exceeds? the (model'?s? )?(maximum )?"
    r"(context|token)|too many tokens|prompt is too long|input is too long|"
    r"requested \d+ tokens",
    re.IGNORECASE,
)
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[^>]+>")


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date).

    Args:
        headers: the reply's headers (case-insensitive mapping).
        now: the current time (``time.time()`` when None), for an HTTP date.

    Returns:
        Seconds (>= 0), or None when the server gave no usable hint.
    """
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


def looks_like_page(body: bytes, content_type: str = "") -> bool:
    """True for an HTML page (or any body that is not JSON): a gateway's, not the API's."""
    if "html" in content_type.lower():
        return True
    head = body.lstrip()[:1]
    return head == b"<" or (bool(head) and head not in (b"{", b"["))


def page_summary(status: int, reason: str, body: bytes) -> str:
    """One line for an error page: ``HTTP 502 Bad Gateway (page "502 Bad Gateway")``.

    Args:
        status: the HTTP status code.
        reason: the reason phrase (may be empty: HTTP/2 has none).
        body: the page; only its ``<title>`` (or first text line) is used, 80 chars at most.

    Returns:
        A single line with no markup and no line breaks.
    """
    match = _TITLE.search(body[:20_000])
    if match:
        title = match.group(1).decode("utf-8", "replace")
    else:
        text = _TAGS.sub(" ", body[:2_000].decode("utf-8", "replace"))
        title = next((line.strip() for line in text.splitlines() if line.strip()), "")
    title = " ".join(html.unescape(title).split())[:80]
    line = f"HTTP {status}" + (f" {reason}" if reason else "")
    return line + (f' (page "{title}")' if title and title != line[5:].strip() else "")


def error_fields(data: Any) -> tuple[str | None, str | None, str]:
    """(code, type, message) from an error body (bytes or parsed JSON).

    Handles ``{"error": {"code", "type", "message"}}`` (OpenAI), ``{"code", "message"}``
    (DashScope native), ``{"object": "error", "message", "code"}`` (vLLM) and
    ``{"error": "text"}`` / ``{"detail": "text"}``. A non-JSON body gives its first line.
    """
    if isinstance(data, bytes | bytearray):
        try:
            data = json.loads(data)
        except ValueError:
            text = bytes(data).decode("utf-8", "replace").strip()
            return None, None, " ".join(text.split())[:MAX_SERVER_MESSAGE]
    if not isinstance(data, dict):
        return None, None, str(data)[:MAX_SERVER_MESSAGE]
    err = data.get("error")
    if isinstance(err, dict):
        code, kind, message = err.get("code"), err.get("type"), err.get("message")
    else:
        code, kind, message = data.get("code"), data.get("type"), data.get("message")
        if not message and isinstance(err, str):
            message = err
        if not message and isinstance(data.get("detail"), str):
            message = data["detail"]
    if kind is None and data.get("object") == "error":
        kind = "error"
    return (
        None if code is None else str(code),
        None if kind is None else str(kind),
        " ".join(("" if message is None else str(message)).split())[:MAX_SERVER_MESSAGE],
    )


def embedded_error(data: Mapping[str, Any]) -> bool:
    """True when a 200 body (or SSE event) is an error object rather than an answer."""
    if data.get("object") == "error":
        return True
    if data.get("error") and not data.get("choices"):
        return True
    return "choices" not in data and isinstance(data.get("message"), str) and "code" in data


def status_of(code: str | None, fallback: int) -> int:
    """An error object's numeric ``code`` (vLLM puts 404 there) as a status, else ``fallback``."""
    if code is not None and code.isdigit() and 400 <= int(code) < 600:
        return int(code)
    return fallback


def finish_kind(reason: Any) -> FinishKind:
    """What a ``finish_reason`` means for the caller.

    ``stop`` (and synonyms such as ``eos``) is a whole answer; ``length`` hit ``max_tokens``;
    None, ``""``, the string ``"null"`` or ``abort`` mean the answer did not finish
    (``incomplete``); anything else (``content_filter``, ``tool_calls``, ...) means the
    server withheld the rest (``filtered``).
    """
    if reason is None:
        return "incomplete"
    text = str(reason).strip().lower()
    if text in STOP_REASONS:
        return "stop"
    if text == "length" or text == "max_tokens":
        return "length"
    if text in INCOMPLETE_REASONS:
        return "incomplete"
    return "filtered"


def content_text(content: Any) -> str:
    """Text of a message ``content``: a string, or a list of ``{"type": "text"}`` parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content)


def usage_of(raw: Any) -> Usage | None:
    """``Usage`` from a ``usage`` object; None when the server sent none (unknown, not 0)."""
    if not isinstance(raw, dict):
        return None
    prompt = int(raw.get("prompt_tokens") or 0)
    completion = int(raw.get("completion_tokens") or 0)
    return Usage(prompt, completion, int(raw.get("total_tokens") or prompt + completion))


def classify_status(
    status: int,
    code: str | None,
    kind: str | None,
    message: str,
    *,
    where: str,
    endpoint: str,
    model: str,
    retry_after_s: float | None = None,
    has_image: bool = False,
    is_page: bool = False,
) -> ChatError:
    """The ``ChatError`` an error reply (or an error object in a 200) stands for.

    Args:
        status: HTTP status (or the error object's numeric code).
        code: the server's error code, if any.
        kind: the server's error type, if any.
        message: the server's message, or the one-line page summary for an HTML page.
        where: ``"<base URL> (model <name>)"`` for the message.
        endpoint: the base URL, kept on the error.
        model: the model asked for.
        retry_after_s: the server's hint in seconds.
        has_image: the request carried image parts.
        is_page: ``message`` summarises an HTML/text page (not the API's own JSON).

    Returns:
        A ``ChatTransientError`` or a ``ChatPermanentError`` (sub)class instance.
    """
    codes = {c.lower() for c in (code, kind) if c}
    tag = f" [{code or kind}]" if (code or kind) else ""
    detail = "" if is_page else (f": {message}" if message else "")
    head = message if is_page else f"HTTP {status}{tag}"
    facts: dict[str, Any] = {
        "status_code": status,
        "error_code": code or kind,
        "endpoint": endpoint,
        "model": model,
    }
    if codes & QUOTA_CODES:
        return ChatPermanentError(
            f"{where} refused the request ({head}): the account is out of credit or quota; "
            f"top up or check billing for this API key, then try again{detail}",
            **facts,
        )
    if status in (401, 403):
        return ChatPermanentError(
            f"{where} rejected the credentials ({head}): check the API key "
            f"(DASHSCOPE_API_KEY or NARRATE_LLM_API_KEY) and that it belongs to this "
            f"region's endpoint{detail}",
            **facts,
        )
    if codes & MODEL_ERROR_CODES or (status in (200, 400, 404) and _MODEL_MISSING.search(message)):
        return ModelNotFoundError(
            f"{where}: the server does not serve model {model} ({head}){detail}", **facts
        )
    if status == 404:
        hint = ""
        if not endpoint.rstrip("/").endswith("/v1"):
            hint = f"; OpenAI-compatible servers usually answer under /v1 (try {endpoint}/v1)"
        return EndpointNotFoundError(
            f"{where}: no chat API at {endpoint}/chat/completions ({head}): check the base "
            f"URL (NARRATE_LLM_BASE_URL){hint}",
            **facts,
        )
    if codes & CONTEXT_CODES or (status in (200, 400, 413, 422) and _CONTEXT_FULL.search(message)):
        return ContextLengthError(
            f"{where}: the prompt does not fit the model's context ({head}){detail}", **facts
        )
    if has_image and status in (400, 415, 422, 500):
        # A text-only server often fails image parts with a bare 500 or 400: retrying the
        # same request cannot help, a text-only request can (the describer does that once).
        return ImageInputRejectedError(
            f"{where} refused the image parts ({head}): the model or server takes text only; "
            f"set NARRATE_LLM_VISION=off{detail}",
            **facts,
        )
    if status < 400:  # an error object inside a 200, with no status of its own
        return ChatTransientError(
            f"{where} sent an error instead of an answer (HTTP {status}{tag}){detail}", **facts
        )
    if status in TRANSIENT_STATUS or status >= 500:
        return ChatTransientError(
            f"{where} answered {head}{detail}", retry_after_s=retry_after_s, **facts
        )
    return ChatPermanentError(f"{where} refused the request ({head}){detail}", **facts)


def request_id_of(data: Mapping[str, Any], headers: Mapping[str, str]) -> str | None:
    """The server's id for the reply (body ``id``/``request_id`` or ``x-request-id``)."""
    value = data.get("id") or data.get("request_id") or headers.get("x-request-id")
    return None if value is None else str(value)
