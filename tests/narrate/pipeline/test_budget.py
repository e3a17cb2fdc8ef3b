"""The token budget of a batch (narrate/pipeline/budget.py) and how a batch item honours it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from narrate.config.settings import load_settings
from narrate.pipeline.batch import BatchRun, WorkItem, process_item
from narrate.pipeline.budget import BUDGET_REASON, TokenBudget, tokens_line
from narrate.pipeline.sequence import plain_steps
from tests.support.fake_llm import FakeLLMServer
from tests.support.word_images import read_csv, text_image

WORDS = ("ALPHA", "BRAVO")


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


def test_batch_run_takes_the_budget_from_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NARRATE_LLM_TOKEN_BUDGET", "5000")
    settings = load_settings()
    image = str(tmp_path / "one.png")  # a named file is an item (it fails when run)
    assert BatchRun([image], tmp_path / "out", settings=settings).budget.limit == 5000
    assert BatchRun([image], tmp_path / "out", settings=settings, token_budget=7).budget.limit == 7


def test_a_server_without_usage_still_uses_up_the_budget(
    tmp_path: Path, counted_llm: FakeLLMServer
) -> None:
    """llama.cpp-style servers send no token counts: the budget charges an estimate."""
    from narrate.pipeline.batch import run_direct
    from narrate.pipeline.budget import estimate_tokens

    counted_llm.send_usage = False
    folder = tmp_path / "in"
    for word in WORDS:
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
