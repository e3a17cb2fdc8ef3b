"""Prefect task ``ocr``: read the text in one image (``narrate.pipeline.steps.run_ocr``)."""

from __future__ import annotations

from narrate.pipeline.steps import run_ocr
from tasks._policy import content_cache_key, step_task

ocr_task = step_task(run_ocr, name="ocr", timeout_s=300, cache_key_fn=content_cache_key)
