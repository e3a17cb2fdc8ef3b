"""The speech-recognition interface and its result types."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Segment:
    """A stretch of recognised speech."""

    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Transcript:
    """What was said in an audio file."""

    text: str
    language: str
    segments: tuple[Segment, ...] = ()
    confidence: float = 0.0  # 0-1, from the segments' average log-probability
    model: str = ""


@runtime_checkable
class Transcriber(Protocol):
    """Turns speech into text."""

    def transcribe(self, audio_path: Path, language: str | None = None) -> Transcript:
        """Transcribe the speech in an audio file.

        Args:
            audio_path: WAV, FLAC, OGG or MP3, any sample rate.
            language: ``en``, ``zh``, ... or None to detect it.

        Returns:
            The text with its language, per-segment timings (seconds) and a confidence
            in [0, 1].

        Raises:
            InputError: the file is missing, empty, unreadable or too long.
            ConfigError: the model is missing or cannot serve ``language``.
            PermanentError: the engine failed on this input.
        """
        ...
