"""monitoring/: alert rules under promtool, the sample config, the Grafana dashboard.

The rule and config checks run the real ``promtool``; the end-to-end tests start Debian's
``prometheus`` (the shipped prometheus.yml pointed at the test's ports, alerts.yml loaded) and
``prometheus-pushgateway`` on loopback, run narrate against the fault-injecting LLM server and
ask Prometheus's HTTP API what it saw.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from assets import SAMPLES_DIR
from narrate.config.settings import load_settings
from narrate.ops import metrics
from tests.conftest import REPO_ROOT
from tests.support.fake_llm import FakeLLMServer
from tests.support.metric_families import FAMILIES
from tests.support.prometheus_servers import (
    PROMETHEUS,
    PUSHGATEWAY,
    Prometheus,
    Pushgateway,
    binary,
)

MONITORING = REPO_ROOT / "monitoring"
ALERTS = MONITORING / "alerts.yml"
ALERTS_TEST = MONITORING / "alerts_test.yml"
PROMETHEUS_YML = MONITORING / "prometheus.yml"
DASHBOARD = MONITORING / "grafana-dashboard.json"

METRIC = re.compile(r"\bnarrate_[a-z_]+")
RECORDED = re.compile(r"\bnarrate:[a-z0-9_:]+")

needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool not installed (apt-get install prometheus)"
)


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run promtool in monitoring/ and return the finished process."""
    return subprocess.run(
        ["promtool", *map(str, args)],
        cwd=MONITORING,
        capture_output=True,
        text=True,
        timeout=120,
    )


def rules() -> list[dict[str, Any]]:
    """Every rule (recording and alerting) in alerts.yml."""
    doc = yaml.safe_load(ALERTS.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def alert_names() -> set[str]:
    return {rule["alert"] for rule in rules() if "alert" in rule}


def recorded_names() -> set[str]:
    return {rule["record"] for rule in rules() if "record" in rule}


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def dashboard_exprs() -> list[str]:
    """Every PromQL expression in the dashboard: panel targets and variable queries."""
    exprs = []
    for panel in dashboard()["panels"]:
        for inner in [panel, *panel.get("panels", [])]:
            exprs += [target["expr"] for target in inner.get("targets", [])]
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            exprs.append(variable["definition"])
    return exprs


def as_plain_promql(expr: str) -> str:
    """A dashboard expression with Grafana's variables replaced by concrete values."""
    expr = expr.replace("$__rate_interval", "5m").replace("$model", ".*")
    return re.sub(r"label_values\((\w+), \w+\)", r"\1", expr)


# --- rules -------------------------------------------------------------------------------------


@needs_promtool
def test_promtool_check_rules() -> None:
    done = promtool("check", "rules", ALERTS)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules())} rules found" in done.stdout


@pytest.mark.slow
@needs_promtool
def test_promtool_unit_tests_pass() -> None:
    done = promtool("test", "rules", ALERTS_TEST)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_has_a_firing_and_a_quiet_test_case() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in yaml.safe_load(ALERTS_TEST.read_text())["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert len(alert_names()) >= 8
    assert firing == alert_names()
    assert quiet == alert_names()


def test_alerts_have_severity_and_templated_annotations() -> None:
    for rule in rules():
        if "alert" not in rule:
            continue
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]
        assert "{{" in rule["annotations"]["summary"] + rule["annotations"]["description"]


def test_required_alert_thresholds() -> None:
    by_name = {rule["alert"]: rule for rule in rules() if "alert" in rule}
    recorded = {rule["record"]: rule["expr"] for rule in rules() if "record" in rule}
    errors = by_name["NarrateLLMErrorRateHigh"]
    assert errors["for"] == "5m" and errors["expr"].endswith("> 0.02")
    assert 'status_class!="2xx"' in recorded["narrate:llm_error_ratio:rate5m"]
    latency = by_name["NarrateLLMLatencyP99High"]
    assert latency["for"] == "5m" and latency["expr"].endswith("> 1")
    p99 = recorded["narrate:llm_request_duration_seconds:p99_5m"]
    assert "histogram_quantile(0.99" in p99
    assert "rate(narrate_llm_request_duration_seconds_bucket[5m])" in p99


def test_rule_exprs_use_only_exposed_metrics() -> None:
    exposed = metrics.metric_names()
    recorded = recorded_names()
    for rule in rules():
        name = rule.get("alert") or rule["record"]
        assert set(METRIC.findall(rule["expr"])) <= exposed, name
        assert set(RECORDED.findall(rule["expr"])) <= recorded, name


