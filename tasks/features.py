"""Prefect task: measure one image's features."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from prefect import task

from adapters.features.base import ImageFeatures
from adapters.ocr.base import WordBox
from narrate import stages
from tasks._policy import (
    RETRIES,
    RETRY_DELAYS,
    RETRY_JITTER,
    content_cache_key,
    retry_on_transient,
)


@task(
    name="extract_features",
    retries=RETRIES,
    retry_delay_seconds=RETRY_DELAYS,
    retry_jitter_factor=RETRY_JITTER,
    retry_condition_fn=retry_on_transient,
    timeout_seconds=120,
    cache_key_fn=content_cache_key,
    cache_expiration=timedelta(days=7),
)
def extract_features(
    image_path: Path, boxes: Sequence[WordBox] = (), *, max_pixels: int = 50_000_000
) -> ImageFeatures:
    """Measure size, colours, brightness, sharpness and layout; cached by file content."""
    return stages.run_features(image_path, boxes, max_pixels=max_pixels)
