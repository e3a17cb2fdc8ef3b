"""The describer interface and its result types.

A ``Describer`` takes OCR text + image features (+ a question) and returns a description or
an answer. ``ChatDescriber`` builds prompts from ``assets/prompts`` and asks a chat client
(``adapters.llm.chat``); ``OfflineDescriber`` writes a deterministic description with no
network at all; ``FallbackDescriber`` tries describers in turn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from adapters.llm.chat.types import OnDelta, Usage

__all__ = ["Describer", "Description", "DescriptionRequest", "OnDelta", "Usage"]


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
    model: str  # the model the server says answered
    endpoint: str
    usage: Usage | None = field(default_factory=Usage)  # None: the server sent no counts
    latency_s: float = 0.0
    finish_reason: str = "stop"
    attempts: int = 1
    truncated: bool = False  # cut short (token limit, context full); ``notice`` says so
    offline: bool = False
    ttft_s: float | None = None  # time to first token when streamed
    endpoints_tried: tuple[str, ...] = ()
    fallback_from: tuple[str, ...] = ()  # models (or describers) that failed first
    cached: bool = False  # the answer came from the response cache
    filtered: bool = False  # the server withheld the rest (``finish_reason`` says why)
    notice: str | None = None  # the sentence added to ``text`` for a cut/withheld answer
    requested_model: str = ""  # the model asked for (``model`` may differ)
    http_version: str | None = None
    vision: bool = False  # the image itself was sent


class Describer(Protocol):
    """Writes a description of an image (or answers a question about it)."""

    def describe(self, request: DescriptionRequest, on_delta: OnDelta | None = None) -> Description:
        """Return a description grounded in ``request``'s OCR text and features.

        Args:
            request: the image's OCR text, features and language, maybe a question.
            on_delta: receives the text as it is written (a streaming model sends it piece
                by piece; other describers send it whole), so speech can start early. When
                the final ``text`` differs from what was delivered (a notice was added), the
                caller speaks ``text``.

        Returns:
            The description; ``text`` is what is to be spoken, in ``request.language``.

        Raises:
            InputError: the image cannot be read.
            TransientError: the backend failed in a way a retry may fix
                (``RetriesExhaustedError`` when it already retried).
            PermanentError: the backend cannot answer (bad key, no credit, unknown model).
        """
        ...
