"""The OCR interface and its result types."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

OcrLanguage = Literal["auto", "en", "zh"]


@dataclass(frozen=True)
class WordBox:
    """One recognised word and where it is, in pixels of the original (oriented) image."""

    text: str
    left: int
    top: int
    width: int
    height: int
    confidence: float  # 0-100, as tesseract reports it


@dataclass(frozen=True)
class OcrResult:
    """What OCR found in one image."""

    text: str
    language: Literal["en", "zh"]  # the language the text was read as
    confidence: float  # mean word confidence, 0-100; 0 when no word was found
    boxes: tuple[WordBox, ...] = ()
    image_size: tuple[int, int] = (0, 0)  # (width, height) the boxes refer to
    engine: str = ""
    details: dict[str, str] = field(default_factory=dict)  # e.g. preprocessing applied

    @property
    def has_text(self) -> bool:
        """True when at least one word was recognised."""
        return bool(self.text.strip())


@runtime_checkable
class OcrEngine(Protocol):
    """Reads the text in an image."""

    def recognize(self, image_path: Path, language: OcrLanguage = "auto") -> OcrResult:
        """Read the text in an image.

        Args:
            image_path: the image file.
            language: ``en``, ``zh`` or ``auto`` (detect English vs Chinese).

        Returns:
            The text, its language, a confidence and the word boxes (pixels).

        Raises:
            InputError: the file is missing, empty, not an image, truncated or too large.
            TransientError: the engine timed out or crashed in a way worth retrying.
            PermanentError: the engine failed on this input for good.
            ConfigError: the engine or a language pack is not installed.
        """
        ...
