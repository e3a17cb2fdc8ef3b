"""Metrics after real pipeline runs with injected faults: the scrape matches what happened."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from assets import SAMPLES_DIR
from narrate.config.settings import load_settings
from narrate.ops.llm import forget_describers
from narrate.pipeline.sequence import describe_one, plain_steps
from tests.narrate.ops.test_metrics import Samples, scrape, value
from tests.support.fake_llm import FakeLLMServer


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    """How much one series grew between two scrapes (absent counts as 0)."""
    return (value(after, name, **labels) or 0.0) - (value(before, name, **labels) or 0.0)


def test_scrape_after_a_failover_and_a_429_matches_what_happened(
    metrics_url: str,
    fake_llm_factory: Callable[..., FakeLLMServer],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    primary = fake_llm_factory(script=["503"])
    backup = fake_llm_factory(script=["429-ms:50", "ok"])
    monkeypatch.setenv("NARRATE_LLM_BACKEND", "openai")
    monkeypatch.setenv("NARRATE_LLM_BASE_URL", primary.base_url)
    monkeypatch.setenv("NARRATE_LLM_BACKUP_BASE_URLS", backup.base_url)
    monkeypatch.setenv("NARRATE_LLM_RETRY_BASE", "0.05")
    monkeypatch.setenv("NARRATE_CACHE_BACKEND", "sqlite")
    monkeypatch.setenv("NARRATE_CACHE_PATH", str(tmp_path / "cache.sqlite3"))
    forget_describers()
    model = "qwen3-max"

    _, before = scrape(metrics_url)
    first = describe_one(
        SAMPLES_DIR / "receipt_en.png", out_dir=tmp_path, lang="en",
        settings=load_settings(), steps=plain_steps(),
    )  # fmt: skip
    second = describe_one(
        SAMPLES_DIR / "receipt_en.png", out_dir=tmp_path, lang="en",
        settings=load_settings(), steps=plain_steps(),
    )  # fmt: skip
    text, after = scrape(metrics_url)
    forget_describers()

    requests = "narrate_llm_requests_total"
    assert value(after, requests, status_class="5xx", endpoint=primary.base_url, model=model) == 1
    assert value(after, requests, status_class="4xx", endpoint=backup.base_url, model=model) == 1
    assert value(after, requests, status_class="2xx", endpoint=backup.base_url, model=model) == 1
    assert (
        value(after, requests, status_class="2xx", endpoint=primary.base_url, model=model) is None
    )
    duration_count = "narrate_llm_request_duration_seconds_count"
    assert value(after, duration_count, endpoint=backup.base_url, model=model) == 2
    assert (
        value(
            after,
            "narrate_llm_failovers_total",
            from_endpoint=primary.base_url,
            to_endpoint=backup.base_url,
        )
        == 1
    )
    assert delta(before, after, "narrate_llm_retries_total", reason="4xx") == 1
    assert (
        delta(before, after, "narrate_llm_tokens_total", kind="prompt", model=model)
        == (first.usage["prompt_tokens"])
    )
    assert (
        delta(before, after, "narrate_llm_tokens_total", kind="completion", model=model)
        == (first.usage["completion_tokens"])
    )
    assert second.cached
    assert delta(before, after, "narrate_cache_requests_total", result="miss") == 1
    assert delta(before, after, "narrate_cache_requests_total", result="hit") == 1
    for stage in ("ocr", "features", "llm", "tts"):
        assert delta(before, after, "narrate_stage_duration_seconds_count", stage=stage) == 2
    ocr_seconds = delta(before, after, "narrate_stage_duration_seconds_sum", stage="ocr")
    assert 0 < ocr_seconds <= first.timings["ocr_s"] + second.timings["ocr_s"]
    assert value(after, "narrate_llm_in_flight_requests") == 0
    assert "sk-" not in text
