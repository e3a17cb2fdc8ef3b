"""Shared task policy: retry only transient errors, cache deterministic steps by file content."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun
from prefect.context import TaskRunContext
from prefect.tasks import exponential_backoff

from adapters.errors import is_transient
from adapters.files import file_sha256
from narrate.pipeline.steps import code_version

RETRIES = 3
RETRY_DELAYS = exponential_backoff(backoff_factor=1)(RETRIES)  # 1 s, 2 s, 4 s
RETRY_JITTER = 0.5  # each delay varies by up to +-50%
CACHE_FOR = timedelta(days=7)

P = ParamSpec("P")
R = TypeVar("R")


def retry_on_transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry a failed task run only when it failed with a ``TransientError``."""
    try:
        state.result()
    except Exception as exc:  # the task's own exception is re-raised here
        return is_transient(exc)
    return False


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes, or a marker that never matches when it cannot be read."""
    return file_sha256(path) or f"unreadable:{path}"


def content_cache_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    """Cache key from the image's bytes (not its path), every other parameter, the code."""
    others = {k: v for k, v in parameters.items() if k != "image_path"}
    extra = hashlib.sha256(repr(sorted(others.items(), key=lambda kv: kv[0])).encode()).hexdigest()
    task_name = context.task.name
    digest = file_digest(parameters["image_path"])
    return f"{task_name}-{code_version()}-{digest}-{extra[:16]}"


def step_task(
    fn: Callable[P, R],
    *,
    name: str,
    timeout_s: float,
    cache_key_fn: Callable[[TaskRunContext, dict[str, Any]], str] | None = None,
) -> Task[P, R]:
    """Make the Prefect task of one pipeline step from its plain function.

    The task keeps ``fn``'s signature and docstring, so neither is written twice. It is
    retried on ``TransientError`` only (not ``RetriesExhaustedError``), with exponential
    backoff and jitter, under a timeout; cached for a week by ``cache_key_fn``
    (deterministic steps, keyed by file content) or not cached at all.

    Args:
        fn: the step function in ``narrate.pipeline.steps``.
        name: the task name, one of the step vocabulary (``ocr``, ``features``, ``llm``,
            ``tts``, ``asr``, ``llm_tts``).
        timeout_s: seconds before a run of the task is failed.
        cache_key_fn: the cache key of a deterministic step, or None for no cache.

    Returns:
        The task, typed with ``fn``'s parameters and return type.
    """
    caching: dict[str, Any] = (
        {"cache_policy": NO_CACHE}
        if cache_key_fn is None
        else {"cache_key_fn": cache_key_fn, "cache_expiration": CACHE_FOR}
    )
    return task(
        name=name,
        retries=RETRIES,
        retry_delay_seconds=RETRY_DELAYS,
        retry_jitter_factor=RETRY_JITTER,
        retry_condition_fn=retry_on_transient,
        timeout_seconds=timeout_s,
        **caching,
    )(fn)
