"""Prefect task: OCR one image with tesseract."""

from __future__ import annotations

from pathlib import Path

from adapters.ocr.base import OcrResult
from narrate import stages
from narrate.settings import OCRSettings
from tasks._policy import content_cache_key, step_task


@step_task("ocr_image", timeout_s=300, cache_key_fn=content_cache_key)
def ocr_image(
    image_path: Path, language: str, ocr: OCRSettings, *, max_pixels: int = 50_000_000
) -> OcrResult:
    """Read the text in ``image_path`` (``auto``, ``en`` or ``zh``); cached by file content."""
    return stages.run_ocr(image_path, language, ocr, max_pixels=max_pixels)
