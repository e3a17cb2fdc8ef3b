"""``ChatDescriber``: a ``Describer`` that asks a chat model (Qwen3 by default) for the words.

Prompts come from ``assets/prompts`` (see ``adapters.llm.prompts``). Vision models (names
containing ``-vl``, e.g. ``qwen3-vl-plus``) also get the image itself as a base64 JPEG data
URL, downscaled to at most 1280 px on its longer side.
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from adapters.errors import TransientError
from adapters.imaging import load_image
from adapters.llm.base import (
    ChatClient,
    ChatMessage,
    ChatRequest,
    ChatResult,
    Description,
    DescriptionRequest,
)
from adapters.llm.prompts import build_messages

MAX_IMAGE_SIDE = 1280
JPEG_QUALITY = 85
_THINK = re.compile(r"<think>.*?</think>\s*", re.DOTALL)


def is_vision_model(model: str) -> bool:
    """True for models that take images, by name (``qwen3-vl-plus``, ``qwen-vl-max``, ...)."""
    return "-vl" in model.lower()


def image_data_url(path: str | Path, max_side: int = MAX_IMAGE_SIDE) -> str:
    """``path`` as a ``data:image/jpeg;base64,...`` URL, downscaled to ``max_side`` px."""
    image = load_image(path)
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


class ChatDescriber:
    """Describes images (or answers questions about them) with a chat model."""

    def __init__(
        self,
        client: ChatClient,
        *,
        model: str | None = None,
        temperature: float = 0.3,
        top_p: float = 0.9,
        max_tokens: int = 400,
        stream: bool = False,
        vision: bool | None = None,
        on_delta: Callable[[str], None] | None = None,
    ) -> None:
        self.client = client
        self.model = model
        self.temperature = temperature
        self.top_p = top_p
        self.max_tokens = max_tokens
        self.stream = stream
        self.vision = vision
        self.on_delta = on_delta

    def __repr__(self) -> str:
        return f"{type(self).__name__}(client={self.client!r}, model={self.model!r})"

    @property
    def effective_model(self) -> str:
        """The model the request goes to: this describer's, else the client's."""
        return self.model or str(getattr(self.client, "model", "") or "")

    def uses_vision(self, request: DescriptionRequest) -> bool:
        """True when the image itself is sent along with the text."""
        if request.image_path is None:
            return False
        if self.vision is not None:
            return self.vision
        return is_vision_model(self.effective_model)

    def build_request(self, request: DescriptionRequest) -> ChatRequest:
        """The chat request for ``request``: prompts, plus the image for vision models."""
        system, user = build_messages(request)
        if request.image_path is not None and self.uses_vision(request):
            user = ChatMessage(
                "user",
                [
                    {"type": "image_url", "image_url": {"url": image_data_url(request.image_path)}},
                    {"type": "text", "text": str(user.content)},
                ],
            )
        return ChatRequest(
            messages=(system, user),
            model=self.model,
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_tokens,
            stream=self.stream,
        )

    def describe(
        self, request: DescriptionRequest, on_delta: Callable[[str], None] | None = None
    ) -> Description:
        """Ask the model for a description (or an answer) grounded in ``request``.

        With ``stream=True`` and an ``on_delta`` (here or given to the constructor), the
        answer's pieces reach ``on_delta`` as the model writes them.
        """
        chat_request = self.build_request(request)
        result = self._call(chat_request, on_delta or self.on_delta)
        text = _THINK.sub("", result.text).strip()
        if not text:
            raise TransientError(
                f"{result.endpoint} (model {result.model}) returned an empty answer "
                f"(finish_reason {result.finish_reason})"
            )
        return Description(
            text=text,
            language=request.language,
            backend="openai",
            model=result.model,
            endpoint=result.endpoint,
            usage=result.usage,
            latency_s=result.latency_s,
            finish_reason=result.finish_reason,
            attempts=result.attempts,
            truncated=result.truncated,
            ttft_s=result.ttft_s,
            cached=result.cached,
        )

    def _call(
        self, chat_request: ChatRequest, on_delta: Callable[[str], None] | None
    ) -> ChatResult:
        stream_fn = getattr(self.client, "stream", None)
        if self.stream and on_delta is not None and callable(stream_fn):
            return stream_fn(chat_request, on_delta=on_delta)
        result = self.client.complete(chat_request)
        if on_delta is not None and result.text:
            on_delta(result.text)
        return result
