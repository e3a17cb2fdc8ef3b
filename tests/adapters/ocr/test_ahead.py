"""Tesseract passes started ahead of their image (adapters.ocr.ahead), on the real program."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from adapters.ocr import ahead
from adapters.ocr.ahead import PassAhead, TesseractExit, claim, park
from adapters.ocr.tesseract import TesseractOcr

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


def _page(text: str) -> np.ndarray:
    image = Image.new("L", (900, 160), 255)
    ImageDraw.Draw(image).text((30, 40), text, fill=0, font=ImageFont.truetype(FONT, 56))
    return np.asarray(image)


def _pgm(image: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".pgm", image)
    assert ok
    return encoded.tobytes()


def _words(tsv: str) -> list[str]:
    rows = [line.split("\t") for line in tsv.splitlines()[1:]]
    return [row[11] for row in rows if len(row) == 12 and row[11].strip()]


@pytest.fixture(autouse=True)
def _no_parked_pass() -> Iterator[None]:
    """Each test starts and ends with nothing parked (the module keeps one per process)."""
    ahead._stop_parked()
    yield
    ahead._stop_parked()


def test_a_pass_fed_on_stdin_reads_what_tesseract_reads_from_a_file(tmp_path: Path) -> None:
    image = _page("PLATFORM 4 AIRPORT")
    started = PassAhead.start("eng", 3, threads="1")
    assert started is not None and started.take("eng", 3)
    from_stdin = started.read(_pgm(image), timeout_s=60)
    cv2.imwrite(str(tmp_path / "page.pgm"), image)
    subprocess.run(
        ["tesseract", str(tmp_path / "page.pgm"), str(tmp_path / "out"), "--psm", "3", "tsv"],
        env={**os.environ, "OMP_THREAD_LIMIT": "1"},
        check=True,
        capture_output=True,
    )
    assert _words(from_stdin) == ["PLATFORM", "4", "AIRPORT"]
    assert from_stdin == (tmp_path / "out.tsv").read_text(encoding="utf-8")


def test_a_pass_serves_only_the_pack_and_mode_it_was_started_with() -> None:
    started = PassAhead.start("eng", 3)
    assert started is not None
    assert not started.take("chi_sim+eng", 3)
    assert not started.take("eng", 6)
    assert started.take("eng", 3)
    assert not started.take("eng", 3)  # once
    started.close()
    started.close()  # idempotent


def test_a_missing_language_pack_is_reported_with_tesseracts_words() -> None:
    started = PassAhead.start("no_such_pack", 3)
    assert started is not None
    with pytest.raises(TesseractExit, match="Failed loading language") as caught:
        started.read(_pgm(_page("HELLO")), timeout_s=60)
    assert caught.value.status == 1


def test_a_read_that_runs_out_of_time_kills_tesseract(tmp_path: Path) -> None:
    script = tmp_path / "tesseract"
    script.write_text("#!/bin/sh\nexec sleep 30\n", encoding="utf-8")
    script.chmod(0o755)
    started = PassAhead.start("eng", 3, command=str(script))
    assert started is not None
    with pytest.raises(TimeoutError, match=r"within 0\.5 s"):
        started.read(b"P5\n1 1\n255\n\x00", timeout_s=0.5)
    assert started._process.poll() is not None


def test_a_program_that_cannot_start_gives_no_pass(tmp_path: Path) -> None:
    assert PassAhead.start("eng", 3, command=str(tmp_path / "missing")) is None


def test_the_parked_pass_is_claimed_when_started_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_THREAD_LIMIT", "1")
    park("eng", 3, threads=1)
    parked = ahead._parked
    assert parked is not None
    got = claim("eng", 3)
    assert got is parked and ahead._parked is None
    assert got.take("eng", 3)
    assert _words(got.read(_pgm(_page("PARKED PASS")), timeout_s=60)) == ["PARKED", "PASS"]


@pytest.mark.parametrize(
    ("pack", "psm", "threads"),
    [("chi_sim+eng", 3, "1"), ("eng", 6, "1"), ("eng", 3, "2")],
    ids=["other-language", "other-mode", "other-thread-limit"],
)
def test_a_parked_pass_started_otherwise_is_stopped_and_replaced(
    monkeypatch: pytest.MonkeyPatch, pack: str, psm: int, threads: str
) -> None:
    park("eng", 3, threads=1)
    parked = ahead._parked
    assert parked is not None
    monkeypatch.setenv("OMP_THREAD_LIMIT", threads)
    got = claim(pack, psm)
    assert got is not None and got is not parked
    assert parked._process.poll() is not None  # stopped
    assert got.take(pack, psm)
    got.close()


def test_an_unclaimed_parked_pass_is_stopped_at_exit(tmp_path: Path) -> None:
    code = (
        "import sys; from adapters.ocr import ahead; ahead.park();"
        "print(ahead._parked._process.pid, flush=True)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    pid = int(done.stdout.strip())
    with pytest.raises(ProcessLookupError):  # gone (reaped by the exiting parent)
        os.kill(pid, 0)


def test_the_engine_reads_through_a_parked_pass(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "sign.png"
    Image.fromarray(_page("MIND THE GAP")).save(path)
    engine = TesseractOcr()  # sets OMP_THREAD_LIMIT=1 for its passes
    park("eng", 3, threads=1)
    parked = ahead._parked
    assert parked is not None
    result = engine.recognize(path, "auto")
    assert result.text == "MIND THE GAP"
    assert parked._taken and parked._process.returncode == 0
