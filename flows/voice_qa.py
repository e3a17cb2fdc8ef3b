"""Flow ``voice_qa``: a question about an image, spoken or typed, answered aloud.

The question's transcription (whisper) runs beside OCR and the image features; then the
answer is written from the image's text and features, and spoken into a WAV file.
``python -m flows.voice_qa IMAGE "QUESTION"`` runs it from a shell.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any, Literal

from prefect import flow

from flows._outcome import voice_qa_run_name
from flows.image_to_speech import PREFECT_STEPS, run_watched
from narrate.pipeline.results import AnswerResult, on_disk
from narrate.pipeline.sequence import answer_one
from tasks.asr import asr_task
from tasks.llm import llm_tts_task


def _submit(step: Any, *args: Any, **kwargs: Any) -> Any:
    return step.submit(*args, **kwargs)


VOICE_QA_STEPS = dataclasses.replace(
    PREFECT_STEPS, asr=asr_task, llm_tts=llm_tts_task, submit=_submit
)


@flow(name="voice-qa", flow_run_name=voice_qa_run_name, timeout_seconds=1800)
def voice_qa(
    image_path: Path,
    question_audio: Path | None = None,
    question_text: str | None = None,
    out_dir: Path | None = None,
    lang: Literal["auto", "en", "zh"] = "auto",
) -> AnswerResult:
    """Answer a question about ``image_path`` aloud: ``<out_dir>/<stem>.answer.wav``.

    Args:
        image_path: the image the question is about.
        question_audio: the question as a recording (WAV, FLAC, OGG or MP3), or
        question_text: the question as text (give one of the two; an empty text counts as
            none, as the run form sends it).
        out_dir: where the WAV and JSON go; default ``NARRATE_OUT_DIR`` or ``./narrate-out``.
        lang: the language of the text in the image; ``auto`` detects English or Chinese.

    Returns:
        The result (question, answer, OCR text, timings, the WAV's path). The run ends
        ``Completed`` with the answer's opening as its state message, or ``Failed`` with the
        one-line reason for bad input (no question, or two; a bad image or recording).

    Raises:
        InputError: the image or the recording cannot be used, or not exactly one question.
        ConfigError: a setting is invalid.
    """
    return run_watched(
        answer_one,
        VOICE_QA_STEPS,
        image_path,
        out_dir,
        lang,
        spoken=lambda result: result.answer,
        question_text=question_text or None,
        question_audio=on_disk(question_audio) if question_audio else None,
    )


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit('usage: python -m flows.voice_qa IMAGE "QUESTION" | QUESTION.wav')
    image, question = sys.argv[1], sys.argv[2]
    audio = Path(question) if Path(question).is_file() else None
    print(
        voice_qa(
            Path(image), question_audio=audio, question_text=None if audio else question
        ).to_json(indent=2)
    )
