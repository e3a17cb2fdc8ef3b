"""monitoring/: alert rules under promtool, the sample config, the Grafana dashboard.

The rule and config checks run the real ``promtool``; the end-to-end test starts a real
Prometheus on loopback that scrapes narrate's metrics endpoint with the rules loaded.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from narrate.ops import metrics
from tests.conftest import REPO_ROOT

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
    families = {
        "narrate_llm_request_duration_seconds_bucket",
        "narrate_llm_requests_total",
        "narrate_llm_tokens_total",
        "narrate_llm_in_flight_requests",
        "narrate_llm_retries_total",
        "narrate_llm_failovers_total",
        "narrate_llm_fallbacks_total",
        "narrate_llm_truncations_total",
        "narrate_llm_time_to_first_token_seconds_bucket",
        "narrate_cache_requests_total",
        "narrate_stage_duration_seconds_bucket",
        "narrate_items_total",
    }
    assert families <= used, families - used


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


# --- end to end: a real Prometheus scrapes narrate ----------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A Prometheus on loopback scraping a narrate metrics server every second.

    Yields ``(prometheus base URL, narrate metrics port)``.
    """
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus not installed (apt-get install prometheus)")
    server, thread = metrics.start_metrics_server(0, "127.0.0.1")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [
            {
                "job_name": "narrate",
                "static_configs": [{"targets": [f"127.0.0.1:{server.server_port}"]}],
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = _free_port()
    log = (tmp_path / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(
            lambda: process.poll() is None and httpx.get(f"{base}/-/ready", timeout=5).is_success,
            f"Prometheus to start (log: {tmp_path / 'prometheus.log'})",
        )
        yield base, server.server_port
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _wait_for(check: Any, what: str, timeout: float = 60) -> Any:
    """Poll ``check()`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # a poll with a generous deadline, not a timing check
        try:
            if result := check():
                return result
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def _query(base: str, expr: str) -> dict[str, Any]:
    response = httpx.get(f"{base}/api/v1/query", params={"query": expr}, timeout=10)
    assert response.headers["content-type"].startswith("application/json"), response.text
    return response.json()


@pytest.mark.slow
@pytest.mark.integration
def test_prometheus_scrapes_narrate_and_runs_rules_and_dashboard(
    prometheus: tuple[str, int],
) -> None:
    base, _ = prometheus
    model = f"e2e-{uuid.uuid4().hex[:8]}"
    for code in (200, 200, 200, 502):
        endpoint = "https://u:p@llm.example/v1"
        metrics.record_llm_request(endpoint, model, metrics.status_class(code), 0.4)
    metrics.record_tokens(model, 50, 10)

    def scraped() -> list[dict[str, Any]]:
        data = _query(base, f'narrate_llm_requests_total{{model="{model}"}}')["data"]["result"]
        return data if len(data) == 2 else []

    series = _wait_for(scraped, "Prometheus to scrape narrate")
    counts = {s["metric"]["status_class"]: float(s["value"][1]) for s in series}
    assert counts == {"2xx": 3.0, "5xx": 1.0}
    assert {s["metric"]["endpoint"] for s in series} == {"https://llm.example/v1"}
    assert {s["metric"]["job"] for s in series} == {"narrate"}

    def rules_evaluated() -> list[dict[str, Any]]:
        groups = httpx.get(f"{base}/api/v1/rules", timeout=10).json()["data"]["groups"]
        loaded = [rule for group in groups for rule in group["rules"]]
        return loaded if loaded and all(r["health"] != "unknown" for r in loaded) else []

    loaded = _wait_for(rules_evaluated, "Prometheus to evaluate the rules")
    assert {rule["name"] for rule in loaded} == alert_names() | recorded_names()
    assert [rule["name"] for rule in loaded if rule["health"] != "ok"] == []

    for expr in dashboard_exprs():
        answer = _query(base, as_plain_promql(expr))
        assert answer["status"] == "success", (expr, answer)
