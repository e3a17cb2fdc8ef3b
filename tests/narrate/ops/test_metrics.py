"""narrate.ops.metrics: recorded values as Prometheus scrapes them over real loopback HTTP."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.errors import ConfigError
from narrate.ops import metrics
from tests.conftest import REPO_ROOT
from tests.support.metric_families import FAMILIES
from tests.support.prometheus_servers import PUSHGATEWAY, Pushgateway, binary

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> tuple[str, Samples]:
    """GET the endpoint; return its text and every sample keyed by (name, labels)."""
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return response.text, samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """One sample's value, None when the series is absent."""
    return samples.get((name, frozenset(labels.items())))


def unique(prefix: str) -> str:
    """A label value no other test uses, so counts are exact in a shared registry."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_llm_requests_and_tokens_are_counted_exactly(metrics_url: str) -> None:
    model = unique("qwen3")
    endpoint = "https://llm.example/v1"
    for seconds in (0.2, 0.4, 1.5):
        metrics.record_llm_request(endpoint, model, "2xx", seconds)
    metrics.record_llm_request(endpoint, model, metrics.status_class(503, None), 0.05)
    metrics.record_tokens(model, prompt=100, completion=20)
    metrics.record_tokens(model, prompt=20, completion=10)
    metrics.record_truncation(model)
    metrics.record_ttft(model, 0.3)

    _, s = scrape(metrics_url)
    req = "narrate_llm_requests_total"
    assert value(s, req, status_class="2xx", endpoint=endpoint, model=model) == 3
    assert value(s, req, status_class="5xx", endpoint=endpoint, model=model) == 1
    assert value(s, req, status_class="4xx", endpoint=endpoint, model=model) is None
    dur = "narrate_llm_request_duration_seconds"
    assert value(s, f"{dur}_count", endpoint=endpoint, model=model) == 4
    assert value(s, f"{dur}_sum", endpoint=endpoint, model=model) == pytest.approx(2.15)
    assert value(s, f"{dur}_bucket", endpoint=endpoint, model=model, le="0.05") == 1
    assert value(s, f"{dur}_bucket", endpoint=endpoint, model=model, le="0.9") == 3
    assert value(s, f"{dur}_bucket", endpoint=endpoint, model=model, le="+Inf") == 4
    tokens = "narrate_llm_tokens_total"
    assert value(s, tokens, kind="prompt", model=model) == 120
    assert value(s, tokens, kind="completion", model=model) == 30
    assert value(s, "narrate_llm_truncations_total", model=model) == 1
    ttft = "narrate_llm_time_to_first_token_seconds"
    assert value(s, f"{ttft}_bucket", model=model, le="0.2") == 0
    assert value(s, f"{ttft}_bucket", model=model, le="0.3") == 1


def test_stage_histogram_buckets(metrics_url: str) -> None:
    stage = unique("ocr")
    for seconds in (0.2, 0.4, 1.5):
        metrics.observe_stage(stage, seconds)

    _, s = scrape(metrics_url)
    name = "narrate_stage_duration_seconds"
    expected = {"0.1": 0, "0.15": 0, "0.2": 1, "0.3": 1, "0.4": 2, "1.25": 2, "1.5": 3, "2.0": 3}
    for le, count in expected.items():
        assert value(s, f"{name}_bucket", stage=stage, le=le) == count, le
    assert value(s, f"{name}_bucket", stage=stage, le="+Inf") == 3
    assert value(s, f"{name}_count", stage=stage) == 3
    assert value(s, f"{name}_sum", stage=stage) == pytest.approx(2.1)
    buckets = {float(dict(labels)["le"]) for (n, labels) in s if n == f"{name}_bucket"}
    assert buckets == {*metrics.BUCKETS, float("inf")}


def test_time_stage_records_even_when_the_block_raises(metrics_url: str) -> None:
    stage = unique("tts")
    with metrics.time_stage(stage):
        pass
    with pytest.raises(ValueError), metrics.time_stage(stage):
        raise ValueError("boom")

    _, s = scrape(metrics_url)
    assert value(s, "narrate_stage_duration_seconds_count", stage=stage) == 2


def test_counters_for_retries_failovers_fallbacks_cache_and_items(metrics_url: str) -> None:
    reason, flow = unique("429"), unique("batch")
    to_model = unique("qwen3-vl-flash")
    _, before = scrape(metrics_url)
    hits = value(before, "narrate_cache_requests_total", result="hit") or 0
    misses = value(before, "narrate_cache_requests_total", result="miss") or 0

    metrics.record_retry(reason)
    metrics.record_retry(reason)
    metrics.record_failover("https://a.example/v1", "https://b.example/v1/")
    metrics.record_fallback("qwen3-vl-plus", to_model)
    for hit in (True, True, False):
        metrics.record_cache(hit)
    for ok in (True, True, True, False):
        metrics.record_item(flow, ok)

    _, s = scrape(metrics_url)
    assert value(s, "narrate_llm_retries_total", reason=reason) == 2
    failover = value(
        s,
        "narrate_llm_failovers_total",
        from_endpoint="https://a.example/v1",
        to_endpoint="https://b.example/v1",
    )
    assert failover is not None and failover >= 1
    assert (
        value(s, "narrate_llm_fallbacks_total", from_model="qwen3-vl-plus", to_model=to_model) == 1
    )
    assert value(s, "narrate_cache_requests_total", result="hit") == hits + 2
    assert value(s, "narrate_cache_requests_total", result="miss") == misses + 1
    assert value(s, "narrate_items_total", flow=flow, status="ok") == 3
    assert value(s, "narrate_items_total", flow=flow, status="failed") == 1


def test_in_flight_gauge_goes_up_and_back_down() -> None:
    registry = metrics.REGISTRY
    gauge = "narrate_llm_in_flight_requests"
    start = registry.get_sample_value(gauge)
    with metrics.llm_in_flight():
        with metrics.llm_in_flight():
            assert registry.get_sample_value(gauge) == start + 2
        assert registry.get_sample_value(gauge) == start + 1
    with pytest.raises(RuntimeError), metrics.llm_in_flight():
        raise RuntimeError("request failed")
    assert registry.get_sample_value(gauge) == start


def test_credentials_and_query_never_reach_a_label(metrics_url: str) -> None:
    model = unique("secret-test")
    url = "https://alice:hunter2@llm.example:8443/compatible-mode/v1/?key=sk-abc123&x=1#frag"
    metrics.record_llm_request(url, model, "2xx", 0.1)
    metrics.record_failover(url, "https://token@other.example/v1?api_key=sk-zzz")

    text, s = scrape(metrics_url)
    clean = "https://llm.example:8443/compatible-mode/v1"
    assert value(s, "narrate_llm_requests_total", status_class="2xx", endpoint=clean, model=model)
    assert 'to_endpoint="https://other.example/v1"' in text
    for secret in ("alice", "hunter2", "sk-abc123", "sk-zzz", "token@", "key=", "frag"):
        assert secret not in text


@pytest.mark.parametrize(
    ("url", "label"),
    [
        ("https://dashscope.aliyuncs.com/compatible-mode/v1", "https://dashscope.aliyuncs.com/compatible-mode/v1"),
        ("https://u:p@h.example/v1/", "https://h.example/v1"),
        ("http://127.0.0.1:8000/v1?key=abc", "http://127.0.0.1:8000/v1"),
        ("user:pass@host:8080/v1#x", "host:8080/v1"),
        ("https://h.example/v1/chat/completions?a=b@c", "https://h.example/v1/chat/completions"),
        ("", "unknown"),
    ],
)  # fmt: skip
def test_endpoint_label(url: str, label: str) -> None:
    assert metrics.endpoint_label(url) == label


@pytest.mark.parametrize(
    ("code", "kind", "expected"),
    [
        (200, None, "2xx"),
        (204, None, "2xx"),
        (404, None, "4xx"),
        (429, "rate_limited", "4xx"),
        (503, None, "5xx"),
        (None, "timeout", "timeout"),
        (None, "ReadTimeout", "timeout"),
        (None, "ConnectError", "connection"),
        (None, None, "connection"),
        (999, None, "other"),
    ],
)
def test_status_class(code: int | None, kind: str | None, expected: str) -> None:
    assert metrics.status_class(code, kind) == expected


def test_metric_names_lists_every_series() -> None:
    names = metrics.metric_names()
    expected = FAMILIES | {
        "narrate_stage_duration_seconds_sum",
        "narrate_stage_duration_seconds_count",
        "process_cpu_seconds_total",
    }
    assert expected <= names
    assert "narrate_llm_requests" not in names  # a counter family is not a series


def test_the_registry_is_narrates_own() -> None:
    from prometheus_client import REGISTRY as DEFAULT

    assert metrics.REGISTRY is not DEFAULT
    assert DEFAULT.get_sample_value("narrate_llm_in_flight_requests") is None


@pytest.fixture(scope="module")
def pushgateway() -> Iterator[Pushgateway]:
    """Debian's prometheus-pushgateway on a free loopback port, for this module."""
    if binary(PUSHGATEWAY) is None:
        pytest.skip("prometheus-pushgateway not installed (scripts/install_system.sh)")
    with Pushgateway() as gateway:
        yield gateway


