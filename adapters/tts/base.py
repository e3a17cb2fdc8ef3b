"""The text-to-speech interface and its result type."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class SpeechResult:
    """A WAV file of synthesised speech."""

    path: Path
    duration_s: float
    sample_rate: int
    voice: str
    language: str  # "en" | "zh"
    engine: str = ""


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
