"""``auto`` OCR (adapters/ocr/auto.py): when it asks RapidOCR too, and which read it keeps.

The decision is tested with scripted engine results (each row one case of the rule in the
module docstring); the engines themselves are tested on real images in
``test_ocr_contract.py`` and ``test_real_world.py``, where ``auto`` is one of the engines.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from adapters.ocr.auto import HINT, NO_TEXT_GLANCED, SURE, AutoOcr, _covered
from adapters.ocr.base import OcrResult, WordBox
from assets import SAMPLES_DIR
from tests.images import (
    FONT_SANS_BOLD,
    recall,
    render_banner,
    render_dim_tilted_sign,
    render_settings_values,
    render_sign_photo,
    render_textfree_photo,
    render_turned_notes,
    word_recall,
)


def _read(text: str, confidence: float, *, size: tuple[int, int] = (800, 600)) -> OcrResult:
    boxes = tuple(
        WordBox(word, 10 + 60 * i, 10, 50, 20, confidence) for i, word in enumerate(text.split())
    )
    return OcrResult(text, "en", confidence if boxes else 0.0, boxes, image_size=size)


def _sloped(text: str, confidence: float, deg: float) -> OcrResult:
    """A sure read whose words run ``deg`` degrees off the horizontal (a tilted sign)."""
    rise = math.tan(math.radians(deg))
    boxes = tuple(
        WordBox(word, 10 + 120 * i, 400 - round(120 * i * rise), 100, 30, confidence)
        for i, word in enumerate(text.split())
    )
    return OcrResult(text, "en", confidence, boxes, image_size=(1280, 960))  # no glance


def _nothing_kept(dropped: str, confidence: float) -> OcrResult:
    box = WordBox(dropped, 10, 10, 50, 20, confidence)
    return OcrResult("", "en", 0.0, (), image_size=(800, 600), dropped=(box,))


@dataclass
class _Scripted:
    result: OcrResult
    calls: list[Path] = field(default_factory=list)
    glance: OcrResult | None = None  # RapidOCR's read at a 736-px shorter side
    glances: list[int] = field(default_factory=list)  # short_side_px of each glance asked
    lines: tuple[WordBox, ...] = ()  # what its detector finds (find_lines)
    finds: list[Path] = field(default_factory=list)

    def find_lines(self, image_path: Path, text_px: float | None = None) -> list[WordBox]:
        self.finds.append(image_path)
        return list(self.lines)

    def read_lines(self, image_path: Path, lines: list[WordBox]) -> list[WordBox]:
        """What the full read has in each box (its recogniser alone, on the box)."""
        return [
            next((b for b in self.result.boxes if _covered(line, (b,)) >= 0.5), replace(line))
            for line in lines
        ]

    def recognize(self, image_path: Path, language: str = "auto", **options: object) -> OcrResult:
        if options.get("short_side_px") is not None:
            assert self.glance is not None, "a glance was not expected"
            self.glances.append(int(options["short_side_px"]))  # type: ignore[call-overload]
            return self.glance
        self.calls.append(image_path)
        return self.result


def _auto(
    page: OcrResult, scene: OcrResult, lines: tuple[WordBox, ...] = ()
) -> tuple[AutoOcr, _Scripted]:
    auto = AutoOcr()
    rapid = _Scripted(scene, lines=lines)
    auto.tesseract = _Scripted(page)  # type: ignore[assignment]
    auto.rapidocr = rapid  # type: ignore[assignment]
    return auto, rapid


UNUSED = _read("never asked", 1.0)
PHONE = (4032, 3024)  # 12 MP: a big photo, on which RapidOCR takes a glance first


def _found(box: WordBox, score: float = 0.85) -> WordBox:
    """A line RapidOCR's detector finds around ``box``'s text (grown by DBNet's unclip)."""
    offset = 1.6 * box.width * box.height / (2 * (box.width + box.height))
    return WordBox(
        "", round(box.left - offset), round(box.top - offset),
        round(box.width + 2 * offset), round(box.height + 2 * offset), score,
    )  # fmt: skip


def _where(box: WordBox) -> tuple[int, int, int, int]:
    return box.left, box.top, box.width, box.height


LABEL = _read("Bluetooth", 0.96)
VALUE = WordBox("On", 700, 10, 40, 20, 0.0)  # where the value sits, unread


@pytest.mark.parametrize(
    ("page", "lines", "kept", "choice", "asked"),
    [
        pytest.param(
            LABEL, (_found(LABEL.boxes[0]),), "Bluetooth", "tesseract", False,
            id="every line the detector finds is read: tesseract alone",
        ),
        pytest.param(
            LABEL, (_found(LABEL.boxes[0]), _found(VALUE)), "Bluetooth On",
            "tesseract + rapidocr (sure, but 1 of 2 text lines found were not read", False,
            id="a line found that no kept word covers: RapidOCR's read of it is added",
        ),
        pytest.param(
            LABEL, (_found(LABEL.boxes[0]), _found(VALUE, score=0.5)), "Bluetooth",
            "tesseract", False,
            id="a line found less surely than FOUND_SURE is not asked about",
        ),
        pytest.param(
            OcrResult("Bluetooth", "en", 0.96, LABEL.boxes, image_size=(800, 600),
                      dropped=(WordBox("On", 700, 10, 40, 20, 0.5),)),
            (), "Bluetooth On",
            "rapidocr (tesseract sure, but 2 word-like characters were dropped", True,
            id="word-like words dropped with some confidence: RapidOCR reads too",
        ),
        pytest.param(
            _read("Refunds are made within thirty days of purchase", 0.96), (),
            "Refunds are made within thirty days of purchase", "tesseract", False,
            id="no line found (or none left out): tesseract alone",
        ),
    ],
)  # fmt: skip
def test_auto_checks_a_sure_read_for_text_left_out(
    page: OcrResult, lines: tuple[WordBox, ...], kept: str, choice: str, asked: bool
) -> None:
    lines_read = (
        WordBox("Bluetooth", *_where(LABEL.boxes[0]), 0.99),
        WordBox("On", *_where(VALUE), 0.99),
    )
    scene = OcrResult("Bluetooth On", "en", 0.99, lines_read, image_size=(800, 600))
    auto, rapid = _auto(page, scene, lines)
    result = auto.recognize(Path("screen.png"), "auto")
    assert result.text == kept
    assert result.details["engine_choice"].startswith(choice)
    assert bool(rapid.calls) is asked


def test_a_line_found_that_rapidocr_reads_nothing_in_keeps_tesseracts_read() -> None:
    """A chat screenshot's battery icon was a "line" to the detector, nothing to read: no
    whole read of the image follows."""
    label = WordBox("Bluetooth", *_where(LABEL.boxes[0]), 0.99)
    scene = OcrResult("Bluetooth", "en", 0.99, (label,), image_size=(800, 600))
    auto, rapid = _auto(LABEL, scene, (_found(LABEL.boxes[0]), _found(VALUE)))
    result = auto.recognize(Path("chat.png"), "auto")
    assert result.text == "Bluetooth"
    assert result.details["engine_choice"].endswith("rapidocr read nothing there either)")
    assert not rapid.calls


def _page(*lines: tuple[str, int, int]) -> OcrResult:
    """A sure tesseract read: one word per (text, left, top), each its own line."""
    boxes = tuple(WordBox(text, left, top, 20 * len(text), 30, 0.96) for text, left, top in lines)
    text = "\n".join(text for text, _, _ in lines)
    return OcrResult(text, "en", 0.96, boxes, image_size=(800, 600))


@pytest.mark.parametrize(
    ("page", "read", "kept", "language"),
    [
        pytest.param(
            _page(("TITLE", 10, 10), ("END", 10, 400)), WordBox("MIDDLE", 10, 200, 120, 30, 0.97),
            "TITLE\nMIDDLE\nEND", "en", id="a line of its own, in reading order",
        ),
        pytest.param(
            _page(("Wi-Fi", 10, 10), ("Bluetooth", 10, 100)), WordBox("On", 700, 105, 40, 30, 0.97),
            "Wi-Fi\nBluetooth On", "en", id="a value beside its label joins the label's line",
        ),
        pytest.param(
            _page(("欢迎", 10, 10)), WordBox("欢迎光临", 5, 5, 200, 40, 0.99), "欢迎光临", "zh",
            id="a line read whole replaces the words of it tesseract read",
        ),
        pytest.param(
            _page(("Airplane", 10, 10)), WordBox("Off >", 700, 12, 80, 30, 0.97),
            "Airplane Off", "en", id="a chevron read with a value is left out",
        ),
        pytest.param(
            _page(("Sound", 10, 100), ("On", 700, 105)), WordBox("On >", 690, 100, 130, 40, 0.97),
            "Sound On", "en", id="a word tesseract put in a line of its own is not said twice",
        ),
    ],
)  # fmt: skip
def test_lines_read_where_a_sure_read_left_text_out_are_added_to_it(
    page: OcrResult, read: WordBox, kept: str, language: str
) -> None:
    """Tesseract's words stay (a settings screen's "Off", which RapidOCR's whole read gave as
    "HO", won the comparison of whole reads and was lost); RapidOCR adds only what it read
    where tesseract left text out. No whole second read is made."""
    scene = OcrResult(read.text, "en", 0.97, (read,), image_size=(800, 600))
    auto, rapid = _auto(page, scene, (*(_found(b) for b in page.boxes), _found(read)))
    result = auto.recognize(Path("screen.png"), "auto")
    assert result.text == kept
    assert result.language == language
    assert result.details["engine_choice"].startswith("tesseract + rapidocr (sure, but 1 of")
    assert not rapid.calls


def test_a_big_photo_is_not_run_through_the_detector() -> None:
    """On a 12 MP photo the detector would cost more than tesseract's whole read."""
    page = _read("OPEN DAILY", 0.96, size=PHONE)
    auto, rapid = _auto(page, UNUSED, (_found(VALUE),))
    assert auto.recognize(Path("photo.jpg"), "auto").details["engine_choice"] == "tesseract"
    assert not rapid.finds and not rapid.calls


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        pytest.param((WordBox("Exit", 100, 100, 200, 60, 0.9),), 1.0, id="the whole line"),
        pytest.param((WordBox("Exit", 100, 100, 100, 60, 0.9),), 0.5, id="half of it"),
        pytest.param((WordBox("Exit", 100, 300, 200, 60, 0.9),), 0.0, id="another line"),
        pytest.param((), 0.0, id="nothing read"),
    ],
)
def test_covered_measures_a_found_line_along_its_length(
    words: tuple[WordBox, ...], expected: float
) -> None:
    line = _found(WordBox("", 100, 100, 200, 60, 0.0))
    assert _covered(line, words) == pytest.approx(expected, abs=0.03)
    column = _found(WordBox("", 100, 100, 60, 200, 0.0))  # vertical Chinese
    turned = tuple(WordBox(w.text, w.top, w.left, w.height, w.width, 0.9) for w in words)
    assert _covered(column, turned) == pytest.approx(expected, abs=0.03)


