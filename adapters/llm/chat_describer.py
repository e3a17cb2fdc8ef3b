"""``ChatDescriber``: a ``Describer`` that asks a chat model (Qwen3 by default) for the words.

Prompts come from ``assets/prompts`` (see ``adapters.llm.prompts``). Vision is explicit:
``vision="on"`` sends the image itself (a base64 JPEG data URL, at most 1280 px on its
longer side), ``"off"`` never does, and ``"auto"`` asks the client's model listing
(``GET /models``) whether the model takes images; a model name is never guessed from. A
server that refuses the image parts gets ONE text-only retry, with a warning.

What is returned is what is to be spoken: Qwen3's reasoning never is; an answer the server
cut short or withheld (``finish_reason`` ``length``, ``content_filter``, ...) ends at its last
full sentence (a lone fragment is dropped), followed by a short notice in the answer's
language, and is marked ``truncated`` or ``filtered``.
"""

from __future__ import annotations

import base64
import io
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from PIL import Image

from adapters.errors import TransientError
from adapters.imaging import load_image
from adapters.llm.base import Description, DescriptionRequest, OnDelta
from adapters.llm.chat.continuation import cut_at_sentence
from adapters.llm.chat.errors import EmptyAnswerError, ImageInputRejectedError
from adapters.llm.chat.types import ChatClient, ChatMessage, ChatRequest, ChatResult
from adapters.llm.prompts import build_messages

log = logging.getLogger("narrate.llm")

MAX_IMAGE_SIDE = 1280
JPEG_QUALITY = 85
VisionMode = Literal["auto", "on", "off"]
_THINK = re.compile(r"<think>.*?</think>\s*", re.DOTALL)
_OPEN_THINK = re.compile(r"<think>.*\Z", re.DOTALL)

# Said after an answer that was cut or withheld, so it is never heard as whole.
NOTICES: dict[str, dict[str, str]] = {
    "en": {
        "filtered": "The rest of the answer was withheld by the provider's content filter.",
        "truncated": "The answer was cut short.",
    },
    "zh": {
        "filtered": "其余回答已被服务方的内容过滤拦下。",
        "truncated": "回答被截断了。",
    },
}


def notice_for(language: str, *, filtered: bool) -> str:
    """The notice for a withheld (``filtered``) or cut answer, in ``language`` (en or zh)."""
    table = NOTICES.get(language, NOTICES["en"])
    return table["filtered" if filtered else "truncated"]


def takes_images(entry: Mapping[str, Any] | None) -> bool:
    """True when a ``/models`` entry says the model takes images.

    Understood: ``input_modalities`` / ``modalities`` (a list, or ``{"input": [...]}``),
    OpenRouter's ``architecture.input_modalities``, ``capabilities`` (a list with
    ``vision``), LiteLLM's ``supports_vision``. Anything else: False.
    """
    if not entry:
        return False
    if entry.get("supports_vision") is True:
        return True
    info = entry.get("model_info")
    if isinstance(info, Mapping) and info.get("supports_vision") is True:
        return True
    candidates: list[Any] = [entry.get("input_modalities"), entry.get("capabilities")]
    modalities = entry.get("modalities")
    candidates.append(modalities.get("input") if isinstance(modalities, Mapping) else modalities)
    architecture = entry.get("architecture")
    if isinstance(architecture, Mapping):
        candidates.append(architecture.get("input_modalities"))
    for value in candidates:
        if isinstance(value, list | tuple) and {"image", "vision"} & {str(v) for v in value}:
            return True
    return False


def image_data_url(path: str | Path, max_side: int = MAX_IMAGE_SIDE) -> str:
    """``path`` as a ``data:image/jpeg;base64,...`` URL, downscaled to ``max_side`` px."""
    image = load_image(path)
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def spoken_text(text: str) -> str:
    """``text`` without ``<think>`` blocks (a whole one, or one left open at the end)."""
    return _OPEN_THINK.sub("", _THINK.sub("", text)).strip()


class ThinkFilter:
    """Passes streamed text on without ``<think>...</think>`` blocks, tags split or not.

    Some servers (vLLM, llama.cpp serving Qwen3) put the reasoning into the content inside
    ``<think>`` tags; it must not reach a listener that speaks as it goes.
    """

    OPEN, CLOSE = "<think>", "</think>"

    def __init__(self, sink: OnDelta) -> None:
        self.sink = sink
        self.buffer = ""
        self.thinking = False
        self.started = False  # some answer text was passed on

    def __call__(self, piece: str) -> None:
        """Take the next piece; pass on what is outside the tags."""
        self.buffer += piece
        out = []
        while self.buffer:
            tag = self.CLOSE if self.thinking else self.OPEN
            at = self.buffer.find(tag)
            if at == -1:
                keep = _partial_tag_length(self.buffer, tag)
                text, self.buffer = (
                    self.buffer[: len(self.buffer) - keep],
                    self.buffer[len(self.buffer) - keep :],
                )
                if not self.thinking:
                    out.append(text)
                break
            if not self.thinking:
                out.append(self.buffer[:at])
            self.buffer = self.buffer[at + len(tag) :]
            self.thinking = not self.thinking
        self._send("".join(out))

    def _send(self, text: str) -> None:
        if not self.started:  # the answer starts after a leading think block's line break
            text = text.lstrip()
            self.started = bool(text)
        if text:
            self.sink(text)

    def flush(self) -> None:
        """The stream ended: pass on a held-back fragment that was no tag after all."""
        if not self.thinking:
            self._send(self.buffer)
        self.buffer = ""


