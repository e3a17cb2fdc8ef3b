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
        """Write ``text`` spoken in ``language`` ("en" or "zh") to ``out_path`` as WAV."""
        ...
