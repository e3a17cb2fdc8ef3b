"""The image-feature interface and its result types."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from adapters.ocr.base import WordBox


@dataclass(frozen=True)
class DominantColour:
    """One of the image's main colours."""

    hex: str  # "#rrggbb"
    name: str  # a plain colour name a person would use, e.g. "dark blue"
    share: float  # fraction of pixels, 0-1


@dataclass(frozen=True)
class ImageFeatures:
    """Measured properties of one image; every ratio is in 0-1 unless noted."""

    width: int
    height: int
    aspect_ratio: float  # width / height
    orientation: str  # "landscape" | "portrait" | "square"
    brightness: float  # mean luma, 0 black - 1 white
    contrast: float  # RMS contrast of luma, 0-1
    colourfulness: float  # Hasler-Suesstrunk metric, 0 grey - ~100+ vivid (not 0-1)
    dominant_colours: tuple[DominantColour, ...]
    sharpness: float  # variance of the Laplacian of luma (0-255 scale); higher is sharper
    edge_density: float  # share of pixels on an edge
    text_coverage: float  # share of the image covered by OCR word boxes
    layout: str  # e.g. "text-heavy", "text and picture", "picture", "blank"
    phash: str  # 64-bit perceptual hash, 16 hex digits
    vector: tuple[float, ...]  # fixed-length, L2-normalised feature vector
    summary: str  # a short human-readable summary for the prompt
    # luma's spread, (99.9th - 0.1th percentile) / 255: what the darkest and lightest parts
    # differ by, which RMS contrast understates on a page of dark text on white (mostly paper)
    luma_range: float = 1.0


# Below this luma range an image is "low-contrast" (a faint grey-on-grey image measures
# ~0.04; the bundled scans, photos and a dark-mode screenshot 0.66-1.00).
LOW_CONTRAST_RANGE = 0.35


@runtime_checkable
class FeatureExtractor(Protocol):
    """Computes ``ImageFeatures`` for an image."""

    def extract(self, image_path: Path, text_boxes: Sequence[WordBox] = ()) -> ImageFeatures:
        """Measure an image: size, colours, brightness, sharpness, layout, a vector.

        Args:
            image_path: the image file.
            text_boxes: OCR word boxes (pixels), which give the text coverage.

        Returns:
            The features; ratios in [0, 1], sizes in pixels.

        Raises:
            InputError: the file is missing, empty, not an image, truncated or too large.
        """
        ...
