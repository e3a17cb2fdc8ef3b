"""File names that are not UTF-8 (bytes from an old zip) work end to end: outputs, JSON, result."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from assets import SAMPLES_DIR
from narrate.pipeline.results import on_disk, readable, to_jsonable
from narrate.pipeline.sequence import output_paths

LATIN1 = b"re\xe7u_caf\xe9"  # "reçu_café" in Latin-1: not valid UTF-8


def test_latin1_bytes_become_readable_text() -> None:
    name = os.fsdecode(LATIN1 + b".png")  # what Linux hands Python: lone surrogates
    assert readable(name) == "reçu_café.png"
    assert readable("已经是UTF-8.png") == "已经是UTF-8.png"
    mixed = os.fsdecode("café_".encode() + b"\xe9t\xe9.png")  # valid UTF-8, then Latin-1
    assert readable(mixed) == "café_été.png"
    assert json.dumps(to_jsonable({"image_path": Path(name)}), ensure_ascii=False)


def test_a_file_given_by_its_readable_name_is_found(tmp_path: Path) -> None:
    real = os.fsencode(tmp_path) + b"/dir\xe9/" + LATIN1 + b".png"  # folder and file Latin-1
    os.makedirs(os.path.dirname(real))
    Path(os.fsdecode(real)).write_bytes(b"x")
    shown = Path(readable(os.fsdecode(real)))
    assert str(shown).endswith("diré/reçu_café.png") and not shown.exists()
    assert on_disk(shown) == Path(os.fsdecode(real))
    assert on_disk(tmp_path / "diré" / "missing.png") == tmp_path / "diré" / "missing.png"


def test_outputs_get_utf8_names(tmp_path: Path) -> None:
    wav, js = output_paths(Path(os.fsdecode(LATIN1 + b".png")), tmp_path)
    assert wav.name == "reçu_café.wav" and js.name == "reçu_café.json"


@pytest.mark.slow  # a fresh CLI process: imports and speech, a few seconds
def test_describe_writes_wav_and_json_for_a_latin1_name(tmp_path: Path) -> None:
    image = os.fsencode(tmp_path) + b"/" + LATIN1 + b".png"
    shutil.copy(SAMPLES_DIR / "receipt_en.png", image)
    run = subprocess.run(
        [sys.executable, "-m", "narrate.cli.main", "describe", image, b"--out", b"out"],
        cwd=tmp_path,
        env={**os.environ, "NARRATE_LLM_BACKEND": "offline", "NARRATE_CACHE_BACKEND": "off"},
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads((tmp_path / "out" / "reçu_café.json").read_text(encoding="utf-8"))
    assert result["image_path"].endswith("reçu_café.png")
    assert "CORNER CAFE" in result["ocr_text"]
    assert (tmp_path / "out" / "reçu_café.wav").stat().st_size > 1000


def test_ask_writes_utf8_named_answer_files_for_a_latin1_name(tmp_path: Path) -> None:
    from narrate.config.settings import LLMSettings, Settings
    from narrate.pipeline.sequence import answer_one, plain_steps

    image = Path(os.fsdecode(os.fsencode(tmp_path) + b"/" + LATIN1 + b".png"))
    shutil.copy(SAMPLES_DIR / "receipt_en.png", image)
    result = answer_one(
        image,
        question_text="What is the total?",
        out_dir=tmp_path / "out",
        lang="auto",
        settings=Settings(llm=LLMSettings(backend="offline")),
        steps=plain_steps(),
    )
    saved = json.loads((tmp_path / "out" / "reçu_café.answer.json").read_text(encoding="utf-8"))
    assert saved["answer"] == result.answer and "7.20" in saved["answer"]
    assert result.audio_path == tmp_path / "out" / "reçu_café.answer.wav"


def test_batch_direct_keeps_a_latin1_name_in_every_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from narrate.config.settings import load_settings
    from narrate.pipeline.batch import run_direct

    monkeypatch.setenv("NARRATE_LLM_BACKEND", "offline")
    monkeypatch.setenv("NARRATE_CACHE_BACKEND", "off")
    folder = os.fsencode(tmp_path / "in")
    os.mkdir(folder)
    shutil.copy(SAMPLES_DIR / "receipt_en.png", folder + b"/" + LATIN1 + b".png")
    with open(folder + b"/caf\xe9_cass\xe9.png", "wb") as fh:  # a broken image, Latin-1 too
        fh.write((SAMPLES_DIR / "receipt_en.png").read_bytes()[:2000])
    out = tmp_path / "out"

    summary = run_direct(os.fsdecode(folder), out, settings=load_settings(), concurrency=2)

    assert (summary.ok, summary.failed) == (1, 1)
    data = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    items = {Path(row["item"]).name: row for row in data["items"]}
    assert items["reçu_café.png"]["output"] == "reçu_café.json"
    assert items["reçu_café.png"]["status"] == "ok"
    broken = items["café_cassé.png"]
    assert broken["status"] == "failed" and "café_cassé.png" in broken["reason"]
    with open(out / "summary.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert {Path(r["item"]).name for r in rows} == {"reçu_café.png", "café_cassé.png"}
    lines = (out / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    manifest = [json.loads(line) for line in lines]
    assert {Path(r["item"]).name for r in manifest} == {"reçu_café.png", "café_cassé.png"}
    result = json.loads((out / "reçu_café.json").read_text(encoding="utf-8"))
    assert "CORNER CAFE" in result["ocr_text"] and result["image_path"].endswith("reçu_café.png")
    assert (out / "reçu_café.wav").stat().st_size > 1000

    again = run_direct(os.fsdecode(folder), out, settings=load_settings(), concurrency=2)
    assert again.skipped == 1  # the manifest recognises the finished image by its readable name


@pytest.mark.slow  # a fresh CLI process: imports and speech, a few seconds
def test_cli_batch_direct_engine_with_latin1_names(tmp_path: Path) -> None:
    folder = os.fsencode(tmp_path / "in")
    os.mkdir(folder)
    shutil.copy(SAMPLES_DIR / "receipt_en.png", folder + b"/" + LATIN1 + b".png")
    with open(folder + b"/caf\xe9_cass\xe9.png", "wb") as fh:
        fh.write(b"not an image at all")
    run = subprocess.run(
        [sys.executable, "-m", "narrate.cli.main", "batch", folder, b"--out", b"out",
         b"--engine", b"direct"],
        cwd=tmp_path,
        env={**os.environ, "NARRATE_LLM_BACKEND": "offline", "NARRATE_CACHE_BACKEND": "off"},
        capture_output=True, timeout=300, check=False,
    )  # fmt: skip
    stderr = run.stderr.decode("utf-8")
    assert run.returncode == 1, stderr  # one image failed, and said so
    assert "Traceback" not in stderr and "café_cassé.png" in stderr
    with open(tmp_path / "out" / "summary.csv", newline="", encoding="utf-8") as fh:
        rows = {Path(r["item"]).name: r for r in csv.DictReader(fh)}
    assert rows["reçu_café.png"]["status"] == "ok"
    assert rows["reçu_café.png"]["output"] == "reçu_café.json"
    assert rows["café_cassé.png"]["status"] == "failed"
    assert (tmp_path / "out" / "reçu_café.wav").stat().st_size > 1000
