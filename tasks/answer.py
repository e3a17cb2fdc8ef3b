"""Prefect task: write the answer and speak it sentence by sentence as it streams in."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from adapters.features.base import ImageFeatures
from adapters.llm.base import Description
from adapters.ocr.base import OcrResult
from narrate import stages
from narrate.settings import LLMSettings, TTSSettings
from narrate.speech_stream import StreamedSpeech
from tasks._policy import RETRIES, RETRY_DELAYS, RETRY_JITTER, retry_on_transient


@task(
    name="answer_aloud",
    retries=RETRIES,
    retry_delay_seconds=RETRY_DELAYS,
    retry_jitter_factor=RETRY_JITTER,
    retry_condition_fn=retry_on_transient,
    timeout_seconds=900,
    cache_policy=NO_CACHE,
)
def answer_aloud(
    ocr: OcrResult,
    features: ImageFeatures,
    llm: LLMSettings,
    tts: TTSSettings,
    out_path: Path,
    *,
    question: str | None = None,
    image_path: Path | None = None,
) -> tuple[Description, StreamedSpeech]:
    """Stream the answer from the LLM and speak each sentence as soon as it is complete.

    Writing and speaking are one task because they overlap in time: the point is that the
    first sentence is spoken while the model is still writing the rest.
    """
    return stages.run_answer_aloud(
        ocr, features, llm, tts, out_path, question=question, image_path=image_path
    )