@pytest.mark.integration
def test_push_to_gateway_sends_the_registry(pushgateway: Pushgateway) -> None:
    flow = unique("push-flow")
    metrics.record_item(flow, ok=True)
    metrics.record_item(flow, ok=True)
    ok = metrics.push_to_gateway(
        pushgateway.url, job="narrate-cli", grouping_key={"instance": "worker-1"}
    )
    assert ok is True
    (series,) = [
        s for s in pushgateway.series("narrate_items_total") if s["labels"]["flow"] == flow
    ]
    assert series["value"] == 2.0
    assert series["labels"] == {
        "flow": flow, "status": "ok", "job": "narrate-cli", "instance": "worker-1"
    }  # fmt: skip
    # the gateway also serves what it holds for Prometheus, in the exposition format
    scraped = httpx.get(f"{pushgateway.url}/metrics", timeout=10).text
    assert f'narrate_items_total{{flow="{flow}",instance="worker-1",job="narrate-cli",' in scraped


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_push_failure_is_a_warning_without_credentials(caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://bob:s3cret@127.0.0.1:{_closed_port()}/?token=t0k"
    with caplog.at_level(logging.WARNING, logger="narrate.ops.metrics"):
        assert metrics.push_to_gateway(url, job="narrate-cli", timeout_s=2) is False
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert "could not push metrics to http://127.0.0.1:" in message
    assert "s3cret" not in message and "t0k" not in message


def test_port_in_use_is_a_config_error_naming_it() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(ConfigError, match=f"127.0.0.1:{port}"):
            metrics.start_metrics_server(port, "127.0.0.1")


def test_run_metrics_command_serves_until_stopped(capsys: pytest.CaptureFixture[str]) -> None:
    port = _closed_port()
    stop = threading.Event()
    result: list[int] = []
    thread = threading.Thread(
        target=lambda: result.append(metrics.run_metrics_command(port, "127.0.0.1", stop=stop))
    )
    thread.start()
    try:
        body = ""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not body:
            try:
                body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except httpx.TransportError:
                time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert "narrate_llm_in_flight_requests " in body
    assert result == [0]
    assert f"http://127.0.0.1:{port}/metrics" in capsys.readouterr().out
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)