# --- Prometheus configuration -----------------------------------------------------------------


@needs_promtool
def test_promtool_check_config() -> None:
    done = promtool("check", "config", PROMETHEUS_YML)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "is valid prometheus config file syntax" in done.stdout
    config = yaml.safe_load(PROMETHEUS_YML.read_text())
    assert config["rule_files"] == ["alerts.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["narrate"]["static_configs"][0]["targets"] == [f"127.0.0.1:{metrics.DEFAULT_PORT}"]
    assert jobs["pushgateway"]["honor_labels"] is True


# --- Grafana dashboard ------------------------------------------------------------------------


def test_dashboard_is_importable_with_a_datasource_variable() -> None:
    board = dashboard()
    assert board["schemaVersion"] >= 36
    assert board["uid"] and board["title"]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}"


def test_dashboard_exprs_use_only_exposed_metrics() -> None:
    exposed = metrics.metric_names()
    recorded = recorded_names()
    used: set[str] = set()
    for expr in dashboard_exprs():
        names = set(METRIC.findall(expr))
        assert names <= exposed, expr
        assert set(RECORDED.findall(expr)) <= recorded, expr
        used |= names
    assert used >= FAMILIES, FAMILIES - used


def test_dashboard_has_the_panels_asked_for() -> None:
    by_title = {panel["title"]: panel for panel in dashboard()["panels"]}
    latency = by_title["LLM request latency P50 / P90 / P99"]
    assert [t["legendFormat"] for t in latency["targets"]] == ["P50", "P90", "P99"]
    stages = by_title["Stage latency P90 / P99"]
    assert [t["legendFormat"] for t in stages["targets"]] == ["{{stage}} P90", "{{stage}} P99"]
    assert "by (status_class)" in by_title["LLM error rate by status class"]["targets"][0]["expr"]
    rps = by_title["LLM requests/s by endpoint and model"]["targets"][0]["expr"]
    assert "by (endpoint, model)" in rps
    assert "by (kind)" in by_title["LLM tokens/min by kind"]["targets"][0]["expr"]
    assert 'result="hit"' in by_title["Cache hit ratio"]["targets"][0]["expr"]
    items = by_title["Batch items ok / failed (per min)"]["targets"][0]["expr"]
    assert "by (flow, status)" in items


