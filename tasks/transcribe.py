"""Prefect task: transcribe a spoken question with whisper."""

from __future__ import annotations

from pathlib import Path

from adapters.asr.base import Transcript
from narrate import stages
from narrate.settings import ASRSettings
from tasks._policy import file_digest, step_task


def _audio_cache_key(context: object, parameters: dict[str, object]) -> str:
    """Cache by the audio's bytes and the model, not by the file's path."""
    asr = parameters["asr"]
    assert isinstance(asr, ASRSettings)
    audio = file_digest(parameters["audio_path"])  # type: ignore[arg-type]
    return f"transcribe-{audio}-{Path(asr.model).name}-{asr.language or 'auto'}"


@step_task("transcribe_question", timeout_s=600, cache_key_fn=_audio_cache_key)
def transcribe_question(audio_path: Path, asr: ASRSettings) -> Transcript:
    """What was said in ``audio_path``; cached by the audio's content."""
    return stages.run_transcribe(audio_path, asr)
