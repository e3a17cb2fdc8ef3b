"""Prefect tasks ``llm`` (write the description or answer) and ``llm_tts``.

``llm_tts`` writes the answer and speaks each sentence as it streams in: one task, because
the two overlap in time.
"""

from __future__ import annotations

from narrate.pipeline.steps import run_llm, run_llm_tts
from tasks._policy import step_task

llm_task = step_task(run_llm, name="llm", timeout_s=600)
llm_tts_task = step_task(run_llm_tts, name="llm_tts", timeout_s=900)
