"""The text-to-speech interface and its result types."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class SpokenRun:
    """One run of text spoken by one voice.

    Attributes:
        text: The run as written after cleaning (what the result's text says).
        spoken: The run as handed to the engine (numbers, prices, times in words).
        language: ``en`` or ``zh``: the run's script decides, not the image's language.
        voice: The engine's voice id.
        engine: The engine name.
        duration_s: Seconds of audio for this run.
    """

    text: str
    spoken: str
    language: str
    voice: str
    engine: str
    duration_s: float


@dataclass(frozen=True)
class SpeechResult:
    """A WAV file of synthesised speech.

    Attributes:
        path: The WAV file.
        duration_s: Its length in seconds.
        sample_rate: Samples per second.
        voice: The (first) voice used.
        language: The (first) run's language, ``en`` or ``zh``.
        engine: The (first) engine used.
        text: The text that was spoken, as the engine was given it: cleaned, and with
            ``ScriptVoices`` prices and times in words (empty when the engine did not say).
        runs: Each script run with the voice that spoke it (empty for a single plain call).
    """

    path: Path
    duration_s: float
    sample_rate: int
    voice: str
    language: str  # "en" | "zh"
    engine: str = ""
    text: str = ""
    runs: tuple[SpokenRun, ...] = ()


@runtime_checkable
class SpeechSynthesizer(Protocol):
    """Speaks text into a WAV file."""

    def synthesize(self, text: str, out_path: Path, language: str = "en") -> SpeechResult:
        """Speak a text into a WAV file.

        Args:
            text: what to say; it is spoken exactly (nothing added or dropped but what
                cannot be spoken).
            out_path: the WAV file to write (replaced atomically).
            language: ``en`` or ``zh``: the voice for text whose script does not say.

        Returns:
            The WAV's path, duration (seconds) and sample rate (Hz).

        Raises:
            InputError: nothing speakable in ``text``.
            ConfigError: the engine or voice is not installed.
            RetriesExhaustedError: synthesis kept failing after the engine's own retries.
        """
        ...
