"""File names that are not UTF-8 (bytes from an old zip) work end to end: outputs, JSON, result."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from assets import SAMPLES_DIR
from narrate.pipeline.results import readable, to_jsonable
from narrate.pipeline.sequence import output_paths

LATIN1 = b"re\xe7u_caf\xe9"  # "reçu_café" in Latin-1: not valid UTF-8


def test_latin1_bytes_become_readable_text() -> None:
    name = os.fsdecode(LATIN1 + b".png")  # what Linux hands Python: lone surrogates
    assert readable(name) == "reçu_café.png"
    assert readable("已经是UTF-8.png") == "已经是UTF-8.png"
    mixed = os.fsdecode("café_".encode() + b"\xe9t\xe9.png")  # valid UTF-8, then Latin-1
    assert readable(mixed) == "café_été.png"
    assert json.dumps(to_jsonable({"image_path": Path(name)}), ensure_ascii=False)


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
