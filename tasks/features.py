"""Prefect task: measure one image's features."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from adapters.features.base import ImageFeatures
from adapters.ocr.base import WordBox
from narrate import stages
from tasks._policy import content_cache_key, step_task


@step_task("extract_features", timeout_s=120, cache_key_fn=content_cache_key)
def extract_features(
    image_path: Path, boxes: Sequence[WordBox] = (), *, max_pixels: int = 50_000_000
) -> ImageFeatures:
    """Measure size, colours, brightness, sharpness and layout; cached by file content."""
    return stages.run_features(image_path, boxes, max_pixels=max_pixels)