@needs_promtool
def test_dashboard_exprs_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses each dashboard query, written as a recording rule."""
    group = {
        "name": "dashboard",
        "rules": [
            {"record": f"dashboard:query_{i}", "expr": as_plain_promql(expr)}
            for i, expr in enumerate(dashboard_exprs())
        ],
    }
    rule_file = tmp_path / "dashboard_rules.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [group]}))
    done = promtool("check", "rules", rule_file)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(group['rules'])} rules found" in done.stdout


# --- end to end: Debian's prometheus and prometheus-pushgateway on loopback --------------------

SHORT_FOR_GROUP = "narrate-test-short-for"


def short_for_rules(path: Path, alert: str = "NarrateLLMErrorRateHigh") -> Path:
    """A test copy of one alert of alerts.yml with ``for: 2s``, in a group of its own.

    The copy reads the recording rules of the shipped file, which Prometheus loads too.
    """
    (rule,) = [r for r in rules() if r.get("alert") == alert]
    path.write_text(
        yaml.safe_dump({"groups": [{"name": SHORT_FOR_GROUP, "rules": [{**rule, "for": "2s"}]}]})
    )
    return path


def shipped_config(narrate_port: int, gateway_port: int, rule_files: list[Path]) -> dict[str, Any]:
    """monitoring/prometheus.yml pointed at the test's ports, scraping every second.

    Only the targets, the intervals and the rule files' paths change: the jobs, their
    labels and honor_labels are the shipped ones.
    """
    config = yaml.safe_load(PROMETHEUS_YML.read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(p) for p in rule_files]
    ports = {"narrate": narrate_port, "pushgateway": gateway_port}
    config["scrape_configs"] = [job for job in config["scrape_configs"] if job["job_name"] in ports]
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [f"127.0.0.1:{ports[job['job_name']]}"]}]
    return config


@dataclass
class Stack:
    """A Prometheus scraping narrate's metrics endpoint (this process) and a Pushgateway."""

    prometheus: Prometheus
    gateway: Pushgateway
    narrate_port: int


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Debian's prometheus with the shipped config and rules (plus the short-for copy)."""
    for name in (PROMETHEUS, PUSHGATEWAY):
        if binary(name) is None:
            pytest.skip(f"{name} not installed (scripts/install_system.sh)")
    server, thread = metrics.start_metrics_server(0, "127.0.0.1")
    copy = short_for_rules(tmp_path_factory.mktemp("rules") / "alerts_short_for.yml")
    try:
        with Pushgateway() as gateway:
            config = shipped_config(server.server_port, gateway.port, [ALERTS, copy])
            with Prometheus(config) as prometheus:
                yield Stack(prometheus, gateway, server.server_port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _wait_for(check: Any, what: str, timeout: float = 60) -> Any:
    """Poll ``check()`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:  # a poll with a generous deadline, not a timing check
        try:
            if result := check():
                return result
            last = result
        except httpx.TransportError as exc:
            last = exc
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what} (last: {last!r})")


def _numbers(result: list[dict[str, Any]]) -> list[float]:
    """The finite sample values of an instant-query result."""
    values = [float(sample["value"][1]) for sample in result]
    return [v for v in values if math.isfinite(v)]


@pytest.mark.slow
@pytest.mark.integration
def test_prometheus_scrapes_narrate_and_runs_rules_and_dashboard(stack: Stack) -> None:
    prom = stack.prometheus
    model = f"e2e-{uuid.uuid4().hex[:8]}"
    for code in (200, 200, 200, 502):
        endpoint = "https://u:p@llm.example/v1"
        metrics.record_llm_request(endpoint, model, metrics.status_class(code), 0.4)
    metrics.record_tokens(model, 50, 10)

    def scraped() -> list[dict[str, Any]]:
        data = prom.query(f'narrate_llm_requests_total{{model="{model}"}}')
        return data if len(data) == 2 else []

    series = _wait_for(scraped, "Prometheus to scrape narrate")
    counts = {s["metric"]["status_class"]: float(s["value"][1]) for s in series}
    assert counts == {"2xx": 3.0, "5xx": 1.0}
    assert {s["metric"]["endpoint"] for s in series} == {"https://llm.example/v1"}
    assert {s["metric"]["job"] for s in series} == {"narrate"}

    def rules_evaluated() -> list[dict[str, Any]]:
        loaded = prom.rules()
        return loaded if loaded and all(r["health"] != "unknown" for r in loaded) else []

    loaded = _wait_for(rules_evaluated, "Prometheus to evaluate the rules")
    assert {rule["name"] for rule in loaded} == alert_names() | recorded_names()
    assert [rule["name"] for rule in loaded if rule["health"] != "ok"] == []

    for expr in dashboard_exprs():
        prom.query(as_plain_promql(expr))  # raises on an API error


@pytest.mark.slow
@pytest.mark.integration
def test_error_rate_alert_fires_and_dashboard_percentiles_are_numbers(
    stack: Stack,
    fake_llm_factory: Callable[..., FakeLLMServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """narrate's LLM step against the fault-injecting server, ~20% of requests failing."""
    from narrate.ops.llm import forget_describers
    from narrate.pipeline.steps import run_features, run_llm, run_ocr

    prom = stack.prometheus
    fake = fake_llm_factory(mix={"ok": 0.8, "500": 0.2}, seed=16, latency_s=0.05)
    monkeypatch.setenv("NARRATE_LLM_BACKEND", "openai")
    monkeypatch.setenv("NARRATE_LLM_BASE_URL", fake.base_url)
    monkeypatch.setenv("NARRATE_LLM_STREAM", "true")  # also times the first token
    monkeypatch.setenv("NARRATE_LLM_MAX_RETRIES", "1")
    monkeypatch.setenv("NARRATE_LLM_RETRY_BASE", "0.01")
    monkeypatch.setenv("NARRATE_LLM_RETRY_CAP", "0.02")
    monkeypatch.setenv("NARRATE_LLM_BREAKER_THRESHOLD", "1000")
    monkeypatch.setenv("NARRATE_LLM_QPS", "0")
    forget_describers()
    settings = load_settings()
    image = SAMPLES_DIR / "receipt_en.png"
    ocr = run_ocr(image, "en", settings.ocr)
    features = run_features(image, ocr.boxes)
    stop = threading.Event()
    outcomes: list[str] = []

    def traffic() -> None:  # spread over time, so that rate() sees the counters grow
        i = 0
        while not stop.is_set():
            i += 1
            try:
                run_llm(ocr, features, settings.llm, question=f"question {i}?")
                outcomes.append("ok")
            except Exception as exc:
                outcomes.append(type(exc).__name__)
            stop.wait(0.05)

    worker = threading.Thread(target=traffic, daemon=True)
    worker.start()
    try:
        ups = _wait_for(
            lambda: (
                {t["labels"]["job"]: t["health"] for t in prom.targets()}
                if all(t["health"] == "up" for t in prom.targets())
                else None
            ),
            "both targets up",
        )
        assert ups == {"narrate": "up", "pushgateway": "up"}
        assert _numbers(prom.query('up{job="narrate"}')) == [1.0]

        def alert_states() -> dict[str, str] | None:
            states = {
                r["group"]: r["state"]
                for r in prom.rules()
                if r["name"] == "NarrateLLMErrorRateHigh"
            }
            fired = states.get(SHORT_FOR_GROUP) == "firing"
            return states if fired and states.get("narrate-llm") == "pending" else None

        states = _wait_for(alert_states, "the error-rate alert: pending (5m), firing (2s copy)")
        assert states == {"narrate-llm": "pending", SHORT_FOR_GROUP: "firing"}
        ratio = _numbers(prom.query("narrate:llm_error_ratio:rate5m"))
        assert ratio and ratio[0] > 0.02

        percentiles = [
            e
            for e in dashboard_exprs()
            if "histogram_quantile(0.9," in e or "histogram_quantile(0.99," in e
        ]
        assert len(percentiles) == 5  # LLM P90/P99, TTFT P90, stage P90/P99
        for expr in percentiles:
            answer = _wait_for(
                lambda expr=expr: _numbers(prom.query(as_plain_promql(expr))),
                f"a number for {expr}",
            )
            assert all(0 < v < 30 for v in answer), (expr, answer)
    finally:
        stop.set()
        worker.join(timeout=30)
        forget_describers()
    assert "ok" in outcomes and len(fake.requests) > len(outcomes) / 2
    assert any(r.fault == "500" for r in fake.requests)


@pytest.mark.slow
@pytest.mark.integration
def test_a_second_batch_replaces_the_first_ones_series_on_the_pushgateway(
    stack: Stack, tmp_path: Path
) -> None:
    """Two ``narrate batch`` processes push to the gateway at their end; the second push
    replaces the first one's group, so the counts are the second batch's, one series each."""
    from tests.support.word_images import text_image

    folder = tmp_path / "in"
    text_image(folder / "alpha.png", "ALPHA")
    text_image(folder / "bravo.png", "BRAVO")
    (folder / "broken.png").write_bytes((SAMPLES_DIR / "receipt_en.png").read_bytes()[:2000])
    env = {
        **os.environ,
        "NARRATE_LLM_BACKEND": "offline",
        "NARRATE_METRICS_PUSHGATEWAY": stack.gateway.url,
    }

    def batch() -> dict[str, float]:
        run = subprocess.run(
            [sys.executable, "-m", "narrate.cli.main", "batch", str(folder), "--out",
             str(tmp_path / "out"), "--engine", "direct", "--json"],
            env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert run.returncode == 1, run.stderr  # the broken image fails each time
        series = [
            s for s in stack.gateway.series("narrate_items_total") if s["labels"]["flow"] == "batch"
        ]
        statuses = [s["labels"]["status"] for s in series]
        assert len(statuses) == len(set(statuses)), series  # one series per status
        assert {s["labels"]["job"] for s in series} == {"narrate-batch"}
        return {s["labels"]["status"]: s["value"] for s in series}

    assert batch() == {"ok": 2.0, "failed": 1.0}
    text_image(folder / "charlie.png", "CHARLIE")  # the rerun: one new image, one broken
    assert batch() == {"ok": 1.0, "failed": 1.0}  # replaced: not 3 and 2

    def scraped() -> dict[str, float] | None:
        result = stack.prometheus.query('narrate_items_total{job="narrate-batch",flow="batch"}')
        found = {s["metric"]["status"]: float(s["value"][1]) for s in result}
        return found if found == {"ok": 1.0, "failed": 1.0} else None

    assert _wait_for(scraped, "Prometheus to scrape the gateway") == {"ok": 1.0, "failed": 1.0}
