"""Prefect task: describe an image (or answer a question about it) with the LLM."""

from __future__ import annotations

from pathlib import Path

from adapters.features.base import ImageFeatures
from adapters.llm.base import Description
from adapters.ocr.base import OcrResult
from narrate import stages
from narrate.settings import LLMSettings
from tasks._policy import step_task


@step_task("describe_image", timeout_s=600)
def describe_image(
    ocr: OcrResult,
    features: ImageFeatures,
    llm: LLMSettings,
    *,
    question: str | None = None,
    image_path: Path | None = None,
) -> Description:
    """Write the description (or answer) from the OCR text and the features."""
    return stages.run_describe(ocr, features, llm, question=question, image_path=image_path)
