"""The token budget of a batch, against the loopback LLM server: requests counted per image.

Each image carries its own word, which OCR reads and the prompt quotes, so the requests the
server received can be attributed; the budget is 1 token, so one answer uses it up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from narrate.pipeline.budget import BUDGET_REASON
from tests.support.fake_llm import FakeLLMServer
from tests.support.word_images import (
    read_csv,
    requests_for,
    text_image,
)

WORDS = ("ALPHA", "BRAVO", "CHARLIE", "DELTA")


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
    assert "1 described, 1 skipped (done before), 0 failed of 4" in run.stdout  # 2 budget
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
