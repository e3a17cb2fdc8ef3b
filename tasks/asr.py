"""Prefect task ``asr``: transcribe a spoken question (``narrate.pipeline.steps.run_asr``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from narrate.config.settings import ASRSettings
from narrate.pipeline.steps import code_version, run_asr
from tasks._policy import file_digest, step_task


def audio_cache_key(context: Any, parameters: dict[str, Any]) -> str:
    """Cache key from the audio's bytes, the model and the code, not from the file's path."""
    asr: ASRSettings = parameters["asr"]
    audio = file_digest(parameters["audio_path"])
    model = f"{asr.engine}-{Path(asr.model).name}-{asr.language or 'auto'}"
    return f"asr-{code_version()}-{audio}-{model}"


asr_task = step_task(run_asr, name="asr", timeout_s=600, cache_key_fn=audio_cache_key)
