"""Prefect task: transcribe a spoken question with whisper."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from prefect import task

from adapters.asr.base import Transcript
from narrate import stages
from narrate.settings import ASRSettings
from tasks._policy import RETRIES, RETRY_DELAYS, RETRY_JITTER, file_digest, retry_on_transient


def _audio_cache_key(context: object, parameters: dict[str, object]) -> str:
    """Cache by the audio's bytes and the model, not by the file's path."""
    asr = parameters["asr"]
    assert isinstance(asr, ASRSettings)
    audio = file_digest(parameters["audio_path"])  # type: ignore[arg-type]
    return f"transcribe-{audio}-{Path(asr.model).name}-{asr.language or 'auto'}"


@task(
    name="transcribe_question",
    retries=RETRIES,
    retry_delay_seconds=RETRY_DELAYS,
    retry_jitter_factor=RETRY_JITTER,
    retry_condition_fn=retry_on_transient,
    timeout_seconds=600,
    cache_key_fn=_audio_cache_key,
    cache_expiration=timedelta(days=7),
)
def transcribe_question(audio_path: Path, asr: ASRSettings) -> Transcript:
    """What was said in ``audio_path``; cached by the audio's content."""
    return stages.run_transcribe(audio_path, asr)