def test_without_prometheus_client_everything_is_a_no_op() -> None:
    script = textwrap.dedent(
        """
        import sys
        sys.modules["prometheus_client"] = None  # makes the import fail
        from narrate.ops import metrics
        from adapters.errors import ConfigError
        metrics.observe_stage("ocr", 0.2)
        with metrics.time_stage("tts"), metrics.llm_in_flight():
            pass
        metrics.record_llm_request("https://k@h/v1", "m", "2xx", 0.1)
        metrics.record_ttft("m", 0.1)
        metrics.record_tokens("m", 1, 2)
        metrics.record_retry("429")
        metrics.record_failover("a", "b")
        metrics.record_fallback("a", "b")
        metrics.record_truncation("m")
        metrics.record_cache(True)
        metrics.record_item("f", False)
        assert metrics.REGISTRY is None and not metrics.enabled()
        assert metrics.metric_names() == set() and metrics.exposition() == b""
        assert metrics.push_to_gateway("http://127.0.0.1:9", "j") is False
        try:
            metrics.start_metrics_server(0)
        except ConfigError as exc:
            print("refused:", exc)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "refused: metrics need prometheus_client: pip install 'narrate[metrics]'" in done.stdout


def test_unrecorded_imports_nothing_and_records_nothing_then_metrics_build_as_usual() -> None:
    script = textwrap.dedent(
        """
        import sys
        from narrate.ops import metrics
        with metrics.unrecorded():
            metrics.observe_stage("ocr", 0.2)
            with metrics.time_stage("tts"):
                pass
            assert not metrics.enabled() and "prometheus_client" not in sys.modules
        assert metrics.enabled() and "prometheus_client" in sys.modules
        with metrics.unrecorded():  # built: it keeps recording
            metrics.observe_stage("ocr", 0.2)
        print(metrics.exposition().decode())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert 'narrate_stage_duration_seconds_count{stage="ocr"} 1.0' in done.stdout
    assert 'stage="tts"' not in done.stdout
