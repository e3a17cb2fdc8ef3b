"""Which implementation serves which capability, imported on first use (fsspec's registry idea).

``load("ocr", "tesseract")`` imports ``adapters.ocr.tesseract:TesseractOcr`` only when asked,
so ``import flows`` stays fast and heavy libraries load only where they are used. An unknown
name fails with the list of valid ones; a missing optional library names the extra to install.
"""

from __future__ import annotations

import importlib
from typing import Any, NamedTuple

from adapters.errors import ConfigError


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
    },
    "features": {
        "numpy": Implementation("adapters.features.numpy_pillow:NumpyFeatureExtractor", ""),
    },
    "llm": {
        "openai": Implementation("adapters.llm.openai_compat:OpenAICompatClient", ""),
    },
    "describer": {
        "openai": Implementation("adapters.llm.chat_describer:ChatDescriber", ""),
        "offline": Implementation("adapters.llm.offline:OfflineDescriber", ""),
    },
    "tts": {
        "pyttsx3": Implementation(
            "adapters.tts.pyttsx3_engine:Pyttsx3Synthesizer", "apt-get install espeak-ng"
        ),
    },
    "asr": {
        "whisper": Implementation(
            "adapters.asr.whisper_local:WhisperTranscriber", "pip install 'narrate[asr]'"
        ),
    },
}


def get_class(capability: str, name: str) -> type[Any]:
    """Import and return the class registered as ``name`` for ``capability``."""
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


def load(capability: str, name: str, **kwargs: Any) -> Any:
    """Instantiate the implementation ``name`` of ``capability`` with ``kwargs``."""
    return get_class(capability, name)(**kwargs)
