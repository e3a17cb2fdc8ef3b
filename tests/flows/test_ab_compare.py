"""The A/B comparison flow: one fake-LLM variant against the offline describer, real OCR."""

from __future__ import annotations

import csv
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from adapters.errors import InputError
from assets import SAMPLES_DIR
from flows.ab_compare import variant_settings
from narrate.config.settings import Settings
from narrate.pipeline.results import readable
from tests.support.fake_llm import FakeLLMServer
from tests.support.word_images import text_image


def test_variant_settings_reject_unknown_and_invalid_values() -> None:
    assert variant_settings(Settings(), {"name": "warm", "temperature": 0.7}).temperature == 0.7
    with pytest.raises(InputError, match=r"unknown LLM setting.*tempreature"):
        variant_settings(Settings(), {"tempreature": 0.7})
    with pytest.raises(InputError, match="temperature=5"):
        variant_settings(Settings(), {"temperature": 5})


def test_variant_keys_may_name_a_renamed_setting_by_its_old_name() -> None:
    # deployments' variants are flow parameters: `timeout` keeps working as `timeout_s`
    assert variant_settings(Settings(), {"timeout": 7}).timeout_s == 7
    both = variant_settings(Settings(), {"retry_cap": 2, "deadline_s": 9})
    assert (both.retry_cap_s, both.deadline_s) == (2, 9)
    with pytest.raises(InputError, match="timeout_s=0"):
        variant_settings(Settings(), {"timeout": 0})


@pytest.mark.slow
def test_ab_compare_two_variants(
    prefect_harness: None,
    tmp_path: Path,
    fake_llm_factory: Callable[..., FakeLLMServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flows.ab_compare import ab_compare

    fake = fake_llm_factory(reply="A note that says ALPHA, or maybe BRAVO.")
    monkeypatch.setenv("NARRATE_LLM_BACKEND", "openai")
    monkeypatch.setenv("NARRATE_LLM_BASE_URL", fake.base_url)
    monkeypatch.setenv("NARRATE_CACHE_BACKEND", "off")
    images = [str(text_image(tmp_path / f"{w}.png", w)) for w in ("ALPHA", "BRAVO")]
    variants = [
        {"name": "warm", "temperature": 0.7, "max_tokens": 50},
        {"name": "offline", "backend": "offline"},
    ]

    table = ab_compare(images, variants, out_dir=tmp_path / "out")

    assert [row["variant"] for row in table] == ["warm", "offline"]
    warm, offline = table
    assert warm["images"] == offline["images"] == 2 and warm["failed"] == 0
    # OCR read "<WORD> NOTE 42": the fixed reply names the word and "note", not "42".
    assert warm["ocr_mention_mean"] == pytest.approx(2 / 3, abs=0.01)
    assert offline["ocr_mention_mean"] > warm["ocr_mention_mean"]
    assert warm["tokens_mean"] > 0 and offline["tokens_mean"] == 0
    assert warm["length_mean_chars"] == len("A note that says ALPHA, or maybe BRAVO.")
    assert len(fake.requests) == 2  # only the openai variant calls the LLM
    assert {r.body["temperature"] for r in fake.requests} == {0.7}
    assert {r.body["max_tokens"] for r in fake.requests} == {50}

    with open(tmp_path / "out" / "ab_compare.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["variant"] for r in rows] == ["warm", "offline"]
    with open(tmp_path / "out" / "ab_compare_items.csv", newline="") as fh:
        items = list(csv.DictReader(fh))
    assert len(items) == 4
    assert any("ALPHA" in i["description"] for i in items if i["variant"] == "offline")


@pytest.mark.slow
def test_ab_compare_keeps_a_latin1_image_name(
    prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.ab_compare import ab_compare

    monkeypatch.setenv("NARRATE_LLM_BACKEND", "offline")
    monkeypatch.setenv("NARRATE_CACHE_BACKEND", "off")
    image = os.fsdecode(os.fsencode(tmp_path) + b"/re\xe7u_caf\xe9.png")  # Latin-1 bytes
    shutil.copy(SAMPLES_DIR / "receipt_en.png", image)
    broken = os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9_cass\xe9.png")
    Path(broken).write_bytes(b"not an image")

    # Flow parameters travel as JSON: the names go as ``readable`` shows them (UTF-8), as
    # the UI, the script and the CLI pass them; the flow finds the files by them.
    names = [readable(image), readable(broken)]
    assert names[0].endswith("reçu_café.png") and not os.path.exists(names[0])
    table = ab_compare(names, [{"name": "only"}], out_dir=tmp_path / "out")

    assert table[0]["images"] == 2 and table[0]["failed"] == 1
    with open(tmp_path / "out" / "ab_compare_items.csv", newline="", encoding="utf-8") as fh:
        items = {Path(r["image"]).name: r for r in csv.DictReader(fh)}
    assert items["reçu_café.png"]["status"] == "ok"
    assert "CORNER CAFE" in items["reçu_café.png"]["description"].upper()
    assert items["café_cassé.png"]["status"] == "failed"
    assert "café_cassé.png" in items["café_cassé.png"]["reason"]