def _partial_tag_length(text: str, tag: str) -> int:
    """How many characters at the end of ``text`` could be the start of ``tag``."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:n]):
            return n
    return 0


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
        vision: VisionMode | bool | None = "auto",
        enable_thinking: bool | None = None,
        on_delta: OnDelta | None = None,
    ) -> None:
        self.client = client
        self.model = model
        self.temperature = temperature
        self.top_p = top_p
        self.max_tokens = max_tokens
        self.stream = stream
        if vision is None or isinstance(vision, bool):
            vision = "auto" if vision is None else ("on" if vision else "off")
        self.vision: VisionMode = vision
        self.enable_thinking = enable_thinking
        self.on_delta = on_delta
        self._listing: dict[str, bool] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(client={self.client!r}, model={self.model!r})"

    @property
    def effective_model(self) -> str:
        """The model the request goes to: this describer's, else the client's."""
        return self.model or str(getattr(self.client, "model", "") or "")

    def uses_vision(self, request: DescriptionRequest) -> bool:
        """True when the image itself is sent along with the text."""
        if request.image_path is None or self.vision == "off":
            return False
        if self.vision == "on":
            return True
        model = self.effective_model
        if model not in self._listing:  # a client with model_entry() reads GET /models
            lookup = getattr(self.client, "model_entry", None)
            entry = lookup(model) if callable(lookup) else None
            self._listing[model] = takes_images(entry)
        return self._listing[model]

    def build_request(
        self, request: DescriptionRequest, *, vision: bool | None = None
    ) -> ChatRequest:
        """The chat request for ``request``: prompts, plus the image when vision is on."""
        system, user = build_messages(request)
        with_image = self.uses_vision(request) if vision is None else vision
        if request.image_path is not None and with_image:
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
            enable_thinking=self.enable_thinking,
        )

    def describe(self, request: DescriptionRequest, on_delta: OnDelta | None = None) -> Description:
        """Ask the model for a description (or an answer) grounded in ``request``.

        Args:
            request: see ``Describer.describe``.
            on_delta: with ``stream=True``, receives the answer's pieces as they come.

        Returns:
            The description; a cut or withheld answer ends with a notice (see module doc).

        Raises:
            InputError: the image cannot be read (vision mode).
            TransientError: an empty answer; ``RetriesExhaustedError`` when the client gave up.
            PermanentError: the client's permanent errors; ``EmptyAnswerError`` when the model
                sent only reasoning.
        """
        listener = on_delta or self.on_delta
        streamed = (
            self.stream and listener is not None and callable(getattr(self.client, "stream", None))
        )
        vision = self.uses_vision(request)
        thinking = ThinkFilter(listener) if streamed and listener is not None else None
        if thinking is not None:
            listener = thinking
        try:
            result = self._call(self.build_request(request, vision=vision), listener, streamed)
        except ImageInputRejectedError as exc:
            if not vision:
                raise
            log.warning("vision: %s; asking once more with the text only", exc)
            vision = False
            result = self._call(self.build_request(request, vision=False), listener, streamed)
        if thinking is not None:
            thinking.flush()
        description = self._description(request, result, vision)
        if listener is not None and not streamed:
            listener(description.text)
        return description

    def _description(
        self, request: DescriptionRequest, result: ChatResult, vision: bool
    ) -> Description:
        text = spoken_text(result.text)
        if not text:
            where = f"{result.endpoint} (model {result.model})"
            if result.reasoning_chars:
                raise EmptyAnswerError(
                    f"{where} sent only its reasoning ({result.reasoning_chars} chars) and no "
                    f"answer: raise NARRATE_LLM_MAX_TOKENS or set "
                    f"NARRATE_LLM_ENABLE_THINKING=false",
                    endpoint=result.endpoint,
                    model=result.model,
                )
            if not (result.filtered or result.truncated):
                raise TransientError(
                    f"{where} returned an empty answer (finish_reason {result.finish_reason})"
                )
        notice = None
        if result.filtered or result.truncated:
            notice = notice_for(request.language, filtered=result.filtered)
            kept = cut_at_sentence(text, keep_fragment=False)
            text = f"{kept} {notice}" if kept else notice
            if request.language == "zh" and kept:
                text = kept + notice
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
            endpoints_tried=result.endpoints_tried,
            fallback_from=result.fallback_from,
            cached=result.cached,
            filtered=result.filtered,
            notice=notice,
            requested_model=result.requested_model or self.effective_model,
            http_version=result.http_version,
            vision=vision,
        )

    def _call(
        self,
        chat_request: ChatRequest,
        on_delta: OnDelta | None,
        streamed: bool,
    ) -> ChatResult:
        if streamed:
            result: ChatResult = self.client.stream(chat_request, on_delta=on_delta)  # type: ignore[attr-defined]
            return result
        return self.client.complete(chat_request)