@pytest.mark.parametrize(
    ("page", "scene", "kept", "choice", "asked"),
    [
        pytest.param(
            _read("OPEN DAILY", SURE + 0.05), UNUSED, "OPEN DAILY", "tesseract", False,
            id="sure tesseract read: RapidOCR never reads",
        ),
        pytest.param(
            _nothing_kept("}~", 0.9), UNUSED, "", "tesseract", False,
            id="nothing word-like read (a photo without text): no second read",
        ),
        pytest.param(
            OcrResult("", "en", 0.0, (), image_size=(800, 600)), _read("EXIT", 0.95), "EXIT",
            "rapidocr (tesseract no word read", True,
            id="no word read at all (a tilted sign): ask RapidOCR",
        ),
        pytest.param(
            OcrResult("", "en", 0.0, (), image_size=(800, 600)), _read("4,", 0.95), "",
            "tesseract (no word read; rapidocr read no letters", True,
            id="no word read, and RapidOCR read only a digit (texture): no text",
        ),
        pytest.param(
            _read("4,", 0.83), _read("1", 0.7), "", "tesseract (unsure; both read", True,
            id="unsure and no letters in either read (texture): no text",
        ),
        pytest.param(
            _read("0PEN DA1LY", 0.6), _read("OPEN DAILY", 0.95), "OPEN DAILY",
            "rapidocr (tesseract unsure", True,
            id="unsure: both read, RapidOCR's more confident text wins",
        ),
        pytest.param(
            _read("OPEN DAILY NOW", 0.8), _read("OPEN", 0.95), "OPEN DAILY NOW",
            "tesseract (unsure", True,
            id="unsure: both read, tesseract read more",
        ),
        pytest.param(
            _nothing_kept("EXIT", HINT + 0.1), _read("EXIT", 0.95), "EXIT",
            "rapidocr (tesseract nothing kept", True,
            id="a word-like word dropped with some confidence: ask RapidOCR",
        ),
        pytest.param(
            _sloped("Trains to the airport", 0.95, 3.0), UNUSED, "Trains to the airport",
            "tesseract", False,
            id="a sure read of lines tilted 3 degrees stands alone",
        ),
        pytest.param(
            _sloped("Trains to the airport", 0.95, 7.0),
            _read("PLATFORM 4 Trains to the airport leave every 15 minutes", 0.99),
            "PLATFORM 4 Trains to the airport leave every 15 minutes",
            "rapidocr (tesseract sure, lines tilted 7.", True,
            id="a sure read of lines tilted 7 degrees (lines missed): RapidOCR reads too",
        ),
        pytest.param(
            _read("LINE ONE", 0.6, size=(100, 30000)), UNUSED, "LINE ONE",
            "tesseract (long image)", False,
            id="long images stay with tesseract (RapidOCR's detector loses their lines)",
        ),
    ],
)  # fmt: skip
def test_auto_asks_rapidocr_only_when_tesseract_is_unsure(
    page: OcrResult, scene: OcrResult, kept: str, choice: str, asked: bool
) -> None:
    auto, rapid = _auto(page, scene)
    result = auto.recognize(Path("sign.jpg"), "auto")
    assert result.text == kept
    assert result.details["engine_choice"].startswith(choice)
    assert bool(rapid.calls) is asked


