"""Prefect task: speak a text into a WAV file."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from adapters.tts.base import SpeechResult
from narrate import stages
from narrate.settings import TTSSettings
from tasks._policy import RETRIES, RETRY_DELAYS, RETRY_JITTER, retry_on_transient


@task(
    name="synthesize_speech",
    retries=RETRIES,
    retry_delay_seconds=RETRY_DELAYS,
    retry_jitter_factor=RETRY_JITTER,
    retry_condition_fn=retry_on_transient,
    timeout_seconds=300,
)
def synthesize_speech(text: str, out_path: Path, language: str, tts: TTSSettings) -> SpeechResult:
    """Speak ``text`` in ``language`` ("en" or "zh") into ``out_path`` (WAV)."""
    return stages.run_speech(text, out_path, language, tts)
