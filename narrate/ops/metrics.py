"""Prometheus metrics for narrate: one private registry, small recording helpers, an endpoint.

Everything lives in narrate's own ``CollectorRegistry`` (``REGISTRY``), never the global
default one, so several instances and the tests do not clash. ``prometheus_client`` (the
``metrics`` extra) is imported on the first recording call, not at import time; when it is
not installed every ``record_*``/``observe_*`` helper is a no-op and ``REGISTRY`` is None.

Series (label values are free text except where listed)::

    narrate_stage_duration_seconds{stage}                      histogram (ocr, llm, tts, ...)
    narrate_llm_requests_total{status_class,endpoint,model}    2xx|4xx|5xx|timeout|connection
    narrate_llm_request_duration_seconds{endpoint,model}       histogram
    narrate_llm_time_to_first_token_seconds{model}             histogram (streams)
    narrate_llm_tokens_total{kind,model}                       kind = prompt|completion
    narrate_llm_in_flight_requests                             gauge
    narrate_llm_retries_total{reason}
    narrate_llm_failovers_total{from_endpoint,to_endpoint}
    narrate_llm_fallbacks_total{from_model,to_model}
    narrate_llm_truncations_total{model}
    narrate_cache_requests_total{result}                       hit|miss
    narrate_items_total{flow,status}                           ok|failed

Endpoint labels pass through ``endpoint_label``: credentials, query strings and fragments are
stripped, so an API key never lands in a label.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from adapters.errors import ConfigError

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

logger = logging.getLogger(__name__)

#: Histogram buckets (seconds): fine between 0.1 and 2 s so P90/P99 there are meaningful.
BUCKETS: tuple[float, ...] = (
    0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.75, 0.9,
    1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0,
)  # fmt: skip

#: The port the sample Prometheus config (monitoring/prometheus.yml) scrapes.
DEFAULT_PORT = 9464

INSTALL_HINT = "pip install 'narrate[metrics]'"


@dataclass(frozen=True)
class _Metrics:
    """The registry and every metric in it, built once per process."""

    registry: CollectorRegistry
    stage_duration: Histogram
    llm_requests: Counter
    llm_duration: Histogram
    llm_ttft: Histogram
    llm_tokens: Counter
    llm_in_flight: Gauge
    llm_retries: Counter
    llm_failovers: Counter
    llm_fallbacks: Counter
    llm_truncations: Counter
    cache_requests: Counter
    items: Counter


_lock = threading.Lock()
_state: dict[str, _Metrics | None] = {}


def _build() -> _Metrics | None:
    try:
        from prometheus_client import (
            CollectorRegistry,
            Counter,
            Gauge,
            Histogram,
            PlatformCollector,
            ProcessCollector,
        )
    except ImportError:
        logger.debug("prometheus_client is not installed: metrics are disabled (%s)", INSTALL_HINT)
        return None
    reg = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=reg)
    PlatformCollector(registry=reg)

    def counter(name: str, doc: str, labels: tuple[str, ...]) -> Counter:
        return Counter(name, doc, labels, registry=reg)

    def histogram(name: str, doc: str, labels: tuple[str, ...]) -> Histogram:
        return Histogram(name, doc, labels, registry=reg, buckets=BUCKETS)

    return _Metrics(
        registry=reg,
        stage_duration=histogram(
            "narrate_stage_duration_seconds", "Wall time of one pipeline stage.", ("stage",)
        ),
        llm_requests=counter(
            "narrate_llm_requests",
            "LLM HTTP requests by outcome.",
            ("status_class", "endpoint", "model"),
        ),
        llm_duration=histogram(
            "narrate_llm_request_duration_seconds",
            "Wall time of one LLM HTTP request.",
            ("endpoint", "model"),
        ),
        llm_ttft=histogram(
            "narrate_llm_time_to_first_token_seconds",
            "Time from sending a streamed LLM request to its first token.",
            ("model",),
        ),
        llm_tokens=counter(
            "narrate_llm_tokens", "LLM tokens as reported by the API.", ("kind", "model")
        ),
        llm_in_flight=Gauge(
            "narrate_llm_in_flight_requests", "LLM requests currently open.", registry=reg
        ),
        llm_retries=counter("narrate_llm_retries", "LLM request retries.", ("reason",)),
        llm_failovers=counter(
            "narrate_llm_failovers",
            "Switches from one LLM endpoint to another.",
            ("from_endpoint", "to_endpoint"),
        ),
        llm_fallbacks=counter(
            "narrate_llm_fallbacks",
            "Switches from one LLM model to another.",
            ("from_model", "to_model"),
        ),
        llm_truncations=counter(
            "narrate_llm_truncations",
            "LLM answers cut off at max_tokens (finish_reason=length).",
            ("model",),
        ),
        cache_requests=counter("narrate_cache_requests", "Result-cache look-ups.", ("result",)),
        items=counter("narrate_items", "Batch items processed, by outcome.", ("flow", "status")),
    )


def _metrics() -> _Metrics | None:
    """The process's metrics, built on first use; None when prometheus_client is missing."""
    try:
        return _state["m"]
    except KeyError:
        with _lock:
            if "m" not in _state:
                _state["m"] = _build()
            return _state["m"]


