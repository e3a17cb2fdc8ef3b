"""The LLM interfaces and their result types.

Two levels:

- ``ChatClient``: OpenAI-style chat completions (messages in, text out). One class serves
  every OpenAI-compatible provider; providers differ only in settings.
- ``Describer``: OCR text + image features (+ a question) in, a description or answer out.
  ``ChatDescriber`` builds prompts from ``assets/prompts`` and asks a ``ChatClient``;
  ``OfflineDescriber`` writes a deterministic description with no network at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ChatMessage:
    """One chat message; ``content`` is text or a list of OpenAI content parts.

    ``partial=True`` on a final assistant message asks the model to continue that text
    (DashScope's partial mode): the reply holds only the continuation.
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


@dataclass(frozen=True)
class ChatRequest:
    """A chat-completions request; ``model=None`` means the client's configured model."""

    messages: tuple[ChatMessage, ...]
    model: str | None = None
    temperature: float = 0.3
    top_p: float = 0.9
    max_tokens: int = 400
    stream: bool = False


@dataclass(frozen=True)
class Usage:
    """Token counts as the API reported them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.total_tokens + other.total_tokens,
        )


@dataclass(frozen=True)
class ChatResult:
    """One completed chat call."""

    text: str
    finish_reason: str  # "stop", "length", ...
    usage: Usage
    latency_s: float
    model: str  # the model that answered
    endpoint: str  # the base URL that answered
    attempts: int = 1
    truncated: bool = False
    ttft_s: float | None = None  # time to first token, for streams
    request_id: str | None = None
    cached: bool = False  # served from the response cache, no API call
    endpoints_tried: tuple[str, ...] = ()  # distinct base URLs attempts went to, in order
    fallback_from: tuple[str, ...] = ()  # models that failed before ``model`` answered
    continuations: int = 0  # requests that continued an answer stopped by finish "length"


@runtime_checkable
class ChatClient(Protocol):
    """OpenAI-compatible chat completions."""

    def complete(self, request: ChatRequest) -> ChatResult:
        """Send one chat-completions request and return the answer.

        Args:
            request: the messages and sampling parameters.

        Returns:
            The answer's text, ``finish_reason``, ``usage`` and timings.

        Raises:
            TransientError: a failure worth retrying (timeout, 429, 5xx, connection).
            PermanentError: a failure retrying cannot fix (4xx, bad key, no credit).
        """
        ...


@dataclass(frozen=True)
class DescriptionRequest:
    """What a describer gets: the image's text and features, and maybe a question."""

    ocr_text: str
    language: Literal["en", "zh"]
    features_summary: str
    question: str | None = None
    image_path: Path | None = None  # sent along to vision models only
    facts: dict[str, Any] = field(default_factory=dict)  # structured features, for offline


@dataclass(frozen=True)
class Description:
    """A description of an image, or an answer to a question about it."""

    text: str
    language: Literal["en", "zh"]
    backend: str  # "openai" | "offline"
    model: str
    endpoint: str
    usage: Usage = field(default_factory=Usage)
    latency_s: float = 0.0
    finish_reason: str = "stop"
    attempts: int = 1
    truncated: bool = False
    offline: bool = False
    ttft_s: float | None = None  # time to first token when streamed
    endpoints_tried: tuple[str, ...] = ()
    fallback_from: tuple[str, ...] = ()  # models (or describers) that failed first
    cached: bool = False  # the answer came from the response cache


@runtime_checkable
class Describer(Protocol):
    """Writes a description of an image (or answers a question about it)."""

    def describe(
        self, request: DescriptionRequest, on_delta: Callable[[str], None] | None = None
    ) -> Description:
        """Write a description (or an answer) grounded in the OCR text and features.

        Args:
            request: the image's text, language, features and the question, if any.
            on_delta: receives the text as it is written (a streaming model sends it piece
                by piece; other describers send it whole), so speech can start early.

        Returns:
            The text with its language, backend, model, usage and how it was obtained.

        Raises:
            TransientError: the backend failed in a way worth retrying;
                ``RetriesExhaustedError`` when the describer already retried.
            PermanentError: the backend refused the request for good.
        """
        ...
