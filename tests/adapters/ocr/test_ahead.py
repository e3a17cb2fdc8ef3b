"""Tesseract passes started ahead of their image (adapters.ocr.ahead), on the real program."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from adapters.errors import InputError
from adapters.ocr import ahead
from adapters.ocr.ahead import (
    PassAhead,
    TesseractExit,
    claim,
    claim_read,
    layout_psm,
    park,
    park_read,
    upright_size,
)
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
    ahead._stop_parked_read()
    yield
    ahead._stop_parked()
    ahead._stop_parked_read()


def _sleeping_tesseract(folder: Path) -> str:
    """A "tesseract" that never answers."""
    script = folder / "tesseract"
    script.write_text("#!/bin/sh\nexec sleep 30\n", encoding="utf-8")
    script.chmod(0o755)
    return str(script)


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
    started = PassAhead.start("eng", 3, command=_sleeping_tesseract(tmp_path))
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


@pytest.mark.parametrize(
    ("psm", "width", "height", "banded", "expected"),
    [
        (3, 900, 1799, False, 3),  # a page or photo: automatic layout
        (3, 900, 1800, False, 4),  # twice as tall as wide: one column
        (3, 1080, 9000, False, 4),  # a phone screenshot
        (3, 4032, 3024, True, 4),  # a band of a long image
        (6, 900, 3000, False, 6),  # a mode asked for is kept
    ],
)
def test_tall_images_and_bands_are_read_as_one_column(
    psm: int, width: int, height: int, banded: bool, expected: int
) -> None:
    assert layout_psm(psm, width, height, banded=banded) == expected


def test_a_fed_pass_reads_the_image_it_was_fed_and_serves_only_that() -> None:
    fed, other = _pgm(_page("FED EARLY")), _pgm(_page("SOMETHING ELSE"))
    started = PassAhead.start("eng", 3, threads="1")
    assert started is not None
    started.feed(fed)
    assert not started.take("eng", 3, other)
    assert started.take("eng", 3, fed)
    with pytest.raises(ValueError, match="fed another image"):
        started.read(other, timeout_s=60)
    assert _words(started.read(fed, timeout_s=60)) == ["FED", "EARLY"]
    with pytest.raises(RuntimeError, match="fed already"):
        started.feed(fed)
    started.close()


def test_a_fed_pass_that_runs_out_of_time_is_killed(tmp_path: Path) -> None:
    started = PassAhead.start("eng", 3, command=_sleeping_tesseract(tmp_path))
    assert started is not None
    image = b"P5\n1 1\n255\n\x00"
    started.feed(image)
    with pytest.raises(TimeoutError, match=r"within 0\.5 s"):
        started.read(image, timeout_s=0.5)
    assert started._process.poll() is not None


def _wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "not within 10 s"
        time.sleep(0.01)


class _Closable:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_a_parked_read_goes_to_the_read_with_its_key_only() -> None:
    work = _Closable()
    park_read(("a.png", 1), lambda: work)
    assert claim_read(("b.png", 1)) is None  # another file: dropped, what it made closed
    assert ahead._parked_read is None
    _wait_for(lambda: work.closed)
    assert claim_read(("a.png", 1)) is None  # nothing stays parked

    kept = _Closable()
    interval = sys.getswitchinterval()
    park_read(("a.png", 1), lambda: (kept, sys.getswitchinterval()))
    assert claim_read(("a.png", 1)) == (kept, 0.001) and not kept.closed
    assert sys.getswitchinterval() == interval  # shorter only while the read ran


def test_a_parked_read_dropped_while_it_runs_closes_what_it_made_when_done() -> None:
    release, work = threading.Event(), _Closable()

    def slow() -> _Closable:
        release.wait(10)
        return work

    park_read("key", slow)
    assert claim_read("other") is None  # does not wait for the work
    assert not work.closed
    release.set()
    _wait_for(lambda: work.closed)


def test_a_parked_read_hands_its_error_to_the_read_that_claims_it(tmp_path: Path) -> None:
    def fails() -> None:
        raise InputError(tmp_path / "cut.jpg", "image data is truncated or corrupt")

    park_read("key", fails)
    with pytest.raises(InputError, match="truncated or corrupt"):
        claim_read("key")


def test_the_upright_size_of_a_jpeg_follows_its_exif_orientation(tmp_path: Path) -> None:
    image = Image.new("RGB", (300, 100), "white")
    plain, turned = tmp_path / "plain.jpg", tmp_path / "turned.jpg"
    image.save(plain)
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned a quarter
    image.save(turned, exif=exif)
    assert upright_size(plain) == (300, 100)
    assert upright_size(turned) == (100, 300)


def test_only_jpeg_and_png_have_an_upright_size(tmp_path: Path) -> None:
    image = Image.new("RGB", (300, 100), "white")
    image.save(tmp_path / "page.png")
    image.save(tmp_path / "page.gif")
    image.save(tmp_path / "page.tif")
    (tmp_path / "cut.png").write_bytes((tmp_path / "page.png").read_bytes()[:20])
    assert upright_size(tmp_path / "page.png") == (300, 100)
    for name in ("page.gif", "page.tif", "cut.png", "missing.png"):
        assert upright_size(tmp_path / name) is None, name


@pytest.mark.parametrize("shape", ["photo", "tall"])
def test_a_read_started_ahead_is_taken_over_with_the_same_result(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, shape: str
) -> None:
    monkeypatch.setenv("OMP_THREAD_LIMIT", "1")
    lines = ["PLATFORM 4", "MIND THE GAP", "TRAINS EVERY HOUR"]
    size = (1200, 700) if shape == "photo" else (800, 1700)
    image = Image.new("RGB", size, (235, 232, 225))
    draw = ImageDraw.Draw(image)
    for number, line in enumerate(lines):
        draw.text((40, 60 + 110 * number), line, font=ImageFont.truetype(FONT, 52), fill=20)
    path = tmp_path / ("sign.jpg" if shape == "photo" else "screen.png")
    image.save(path, quality=92)
    fresh = TesseractOcr().recognize(path, "auto")

    TesseractOcr().read_ahead(path, "auto")  # as narrate describe does at start-up
    parked = ahead._parked_read
    assert parked is not None
    start = parked.result()
    assert start.ahead is not None and start.ahead._fed is not None  # fed before it is asked
    taken = TesseractOcr().recognize(path, "auto")  # built later, from the same settings

    assert ahead._parked_read is None and start.ahead._taken
    assert taken == fresh
    assert taken.text == "\n".join(lines)
    assert taken.details["psm"] == ("3" if shape == "photo" else "4")


def test_a_read_started_ahead_for_other_settings_is_not_used(tmp_path: Path) -> None:
    path = tmp_path / "page.png"
    Image.fromarray(_page("OTHER SETTINGS")).save(path)
    TesseractOcr().read_ahead(path, "auto")
    parked = ahead._parked_read
    assert parked is not None
    start = parked.result()

    result = TesseractOcr(deskew=True).recognize(path, "auto")

    assert result.text == "OTHER SETTINGS"
    assert start.ahead is not None and not start.ahead._taken
    assert start.ahead._process.poll() is not None  # stopped, not left running
    assert ahead._parked_read is None


def test_a_read_started_ahead_reports_a_broken_file_as_the_read_would(tmp_path: Path) -> None:
    whole = tmp_path / "whole.jpg"
    Image.fromarray(_page("CUT SHORT")).save(whole)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole.read_bytes()[:1500])
    with pytest.raises(InputError) as fresh:
        TesseractOcr().recognize(cut, "auto")

    TesseractOcr().read_ahead(cut, "auto")
    assert ahead._parked_read is not None
    with pytest.raises(InputError) as taken:
        TesseractOcr().recognize(cut, "auto")
    assert str(taken.value) == str(fresh.value)
    assert "truncated or corrupt" in str(taken.value)


def test_at_exit_an_unclaimed_read_is_waited_for_and_closed() -> None:
    """A process must not finalise while the read's thread is inside OpenCV (it can abort)."""
    work = _Closable()

    def slow() -> _Closable:
        time.sleep(0.3)
        return work

    park_read("key", slow)
    parked = ahead._parked_read
    assert parked is not None
    ahead._stop_parked_read()
    assert not parked._thread.is_alive() and work.closed