def __getattr__(name: str) -> Any:
    """``REGISTRY``: narrate's ``CollectorRegistry`` (None without prometheus_client)."""
    if name == "REGISTRY":
        m = _metrics()
        return None if m is None else m.registry
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@contextlib.contextmanager
def unrecorded() -> Iterator[None]:
    """Record nothing in this block unless the metrics were already built: a one-shot command.

    ``narrate describe`` neither serves nor pushes its metrics, so it need not import
    prometheus_client (30-50 ms). Recording helpers are no-ops meanwhile (as without the
    library); afterwards the metrics build on first use as usual. Metrics already built (a
    long-running process, a test session) keep recording.
    """
    with _lock:
        suspended = "m" not in _state
        if suspended:
            _state["m"] = None
    try:
        yield
    finally:
        if suspended:
            with _lock:
                if _state.get("m", 0) is None:
                    del _state["m"]


def enabled() -> bool:
    """True when prometheus_client is installed and metrics are recorded."""
    return _metrics() is not None


# --- label helpers ---------------------------------------------------------------------------

_USERINFO = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)?[^/@]*@")


def endpoint_label(url: str) -> str:
    """``url`` fit for a label: no ``user:pass@``, no query string, no fragment, no trailing /."""
    clean = url.strip().split("#", 1)[0].split("?", 1)[0]
    clean = _USERINFO.sub(lambda match: match.group(1) or "", clean)
    return clean.rstrip("/") or "unknown"


def status_class(code: int | None, error_kind: str | None = None) -> str:
    """The ``status_class`` label of a request.

    ``2xx``/``4xx``/``5xx``/... from an HTTP status code, else ``timeout`` (``error_kind``
    mentions a timeout) or ``connection`` (no HTTP answer at all).
    """
    if code is not None:
        return f"{code // 100}xx" if 100 <= code <= 599 else "other"
    if error_kind and "timeout" in error_kind.lower():
        return "timeout"
    return "connection"


# --- recording helpers -----------------------------------------------------------------------


def observe_stage(stage: str, seconds: float) -> None:
    """Record that pipeline stage ``stage`` took ``seconds``."""
    if (m := _metrics()) is not None:
        m.stage_duration.labels(stage=stage).observe(seconds)


@contextlib.contextmanager
def time_stage(stage: str) -> Iterator[None]:
    """Time the ``with`` block as stage ``stage`` (also when it raises)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        observe_stage(stage, time.perf_counter() - start)


def record_llm_request(
    endpoint: str, model: str, status_class: str, seconds: float | None = None
) -> None:
    """Count one LLM HTTP request (one attempt) and, if given, observe its duration."""
    if (m := _metrics()) is None:
        return
    endpoint = endpoint_label(endpoint)
    m.llm_requests.labels(status_class=status_class, endpoint=endpoint, model=model).inc()
    if seconds is not None:
        m.llm_duration.labels(endpoint=endpoint, model=model).observe(seconds)


def record_ttft(model: str, seconds: float) -> None:
    """Record a streamed request's time to first token."""
    if (m := _metrics()) is not None:
        m.llm_ttft.labels(model=model).observe(seconds)


@contextlib.contextmanager
def llm_in_flight() -> Iterator[None]:
    """Count the ``with`` block as one open LLM request."""
    m = _metrics()
    if m is None:
        yield
        return
    m.llm_in_flight.inc()
    try:
        yield
    finally:
        m.llm_in_flight.dec()


def record_tokens(model: str, prompt: int, completion: int) -> None:
    """Add the prompt and completion tokens one answer used."""
    if (m := _metrics()) is None:
        return
    if prompt > 0:
        m.llm_tokens.labels(kind="prompt", model=model).inc(prompt)
    if completion > 0:
        m.llm_tokens.labels(kind="completion", model=model).inc(completion)


