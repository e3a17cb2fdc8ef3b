"""Batch planning and one item's processing (narrate/pipeline/batch.py), without Prefect."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import pytest

from adapters.errors import TransientError
from assets import SAMPLES_DIR
from narrate.config.settings import load_settings
from narrate.pipeline.batch import BatchRun, WorkItem, iter_sources, process_item
from narrate.pipeline.manifest import checkpoint_path
from tests.support.fake_llm import FakeLLMServer
from tests.support.word_images import requests_for, text_image

RECEIPT = SAMPLES_DIR / "receipt_en.png"


def test_sources_from_folder_glob_and_list_skip_the_output_folder(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    for name in ("b.png", "a.jpg", "sub/c.webp", ".hidden.png", "notes.txt", "out/old.png"):
        (photos / name).parent.mkdir(parents=True, exist_ok=True)
        (photos / name).write_bytes(b"x")
    out = photos / "out"

    folder = [str(s.path.relative_to(photos)) for s in iter_sources(photos, out)]
    assert folder == ["a.jpg", "b.png", "sub/c.webp"]  # sorted, recursive, images only
    globbed = [str(s.path.relative_to(photos)) for s in iter_sources(f"{photos}/**/*.png", out)]
    assert globbed == ["b.png"]
    listed = list(iter_sources([str(photos / "b.png"), "missing.gif"], out))
    assert [s.path.name for s in listed] == ["b.png", "missing.gif"]  # named files always come
    # one file named twice over, and through its folder and a glob, is one item
    twice = [str(photos / "b.png"), f"{photos}/./b.png", str(photos), f"{photos}/*.png"]
    again = [str(s.path.relative_to(photos)) for s in iter_sources(twice, out)]
    assert again == ["b.png", "a.jpg", "sub/c.webp"]


@pytest.mark.slow
def test_a_finished_description_is_never_asked_for_again(
    tmp_path: Path, counted_llm: FakeLLMServer
) -> None:
    """Killed after the LLM answered but before the item finished: the resume reuses it."""
    from narrate.pipeline.sequence import plain_steps

    settings = load_settings()
    image = text_image(tmp_path / "in" / "golf.png", "GOLF")
    out = tmp_path / "out"
    batch = BatchRun(tmp_path / "in", out, settings=settings)
    (work,) = [w for w in batch.plan() if isinstance(w, WorkItem)]

    def speech_dies(*args: object, **kwargs: object) -> object:
        raise TransientError("espeak-ng vanished")

    crashing = dataclasses.replace(plain_steps(), tts=speech_dies)
    with pytest.raises(TransientError):
        process_item(work, out_dir=out, lang="auto", settings=settings, steps=crashing)
    assert len(requests_for(counted_llm, "GOLF")) == 1
    assert checkpoint_path(out, work.key).is_file()

    outcome = process_item(work, out_dir=out, lang="auto", settings=settings, steps=plain_steps())
    assert outcome.status == "ok" and outcome.output == "golf.json"
    assert len(requests_for(counted_llm, "GOLF")) == 1  # no second call
    saved = json.loads((out / "golf.json").read_text())
    assert "GOLF" in saved["ocr_text"] and saved["image_path"] == str(image)
    assert saved["description"].startswith("This is a fake answer")


def _rapidocr_intra_op_threads(engine: object) -> set[int]:
    """The onnxruntime intra-op thread counts of a RapidOCR engine's loaded sessions."""
    rapid = engine._load()  # type: ignore[attr-defined]
    sessions = [rapid._load_det_model(), rapid._load_cls_model(), rapid._load_rec_model()]
    return {s.session.session.get_session_options().intra_op_num_threads for s in sessions}


