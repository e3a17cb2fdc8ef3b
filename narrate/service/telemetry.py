"""The service's own Prometheus series, in narrate's registry beside the pipeline's.

Series::

    narrate_api_requests_total{route,status}          every /v1/* request and every refusal
    narrate_api_request_duration_seconds{route}       histogram, narrate's buckets
    narrate_api_jobs{state}                           gauge: admitted (waiting+running), running

``route`` is the route template (``POST /v1/jobs/{job_id}``), never a raw path, so job ids do
not multiply the series. Without prometheus_client every call here does nothing.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

_queue_depth: dict[str, Callable[[], tuple[int, int]]] = {}
_lock = threading.Lock()


@functools.cache
def _series() -> tuple[Any, Any] | None:
    from narrate.ops import metrics

    registry = metrics.REGISTRY
    if registry is None:
        return None
    from prometheus_client import Counter, Gauge, Histogram

    requests = Counter(
        "narrate_api_requests", "API requests by route and HTTP status.", ("route", "status"),
        registry=registry,
    )  # fmt: skip
    duration = Histogram(
        "narrate_api_request_duration_seconds", "Wall time of one API request.", ("route",),
        registry=registry, buckets=metrics.BUCKETS,
    )  # fmt: skip
    jobs = Gauge("narrate_api_jobs", "Jobs in the queue by state.", ("state",), registry=registry)
    jobs.labels("admitted").set_function(lambda: _depth()[0])
    jobs.labels("running").set_function(lambda: _depth()[1])
    return requests, duration


def _depth() -> tuple[int, int]:
    with _lock:
        depth = _queue_depth.get("queue")
    return depth() if depth is not None else (0, 0)


def watch_queue(depth: Callable[[], tuple[int, int]]) -> None:
    """Report a queue's counts in ``narrate_api_jobs``.

    Args:
        depth: returns (admitted, running), e.g. ``JobQueue.depth``.
    """
    with _lock:
        _queue_depth["queue"] = depth
    _series()


def record_request(route: str, status: int, seconds: float) -> None:
    """Count one request and observe its duration.

    Args:
        route: ``METHOD /route/{template}``, or ``unmatched``.
        status: the HTTP status answered.
        seconds: the request's wall time.
    """
    series = _series()
    if series is None:
        return
    requests, duration = series
    requests.labels(route, str(status)).inc()
    duration.labels(route).observe(seconds)
