"""Shared task policy: retry only transient errors, cache deterministic steps by file content."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from prefect import Task
from prefect.client.schemas.objects import State, TaskRun
from prefect.context import TaskRunContext
from prefect.tasks import exponential_backoff

from narrate.errors import is_transient

RETRIES = 3
RETRY_DELAYS = exponential_backoff(backoff_factor=1)(RETRIES)  # 1 s, 2 s, 4 s
RETRY_JITTER = 0.5  # each delay varies by up to +-50%


def retry_on_transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry a failed task run only when it failed with a ``TransientError``."""
    try:
        state.result()
    except Exception as exc:  # the task's own exception is re-raised here
        return is_transient(exc)
    return False


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes, or a marker that never matches when it cannot be read."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return f"unreadable:{path}"
    return digest.hexdigest()


def content_cache_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    """Cache key from the image's bytes (not its path) plus every other parameter."""
    others = {k: v for k, v in parameters.items() if k != "image_path"}
    extra = hashlib.sha256(repr(sorted(others.items(), key=lambda kv: kv[0])).encode()).hexdigest()
    task_name = context.task.name
    return f"{task_name}-{file_digest(parameters['image_path'])}-{extra[:16]}"
