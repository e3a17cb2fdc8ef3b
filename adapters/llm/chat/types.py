"""The chat client's vocabulary: messages, requests, usage, results, and one attempt's record.

Shapes follow the OpenAI chat-completions API
(https://platform.openai.com/docs/api-reference/chat) as Model Studio's compatible mode
speaks it (https://help.aliyun.com/zh/model-studio/compatibility-of-openai-with-dashscope).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Role = Literal["system", "user", "assistant"]
HttpVersion = str  # "HTTP/1.1" or "HTTP/2", as httpx reports it
OnDelta = Callable[[str], None]  # receives each new piece of the answer's text as it comes


@dataclass(frozen=True)
class ChatMessage:
    """One chat message; ``content`` is text or a list of OpenAI content parts.

    ``partial=True`` on a final assistant message asks the model to continue that text
    (Model Studio's partial mode): the reply holds only the continuation.
    """

    role: Role
    content: str | list[dict[str, Any]]
    partial: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The message as the chat-completions API expects it."""
        message: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.partial:
            message["partial"] = True
        return message

    @property
    def has_image(self) -> bool:
        """True when ``content`` holds an ``image_url`` part."""
        return isinstance(self.content, list) and any(
            isinstance(p, dict) and p.get("type") == "image_url" for p in self.content
        )


@dataclass(frozen=True)
class ChatRequest:
    """A chat-completions request; ``model=None`` means the client's configured model.

    ``enable_thinking`` is Model Studio's switch for Qwen3's reasoning; None sends nothing.
    """

    messages: tuple[ChatMessage, ...]
    model: str | None = None
    temperature: float = 0.3
    top_p: float = 0.9
    max_tokens: int = 400
    stream: bool = False
    enable_thinking: bool | None = None

    @property
    def has_image(self) -> bool:
        """True when any message carries an image part."""
        return any(m.has_image for m in self.messages)


@dataclass(frozen=True)
class Usage:
    """Token counts as the server reported them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.total_tokens + other.total_tokens,
        )


def add_usage(a: Usage | None, b: Usage | None) -> Usage | None:
    """``a + b``, where None means "the server did not say": unknown stays unknown."""
    if a is None or b is None:
        return None
    return a + b


FinishKind = Literal["stop", "length", "filtered", "incomplete"]


@dataclass(frozen=True)
class ChatResult:
    """One completed chat call (one attempt at the wire level, the whole call above it).

    ``model`` is the model the server says answered (the one asked for when it did not say);
    ``requested_model`` the one asked for. ``usage`` is None when the server sent no counts.
    ``filtered`` marks an answer stopped for any reason but ``stop`` or ``length`` (e.g.
    ``content_filter``): ``finish_reason`` keeps the reason. ``truncated`` marks an answer
    cut short (token limit, context full, a continuation that could not go on).
    """

    text: str
    finish_reason: str  # "stop", "length", "content_filter", ...; "incomplete": none sent
    usage: Usage | None
    latency_s: float
    model: str
    endpoint: str  # the base URL that answered
    attempts: int = 1
    truncated: bool = False
    filtered: bool = False
    ttft_s: float | None = None  # time to first token, for streams
    request_id: str | None = None
    cached: bool = False  # served from the response cache, no API call
    endpoints_tried: tuple[str, ...] = ()  # distinct base URLs attempts went to, in order
    fallback_from: tuple[str, ...] = ()  # models that failed before ``model`` answered
    continuations: int = 0  # requests that continued an answer cut short
    requested_model: str = ""
    http_version: str | None = None  # "HTTP/1.1", "HTTP/2"
    reasoning_chars: int = 0  # reasoning_content received (never part of ``text``)


class ChatClient(Protocol):
    """OpenAI-compatible chat completions."""

    def complete(self, request: ChatRequest) -> ChatResult:
        """Send ``request`` and return the answer.

        Args:
            request: the messages and sampling parameters.

        Returns:
            The answer with its accounting.

        Raises:
            ChatError: a ``TransientError`` or ``PermanentError`` subclass with the HTTP facts.
        """
        ...


@dataclass(frozen=True)
class AttemptRecord:
    """One HTTP attempt, as handed to every ``on_attempt`` hook."""

    time: float  # time.time() when the attempt started
    call_id: str  # the same for every attempt of one ``complete``/``stream`` call
    attempt: int  # 1-based number within the call
    endpoint: str
    model: str
    parameters: dict[str, Any]  # temperature, top_p, max_tokens, stream, continuation
    outcome: Literal["ok", "transient", "permanent"]
    latency_s: float
    status_code: int | None = None  # HTTP status of an error reply (None: transport failure)
    error_code: str | None = None
    error: str | None = None
    request_id: str | None = None
    ttft_s: float | None = None
    usage: Usage | None = None
    finish_reason: str | None = None
    delivered_chars: int = 0  # text this attempt delivered (streams cut mid-way too)
    messages: tuple[dict[str, Any], ...] = ()  # the messages as sent (after anonymisation)
    http_version: str | None = None
    answered_model: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
