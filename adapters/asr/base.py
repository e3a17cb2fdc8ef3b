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
        """Transcribe ``audio_path``; ``language=None`` detects it."""
        ...
