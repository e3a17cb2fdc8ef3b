"""Prefect task: describe an image (or answer a question about it) with the LLM."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from adapters.features.base import ImageFeatures
from adapters.llm.base import Description
from adapters.ocr.base import OcrResult
from narrate import stages
from narrate.settings import LLMSettings
from tasks._policy import RETRIES, RETRY_DELAYS, RETRY_JITTER, retry_on_transient


@task(
    name="describe_image",
    retries=RETRIES,
    retry_delay_seconds=RETRY_DELAYS,
    retry_jitter_factor=RETRY_JITTER,
    retry_condition_fn=retry_on_transient,
    timeout_seconds=600,
)
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
