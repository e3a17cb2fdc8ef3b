"""The OCR interface and its result types.

Confidences are on a 0-1 scale everywhere (tesseract's 0-100 is divided by 100; RapidOCR's
scores are 0-1 already), like the ASR transcript's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

OcrLanguage = Literal["auto", "en", "zh"]


@dataclass(frozen=True)
class WordBox:
    """One recognised word (tesseract) or line (RapidOCR) and where it is.

    Coordinates are pixels of the original, upright image (EXIF orientation applied);
    ``confidence`` is 0-1.
    """

    text: str
    left: int
    top: int
    width: int
    height: int
    confidence: float  # 0-1


@dataclass(frozen=True)
class OcrResult:
    """What OCR found in one image.

    ``text`` holds only what passed the garbage filter (confidence threshold, word shape),
    one line per line of text; it is empty when no readable text was found, and then
    ``details["no_text"]`` says why. ``boxes`` are the kept words, ``dropped`` the words the
    filter rejected, each with its confidence: together they are everything the engine read.
    """

    text: str
    language: Literal["en", "zh"]  # the language the text was read as
    confidence: float  # mean confidence of the kept words, 0-1; 0 when none was kept
    boxes: tuple[WordBox, ...] = ()
    image_size: tuple[int, int] = (0, 0)  # (width, height) the boxes refer to
    engine: str = ""
    details: dict[str, str] = field(default_factory=dict)  # e.g. preprocessing applied
    dropped: tuple[WordBox, ...] = ()  # words read but rejected as garbage

    @property
    def has_text(self) -> bool:
        """True when at least one word was recognised and kept."""
        return bool(self.text.strip())


@runtime_checkable
class OcrEngine(Protocol):
    """Reads the text in an image."""

    def recognize(self, image_path: Path, language: OcrLanguage = "auto") -> OcrResult:
        """Read the text in an image.

        Args:
            image_path: any image file ``adapters.imaging.load_image`` opens.
            language: ``auto`` (detect English vs Simplified Chinese), ``en`` or ``zh``.

        Returns:
            The text found (possibly empty), its language, confidences and word boxes.

        Raises:
            InputError: the file is missing or not a usable image.
            ConfigError: the engine or a language pack is not installed.
            PermanentError: the image could not be read in the time limit (or the engine
                failed on it); retrying will not help.
            TransientError: the engine crashed or could not start; retrying may help.
        """
        ...