def record_retry(reason: str) -> None:
    """Count one retry of an LLM request (``reason`` e.g. 429, 5xx, timeout, connection)."""
    if (m := _metrics()) is not None:
        m.llm_retries.labels(reason=reason).inc()


def record_failover(from_endpoint: str, to_endpoint: str) -> None:
    """Count one switch from endpoint ``from_endpoint`` to ``to_endpoint``."""
    if (m := _metrics()) is not None:
        m.llm_failovers.labels(
            from_endpoint=endpoint_label(from_endpoint), to_endpoint=endpoint_label(to_endpoint)
        ).inc()


def record_fallback(from_model: str, to_model: str) -> None:
    """Count one switch from model ``from_model`` to ``to_model``."""
    if (m := _metrics()) is not None:
        m.llm_fallbacks.labels(from_model=from_model, to_model=to_model).inc()


def record_truncation(model: str) -> None:
    """Count one answer cut off at max_tokens."""
    if (m := _metrics()) is not None:
        m.llm_truncations.labels(model=model).inc()


def record_cache(hit: bool) -> None:
    """Count one cache look-up as a hit or a miss."""
    if (m := _metrics()) is not None:
        m.cache_requests.labels(result="hit" if hit else "miss").inc()


def record_item(flow: str, ok: bool) -> None:
    """Count one batch item of flow ``flow`` as ok or failed."""
    if (m := _metrics()) is not None:
        m.items.labels(flow=flow, status="ok" if ok else "failed").inc()


# --- exposition ------------------------------------------------------------------------------

_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}


def metric_names() -> set[str]:
    """Every series name the registry exposes (``_total``, ``_bucket``, ... included)."""
    m = _metrics()
    if m is None:
        return set()
    names: set[str] = set()
    for family in m.registry.collect():
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
    return names


def exposition() -> bytes:
    """The registry in the Prometheus text format (empty without prometheus_client)."""
    m = _metrics()
    if m is None:
        return b""
    from prometheus_client import generate_latest

    return generate_latest(m.registry)


def _require() -> _Metrics:
    m = _metrics()
    if m is None:
        raise ConfigError(f"metrics need prometheus_client: {INSTALL_HINT}")
    return m


def start_metrics_server(port: int = DEFAULT_PORT, addr: str = "127.0.0.1") -> tuple[Any, Any]:
    """Serve ``/metrics`` on ``addr:port`` from a daemon thread; returns ``(server, thread)``.

    ``port=0`` picks a free port (``server.server_port``). Stop with ``server.shutdown()``.
    """
    m = _require()
    from prometheus_client import start_http_server

    try:
        return start_http_server(port, addr=addr, registry=m.registry)
    except OSError as exc:
        raise ConfigError(f"cannot serve metrics on {addr}:{port}: {exc.strerror or exc}") from exc


def push_to_gateway(
    url: str, job: str, timeout_s: float = 10.0, grouping_key: dict[str, str] | None = None
) -> bool:
    """Push the registry to a Pushgateway; True on success. Failures are logged, never raised.

    Pushes with the same ``job`` and ``grouping_key`` replace each other: concurrent pushers
    (several workers) should each pass their own key, e.g. ``{"instance": hostname}``.
    """
    m = _metrics()
    if m is None:
        logger.debug("metrics disabled: nothing pushed to %s", endpoint_label(url))
        return False
    from prometheus_client import push_to_gateway as push

    try:
        push(url, job=job, registry=m.registry, timeout=timeout_s, grouping_key=grouping_key)
    except Exception as exc:  # the run's result matters more than its metrics
        logger.warning(
            "could not push metrics to %s: %s: %s",
            endpoint_label(url),
            type(exc).__name__,
            _scrub(str(exc), url),
        )
        return False
    return True


def _scrub(text: str, url: str) -> str:
    """``text`` without the credentials or query string of ``url``."""
    secret_parts = re.findall(r"//([^/@]+)@|\?(.*)$", url)
    for userinfo, query in secret_parts:
        for secret in (userinfo, query):
            if secret:
                text = text.replace(secret, "***")
    return text


def run_metrics_command(
    port: int, addr: str = "127.0.0.1", *, stop: threading.Event | None = None
) -> int:
    """``narrate metrics``: serve ``/metrics`` until Ctrl-C (or ``stop`` is set); exit code."""
    server, thread = start_metrics_server(port, addr)
    host = f"[{addr}]" if ":" in addr else addr
    print(f"serving narrate metrics on http://{host}:{server.server_port}/metrics", flush=True)
    stop = stop or threading.Event()
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        print("narrate: metrics server stopped", file=sys.stderr)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    return 0
