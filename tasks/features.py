"""Prefect task ``features``: measure one image (``narrate.pipeline.steps.run_features``)."""

from __future__ import annotations

from narrate.pipeline.steps import run_features
from tasks._policy import content_cache_key, step_task

features_task = step_task(
    run_features, name="features", timeout_s=120, cache_key_fn=content_cache_key
)