@pytest.mark.parametrize(
    ("page", "glance", "kept", "choice", "full_read"),
    [
        pytest.param(
            _read("4,", 0.83, size=PHONE), _read("", 0.0, size=PHONE), "",
            f"tesseract (unsure; {NO_TEXT_GLANCED})", False,
            id="unsure digit, glance saw nothing (text-free 12 MP photo): no text, no full read",
        ),
        pytest.param(
            OcrResult("", "en", 0.0, (), image_size=PHONE), _nothing_kept("1", 0.99), "",
            f"tesseract (no word read; {NO_TEXT_GLANCED})", False,
            id="no word read, glance read a pole as '1': no full read",
        ),
        pytest.param(
            _read("0PEN DA1LY", 0.6, size=PHONE), _read("OPEN DAILY", 0.97, size=PHONE),
            "OPEN DAILY", "rapidocr (tesseract unsure; its glance, rapidocr read more)", False,
            id="a sure glance is RapidOCR's read: no full read",
        ),
        pytest.param(
            _read("0PEN DA1LY", 0.6, size=PHONE), _nothing_kept("OPEN DA", 0.7),
            "OPEN DAILY", "rapidocr (tesseract unsure; both read", True,
            id="an unsure glance that saw letters: the full read follows",
        ),
    ],
)  # fmt: skip
def test_auto_glances_before_a_second_read_of_a_big_photo(
    page: OcrResult, glance: OcrResult, kept: str, choice: str, full_read: bool
) -> None:
    auto, rapid = _auto(page, _read("OPEN DAILY", 0.95, size=PHONE))
    rapid.glance = glance
    result = auto.recognize(Path("photo.jpg"), "auto")
    assert result.text == kept
    assert result.details["engine_choice"].startswith(choice)
    assert rapid.glances == [736]  # RapidOCR's detector's own working size, asked once
    assert bool(rapid.calls) is full_read