@pytest.mark.parametrize(("env", "expected"), [(None, os.cpu_count() or 1), ("1", 1)])
def test_cpu_slots_and_rapidocr_threads_are_the_cores_or_narrate_cpu_slots(
    monkeypatch: pytest.MonkeyPatch, env: str | None, expected: int
) -> None:
    from narrate.pipeline import steps
    from narrate.pipeline.batch import cpu_slots

    if env is None:
        monkeypatch.delenv("NARRATE_CPU_SLOTS", raising=False)
    else:
        monkeypatch.setenv("NARRATE_CPU_SLOTS", env)
    cpu_slots.cache_clear()
    try:
        slots = cpu_slots()
        assert cpu_slots() is slots  # one per process
        taken = 0
        while slots.acquire(blocking=False):
            taken += 1
        assert taken == expected
    finally:
        cpu_slots.cache_clear()  # the next caller builds its own from its environment

    # One RapidOCR read at a time per process, on the process's share of the cores.
    build = steps._ocr_engine.__wrapped__  # type: ignore[attr-defined]  # uncached: a new one
    auto = build("auto", 1, False, 60.0, 50_000_000, None)
    assert auto.rapidocr.threads == expected
    assert _rapidocr_intra_op_threads(auto.rapidocr) == {expected}
    alone = build("rapidocr", 1, False, 60.0, 50_000_000, None)
    assert alone.threads == expected
    assert "TOTAL" in alone.recognize(RECEIPT).text  # and it still reads, on one thread too


@pytest.mark.slow
def test_identical_images_in_one_batch_each_get_their_own_outputs(
    tmp_path: Path, counted_llm: FakeLLMServer
) -> None:
    """Byte-identical files under different names: each is described, written and resumed
    as itself, never skipped as "the same image" as another one of the same run."""
    from narrate.pipeline.batch import run_direct

    settings = load_settings()
    first = text_image(tmp_path / "p" / "x.png", "GOLF")
    copies = [tmp_path / d / "x.png" for d in ("q", "r")] + [tmp_path / "p" / "copy.png"]
    for copy in copies:
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(first.read_bytes())
    inputs = [str(first), *map(str, copies)]
    out = tmp_path / "out"

    summary = run_direct(inputs, out, settings=settings, concurrency=2)
    rows = json.loads((out / "summary.json").read_text())["items"]
    assert (summary.ok, summary.skipped, summary.failed) == (4, 0, 0)
    outputs = {row["item"]: row["output"] for row in rows}
    assert len(set(outputs.values())) == 4  # no image points at another one's JSON
    for item, output in outputs.items():
        saved = json.loads((out / output).read_text())
        assert saved["image_path"] == item  # named after its own image
        assert "GOLF" in saved["ocr_text"]
        assert Path(saved["audio_path"]).stem == Path(output).stem
        assert Path(saved["audio_path"]).stat().st_size > 1000
    digest = hashlib.sha256(first.read_bytes()).hexdigest()[:8]
    assert sorted(outputs.values()) == sorted(
        ["x.json", f"x-{digest}.json", f"x-{digest}-2.json", "copy.json"]
    )

    again = run_direct(inputs, out, settings=settings, concurrency=2)
    rerun = json.loads((out / "summary.json").read_text())["items"]
    assert (again.ok, again.skipped, again.failed) == (0, 4, 0)
    assert {row["item"]: row["output"] for row in rerun} == outputs  # each its own output
    assert {row["reason"] for row in rerun} == {"done in an earlier run"}


def test_a_wrong_setting_stops_the_batch_and_a_rerun_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unknown voice fails the images in flight on a ConfigError; the rest are skipped as
    not tried (not failed each with the same message), and a rerun with the fix does them."""
    from narrate.pipeline.batch import SETTING_REASON, run_direct

    monkeypatch.setenv("NARRATE_LLM_BACKEND", "offline")
    for number, word in enumerate(("GOLF", "HOTEL", "INDIA", "JULIET", "KILO")):
        text_image(tmp_path / "in" / f"{number}.png", word)
    out = tmp_path / "out"
    monkeypatch.setenv("NARRATE_TTS_VOICE_EN", "xx/no-such-voice")
    broken = run_direct([str(tmp_path / "in")], out, settings=load_settings(), concurrency=1)
    rows = json.loads((out / "summary.json").read_text())["items"]
    assert (broken.ok, broken.failed, broken.skipped_setting) == (0, 1, 4)
    assert "no voice 'xx/no-such-voice' (NARRATE_TTS_VOICE_EN)" in rows[0]["reason"]
    assert [row["reason"] for row in rows[1:]] == [SETTING_REASON] * 4

    monkeypatch.delenv("NARRATE_TTS_VOICE_EN")
    fixed = run_direct([str(tmp_path / "in")], out, settings=load_settings(), concurrency=1)
    assert (fixed.ok, fixed.failed, fixed.skipped) == (5, 0, 0)
