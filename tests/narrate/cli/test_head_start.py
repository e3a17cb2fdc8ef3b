"""``narrate describe``'s head start (narrate/cli/head_start.py) on real tesseract."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw, ImageFont

from adapters.ocr import ahead
from adapters.ocr.ahead import PassAhead
from adapters.ocr.tesseract import TesseractOcr
from narrate.cli.head_start import read_first_image_ahead
from tests.images import render_sign_photo, render_transparent_text

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
LINES = ("Message 1: see you at six", "Message 2: the train is late", "Message 3: bring bread")
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def _nothing_parked(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Default OCR settings; nothing parked before or after (one of each per process)."""
    for name in list(os.environ):
        if name.upper().startswith(("NARRATE_OCR_", "NARRATE_MAX_IMAGE_PIXELS")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("OMP_THREAD_LIMIT", "1")
    ahead._stop_parked()
    ahead._stop_parked_read()
    yield
    ahead._stop_parked()
    ahead._stop_parked_read()


def _screenshot(path: Path, size: tuple[int, int] = (900, 2000)) -> Path:
    """A phone-like screenshot: taller than twice its width, chat lines at the top."""
    image = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(image)
    for number, line in enumerate(LINES):
        draw.text((30, 40 + 70 * number), line, font=ImageFont.truetype(FONT, 34), fill=20)
    image.save(path)
    return path


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[PassAhead]:
    """Every tesseract pass started ahead from now on, in order."""
    passes: list[PassAhead] = []
    start = PassAhead.start.__func__  # type: ignore[attr-defined]

    def counted(cls: type[PassAhead], pack: str, psm: int, **kwargs: Any) -> PassAhead | None:
        one = start(cls, pack, psm, **kwargs)
        if one is not None:
            passes.append(one)
        return one

    monkeypatch.setattr(PassAhead, "start", classmethod(counted))
    return passes


@pytest.mark.parametrize("read_ahead", [True, False], ids=["read-ahead", "pass-only"])
def test_a_tall_images_parked_pass_is_the_one_its_read_uses(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, started: list[PassAhead], read_ahead: bool
) -> None:
    """A screenshot is read in psm 4: its pass is parked in psm 4, not stopped and replaced."""
    if not read_ahead:  # an OCR setting given: only the pass is started ahead
        monkeypatch.setenv("NARRATE_OCR_THREADS", "1")
    path = _screenshot(tmp_path / "chat.png")

    read_first_image_ahead(str(path), "auto")
    assert (ahead._parked_read is not None) == read_ahead
    result = TesseractOcr().recognize(path, "auto")

    assert result.text == "\n".join(LINES)
    assert result.details["psm"] == "4"
    assert len(started) == 1  # the parked one, and no other
    assert started[0].key[1:3] == ("eng", "4") and started[0]._taken


def test_a_photo_keeps_the_automatic_layout(tmp_path: Path, started: list[PassAhead]) -> None:
    path = tmp_path / "wide.png"
    _screenshot(path, size=(1400, 600))
    read_first_image_ahead(str(path), "en")
    result = TesseractOcr().recognize(path, "en")
    assert result.text == "\n".join(LINES)
    assert [p.key[1:3] for p in started] == [("eng", "3")] and started[0]._taken


def test_other_formats_get_the_pass_only(tmp_path: Path, started: list[PassAhead]) -> None:
    path = tmp_path / "chat.gif"
    _screenshot(tmp_path / "chat.png").rename(path.with_suffix(".png"))
    Image.open(path.with_suffix(".png")).save(path)
    read_first_image_ahead(str(path), "auto")
    assert ahead._parked_read is None  # a GIF's plugin would load on the thread: not read ahead
    assert [p.key[1:3] for p in started] == [("eng", "3")]  # its shape is not known yet
    assert TesseractOcr().recognize(path, "auto").text == "\n".join(LINES)


_TRACE = """
import json, sys, threading
from narrate.cli.head_start import read_first_image_ahead
from adapters.ocr import ahead

imports = []

class Tracer:
    def find_spec(self, name, path=None, target=None):
        imports.append((threading.current_thread().name, name))
        return None

sys.meta_path.insert(0, Tracer())
read_first_image_ahead(sys.argv[1], "auto")
on_main = len(imports)
start = ahead._parked_read.result()
fed = start.ahead is not None and start.ahead._feeding is not None
if fed:
    start.ahead._feeding.join()
other = [i for i in imports if i[0] != "MainThread"]
print(json.dumps({"fed": fed, "main": on_main, "other": other}))
"""


@pytest.mark.parametrize(
    "kind", ["photo-exif", "rgba-png", "palette-png", "grey-png", "16-bit-png"]
)
def test_the_read_ahead_thread_imports_nothing(tmp_path: Path, kind: str) -> None:
    """Python 3.11's imports are not safe on two threads: the thread's are all done before it."""
    if kind == "photo-exif":
        photo, _ = render_sign_photo(size=(1600, 1200))
        exif = Image.Exif()
        exif[0x0112] = 6  # shown turned a quarter, as phones save a portrait photo
        path = tmp_path / "photo.jpg"
        photo.save(path, quality=90, exif=exif)
    else:
        image = render_transparent_text()[0]
        converted = {
            "rgba-png": image,
            "palette-png": image.convert("RGB").convert("P"),
            "grey-png": image.convert("L"),
            "16-bit-png": image.convert("I;16"),
        }[kind]
        path = tmp_path / f"{kind}.png"
        converted.save(path)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_THREAD_LIMIT": "1"}
    done = subprocess.run(
        [sys.executable, "-c", _TRACE, str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    traced = json.loads(done.stdout)
    assert traced["fed"]  # the thread did the whole of its work
    assert traced["main"] > 0  # the tracer saw the main thread's imports
    assert traced["other"] == []


def _describe(image: Path, out: Path, **env: str) -> dict[str, Any]:
    full_env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "NARRATE_LLM_BACKEND": "offline",
        "NARRATE_CACHE_BACKEND": "off",
        **env,
    }
    command = [sys.executable, "-m", "narrate.cli.main", "describe", str(image), "--json"]
    done = subprocess.run(
        [*command, "--out", str(out)],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    record: dict[str, Any] = json.loads(done.stdout)[0]
    return record


@pytest.mark.slow
def test_describe_says_the_same_with_and_without_the_head_start(tmp_path: Path) -> None:
    photo, _ = render_sign_photo()
    sign = tmp_path / "sign.jpg"
    photo.save(sign, quality=90)
    chat = _screenshot(tmp_path / "chat.png")
    for image, first_line in ((sign, "PLATFORM 4"), (chat, LINES[0])):
        ahead_run = _describe(image, tmp_path / "a")
        # any OCR variable turns the read-ahead off; this one is the default value
        waited = _describe(image, tmp_path / "b", NARRATE_OCR_THREADS="1")
        assert ahead_run["ocr_text"].splitlines()[0] == first_line
        for field in ("ocr_text", "ocr_confidence", "language", "description", "features"):
            assert ahead_run[field] == waited[field], (image.name, field)
