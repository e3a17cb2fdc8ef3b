"""Prefect task ``tts``: speak a text into a WAV file (``narrate.pipeline.steps.run_tts``)."""

from __future__ import annotations

from narrate.pipeline.steps import run_tts
from tasks._policy import step_task

tts_task = step_task(run_tts, name="tts", timeout_s=300)
