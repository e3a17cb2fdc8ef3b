"""Prefect task ``asr``: transcribe a spoken question (``narrate.pipeline.steps.run_asr``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from narrate.config.settings import ASRSettings
from narrate.pipeline.steps import run_asr
from tasks._policy import file_digest, step_task


def audio_cache_key(context: Any, parameters: dict[str, Any]) -> str:
    """Cache key from the audio's bytes and the model, not from the file's path."""
    asr: ASRSettings = parameters["asr"]
    audio = file_digest(parameters["audio_path"])
    return f"asr-{audio}-{asr.engine}-{Path(asr.model).name}-{asr.language or 'auto'}"


asr_task = step_task(run_asr, name="asr", timeout_s=600, cache_key_fn=audio_cache_key)
