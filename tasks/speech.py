"""Prefect task: speak a text into a WAV file."""

from __future__ import annotations

from pathlib import Path

from adapters.tts.base import SpeechResult
from narrate import stages
from narrate.settings import TTSSettings
from tasks._policy import step_task


@step_task("synthesize_speech", timeout_s=300)
def synthesize_speech(text: str, out_path: Path, language: str, tts: TTSSettings) -> SpeechResult:
    """Speak ``text`` in ``language`` ("en" or "zh") into ``out_path`` (WAV)."""
    return stages.run_speech(text, out_path, language, tts)
