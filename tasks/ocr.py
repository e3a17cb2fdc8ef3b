"""Prefect task: OCR one image with tesseract."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from prefect import task

from adapters.ocr.base import OcrResult
from narrate import stages
from narrate.settings import OCRSettings
from tasks._policy import (
    RETRIES,
    RETRY_DELAYS,
    RETRY_JITTER,
    content_cache_key,
    retry_on_transient,
)


@task(
    name="ocr_image",
    retries=RETRIES,
    retry_delay_seconds=RETRY_DELAYS,
    retry_jitter_factor=RETRY_JITTER,
    retry_condition_fn=retry_on_transient,
    timeout_seconds=300,
    cache_key_fn=content_cache_key,
    cache_expiration=timedelta(days=7),
)
def ocr_image(
    image_path: Path, language: str, ocr: OCRSettings, *, max_pixels: int = 50_000_000
) -> OcrResult:
    """Read the text in ``image_path`` (``auto``, ``en`` or ``zh``); cached by file content."""
    return stages.run_ocr(image_path, language, ocr, max_pixels=max_pixels)