@pytest.mark.slow
@pytest.mark.parametrize(
    ("render", "left_out"),
    [
        pytest.param(render_settings_values, "text lines found were not read", id="grey values"),
        pytest.param(lambda: render_banner("欢迎光临"), "text lines found were not read",
                     id="zh banner, tesseract: nothing"),
        pytest.param(lambda: render_banner("欢迎光临", ground=(200, 30, 30), ink=(255, 255, 255)),
                     "text lines found were not read", id="white on red, tesseract: nothing"),
        pytest.param(lambda: render_banner("Exit this way", font=FONT_SANS_BOLD, size_px=90,
                                           ground=(255, 255, 255), ink=(0, 0, 0)),
                     "word-like characters were dropped", id="big bold, tesseract: 'way'"),
    ],
)  # fmt: skip
def test_auto_reads_what_a_sure_tesseract_read_left_out(
    tmp_path: Path, render: Callable[[], tuple[Any, str]], left_out: str
) -> None:
    """Tesseract reads each of these surely (0.96-0.97) or finds no word and drops nothing
    word-like, yet leaves text out: the values of a settings screen, two of four Chinese
    characters, a whole banner, two of three words (a new user's trial)."""
    image, text = render()
    path = tmp_path / "left_out.png"
    image.save(path)
    result = AutoOcr().recognize(path, "auto")
    assert left_out in result.details["engine_choice"], result.details
    assert recall(text, result.text) == 1.0, result.text


