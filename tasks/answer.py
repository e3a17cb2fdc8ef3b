"""Prefect task: write the answer and speak it sentence by sentence as it streams in."""

from __future__ import annotations

from pathlib import Path

from adapters.features.base import ImageFeatures
from adapters.llm.base import Description
from adapters.ocr.base import OcrResult
from narrate import stages
from narrate.settings import LLMSettings, TTSSettings
from narrate.speech_stream import StreamedSpeech
from tasks._policy import step_task


@step_task("answer_aloud", timeout_s=900)
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
