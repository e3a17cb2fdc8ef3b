"""The token budget of a batch, against the loopback LLM server: requests counted per image.

Each image carries its own word, which OCR reads and the prompt quotes, so the requests the
server received can be attributed; the budget is 1 token, so one answer uses it up.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from narrate.config.settings import load_settings
from narrate.pipeline.batch import BatchRun, WorkItem, process_item
from narrate.pipeline.budget import BUDGET_REASON, TokenBudget, tokens_line
from narrate.pipeline.sequence import plain_steps
from tests.support.fake_llm import FakeLLMServer
from tests.support.word_images import (
    read_csv,
    requests_for,
    text_image,
)

WORDS = ("ALPHA", "BRAVO", "CHARLIE", "DELTA")


def test_budget_counts_and_pickles_without_its_lock() -> None:
    import pickle

    budget = TokenBudget(100)
    budget.charge(60)
    budget.check()
    budget.charge(40)
    assert budget.reached and budget.summary() == "100 of 100 tokens"
    with pytest.raises(Exception, match="token budget reached \\(100 of 100 tokens\\)"):
        budget.check()
    copy = pickle.loads(pickle.dumps(budget))
    assert (copy.limit, copy.used, copy.reached) == (100, 100, True)
    assert not TokenBudget(None).reached
    with pytest.raises(ValueError, match="at least 1 token"):
        TokenBudget(0)
    assert tokens_line({"tokens": 7, "token_budget": None}) == "LLM tokens: 7 (no budget)"


def test_budget_used_up_during_ocr_stops_the_llm_call(
    tmp_path: Path, counted_llm: FakeLLMServer
) -> None:
    """The check right before the LLM call: another item used the budget up meanwhile."""
    settings = load_settings()
    image = text_image(tmp_path / "in" / "golf.png", "GOLF")
    budget = TokenBudget(10)
    steps = plain_steps()

    def ocr_while_another_item_finishes(*args: Any, **kwargs: Any) -> Any:
        budget.charge(10)
        return steps.ocr(*args, **kwargs)

    outcome = process_item(
        WorkItem(0, image, str(image), "golf", "key-golf"),
        out_dir=tmp_path / "out", lang="en", settings=settings, budget=budget,
        steps=dataclasses.replace(steps, ocr=ocr_while_another_item_finishes),
    )  # fmt: skip
    assert (outcome.status, outcome.reason) == ("skipped", BUDGET_REASON)
    assert counted_llm.requests == []
    assert not (tmp_path / "out" / "golf.wav").exists()


def _latest_artifact_description(key: str) -> str:
    from prefect.artifacts import Artifact

    artifact = Artifact.get(key)  # the latest one with this key
    assert artifact is not None, f"no artifact {key}"
    return str(artifact.description)


@pytest.mark.slow
def test_budget_stops_the_flow_and_later_runs_pick_up_the_rest(
    prefect_harness: None,
    tmp_path: Path,
    counted_llm: FakeLLMServer,
) -> None:
    from flows.batch import batch_describe

    folder = tmp_path / "in"
    for word in WORDS:
        text_image(folder / f"{word.lower()}.png", word)
    out = tmp_path / "out"

    # run 1: the flow parameter; one answer uses the budget up, three images wait
    first = batch_describe(str(folder), out_dir=out, concurrency=1, token_budget=1)
    assert (first["ok"], first["skipped"], first["failed"]) == (1, 3, 0)
    assert first["skipped_budget"] == 3 and first["token_budget"] == 1
    assert len(counted_llm.requests) == 1 and len(requests_for(counted_llm, "ALPHA")) == 1
    assert first["tokens"] == fake_llm_total_tokens(out, "alpha") > 1
    rows = {Path(r["item"]).stem: r for r in read_csv(out / "summary.csv")}
    assert [rows[w.lower()]["reason"] for w in WORDS[1:]] == [BUDGET_REASON] * 3
    assert {rows[w.lower()]["status"] for w in WORDS[1:]} == {"skipped"}
    assert not (out / "bravo.json").exists()
    report = json.loads((out / "summary.json").read_text())
    assert (report["token_budget"], report["skipped_budget"]) == (1, 3)
    artifact = _latest_artifact_description("batch-summary")
    assert f"LLM tokens: {first['tokens']} of 1 tokens" in artifact
    assert "3 image(s) left for a later run (token budget reached)" in artifact

    # run 2: NARRATE_LLM_TOKEN_BUDGET, through the CLI's direct engine: one more image
    env = {**os.environ, "NARRATE_LLM_TOKEN_BUDGET": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "narrate.cli.main", "batch", str(folder), "--out", str(out),
         "--engine", "direct", "--concurrency", "1"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "1 described, 3 skipped" in run.stdout
    assert "of 1 (budget reached: 2 image(s) left for a later run)" in run.stdout
    assert len(counted_llm.requests) == 2 and len(requests_for(counted_llm, "BRAVO")) == 1

    # run 3: no budget; only the two images never described are sent
    third = batch_describe(str(folder), out_dir=out, concurrency=2)
    assert (third["ok"], third["skipped"], third["skipped_budget"]) == (2, 2, 0)
    assert third["token_budget"] is None
    assert [len(requests_for(counted_llm, w)) for w in WORDS] == [1, 1, 1, 1]
    for word in WORDS:
        assert word in json.loads((out / f"{word.lower()}.json").read_text())["ocr_text"]
    lines = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert sorted(Path(line["item"]).stem for line in lines) == sorted(w.lower() for w in WORDS)


def fake_llm_total_tokens(out: Path, name: str) -> int:
    """The total tokens the server reported for one image (from its result file)."""
    return int(json.loads((out / f"{name}.json").read_text())["usage"]["total_tokens"])


def test_batch_run_takes_the_budget_from_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NARRATE_LLM_TOKEN_BUDGET", "5000")
    settings = load_settings()
    assert BatchRun([], tmp_path, settings=settings).budget.limit == 5000
    assert BatchRun([], tmp_path, settings=settings, token_budget=7).budget.limit == 7


def test_a_server_without_usage_still_uses_up_the_budget(
    tmp_path: Path, counted_llm: FakeLLMServer
) -> None:
    """llama.cpp-style servers send no token counts: the budget charges an estimate."""
    from narrate.pipeline.batch import run_direct
    from narrate.pipeline.budget import estimate_tokens

    counted_llm.send_usage = False
    folder = tmp_path / "in"
    for word in WORDS[:2]:
        text_image(folder / f"{word.lower()}.png", word)
    summary = run_direct(
        folder, tmp_path / "out", settings=load_settings(), concurrency=1, token_budget=50
    )
    assert len(counted_llm.requests) == 1  # the first answer's estimate used the budget up
    rows = {Path(r["item"]).stem: r for r in read_csv(tmp_path / "out" / "summary.csv")}
    assert rows["alpha"]["status"] == "ok" and rows["alpha"]["tokens"] == ""  # unknown
    assert rows["bravo"]["reason"] == BUDGET_REASON
    assert summary.skipped_budget == 1
    assert estimate_tokens("ALPHA", "An image.") > 300  # the prompt's fixed part at least