def test_a_3_mp_photo_without_text_is_glanced_at_not_read_whole() -> None:
    """A new user's 2000x1500 photo of blurred noise: read whole (at twice its size, its
    texture taken for small text) it cost 8 s and 765 MB; the glance saw no text."""
    page = OcrResult("", "en", 0.0, (), image_size=(2000, 1500))
    auto, rapid = _auto(page, UNUSED)
    rapid.glance = OcrResult("", "en", 0.0, (), image_size=(2000, 1500))
    result = auto.recognize(Path("noise.jpg"), "auto")
    assert result.text == "" and NO_TEXT_GLANCED in result.details["engine_choice"]
    assert rapid.glances == [736] and not rapid.calls


@pytest.mark.slow
def test_auto_reads_a_tilted_sign_in_which_tesseract_finds_no_word(tmp_path: Path) -> None:
    image, text = render_sign_photo(size=(2016, 1512))
    path = tmp_path / "tilted.jpg"
    image.rotate(6, fillcolor=(92, 88, 80)).save(path, quality=88)  # tesseract: no word
    result = AutoOcr().recognize(path, "auto")
    assert result.details["engine_choice"].startswith("rapidocr (tesseract no word read")
    assert word_recall(text, result.text) >= 0.9, result.text


@pytest.mark.slow
def test_auto_reads_every_line_of_a_dim_sign_tilted_7_degrees(tmp_path: Path) -> None:
    """Tesseract reads this sign's first four of six lines at 0.92 confidence (a sure read);
    the slope of its lines is what sends it to RapidOCR, which reads all six."""
    image, text = render_dim_tilted_sign()
    path = tmp_path / "dim_tilted.jpg"
    image.save(path, quality=88)
    result = AutoOcr().recognize(path, "auto")
    assert "lines tilted" in result.details["engine_choice"], result.details
    assert word_recall(text, result.text) == 1.0, result.text


@pytest.mark.slow
def test_auto_on_the_receipt_sample_reads_with_tesseract_alone() -> None:
    result = AutoOcr().recognize(SAMPLES_DIR / "receipt_en.png", "auto")
    assert result.details["engine_choice"] == "tesseract"
    assert "TOTAL" in result.text.upper()


@pytest.mark.slow
def test_auto_finds_no_text_in_a_phone_size_photo_without_text(tmp_path: Path) -> None:
    """Tesseract reads no word here and RapidOCR a lone digit ("4," seen in a new user's
    trial, which the description then read aloud): no text is reported."""
    path = tmp_path / "landscape.jpg"
    render_textfree_photo(size=(4032, 3024)).save(path, quality=90)
    result = AutoOcr().recognize(path, "auto")
    assert result.text == "" and not result.boxes, result.details
    assert "no_text" in result.details
    # RapidOCR's glance saw no text: neither its full read (5-11 s on this photo) nor
    # tesseract's chi_sim+eng, OSD and chi_sim_vert passes at 12 MP (10-15 s) were made.
    assert NO_TEXT_GLANCED in result.details["engine_choice"]
    assert "other passes skipped" in result.details["language_detection"]


def test_a_page_turned_upright_by_osd_keeps_tesseracts_line_order(tmp_path: Path) -> None:
    """Its boxes, on the turned image, ran 36 degrees off: RapidOCR's read (lines out of
    order: the title last) replaced tesseract's sure one."""
    image, text = render_turned_notes()
    path = tmp_path / "notes.png"
    image.save(path)
    result = AutoOcr().recognize(path, "auto")
    assert result.text.splitlines() == text.splitlines(), result.text
    assert result.details["engine_choice"] == "tesseract", result.details
