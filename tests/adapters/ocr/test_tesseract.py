"""TesseractOcr against the real tesseract program and the committed sample images."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytesseract
import pytest
from PIL import Image

from adapters.errors import (
    ConfigError,
    InputError,
    PermanentError,
    TransientError,
    is_transient,
)
from adapters.ocr.base import OcrResult
from adapters.ocr.tesseract import TesseractOcr, estimate_skew
from scripts.make_samples import NOTICE_LINES, RECEIPT_LINES, render_receipt
from tests.images import (
    SAMPLE_TEXTS,
    iou,
    render_chat_screenshot,
    render_long_screenshot,
    render_rotated_page,
    render_sign_photo,
    render_textfree_photo,
    sample_path,
    word_recall,
)

PAPER = (250, 248, 240)


@pytest.fixture(scope="module")
def ocr() -> TesseractOcr:
    """One engine shared by the module's tests (it holds no per-call state)."""
    return TesseractOcr()


def _lines(result: OcrResult) -> list[str]:
    return [line.strip() for line in result.text.splitlines() if line.strip()]


def _box(result: OcrResult, word: str) -> tuple[int, int, int, int]:
    matches = [b for b in result.boxes if b.text == word]
    assert len(matches) == 1, f"{word!r} found {len(matches)} times in {result.boxes}"
    b = matches[0]
    return (b.left, b.top, b.width, b.height)


def _boxes_inside(result: OcrResult) -> bool:
    width, height = result.image_size
    return all(
        b.left >= 0 and b.top >= 0 and b.left + b.width <= width and b.top + b.height <= height
        for b in result.boxes
    )


def test_receipt_reads_every_line(ocr: TesseractOcr) -> None:
    result = ocr.recognize(sample_path("receipt_en.png"), "en")
    assert _lines(result) == list(RECEIPT_LINES)
    assert result.language == "en"
    assert result.confidence > 0.8
    assert result.image_size == (560, 620)
    assert re.fullmatch(r"tesseract \d+\.\d+.*", result.engine)
    assert result.details["tesseract_lang"] == "eng"
    assert {"CORNER", "CAFE", "TOTAL", "7.20", "Thank"} <= {b.text for b in result.boxes}


def test_receipt_word_boxes_are_where_the_words_were_drawn(ocr: TesseractOcr) -> None:
    _, drawn = render_receipt()
    result = ocr.recognize(sample_path("receipt_en.png"), "en")
    assert _boxes_inside(result)
    assert iou(_box(result, "TOTAL"), drawn["TOTAL"]) > 0.6


def test_chinese_notice_is_detected_and_read(ocr: TesseractOcr) -> None:
    result = ocr.recognize(sample_path("notice_zh.png"), "auto")
    assert result.language == "zh"
    assert _lines(result) == list(NOTICE_LINES)  # no spaces between the characters
    assert result.confidence > 0.8


def test_english_is_detected_in_auto_mode(ocr: TesseractOcr) -> None:
    result = ocr.recognize(sample_path("receipt_en.png"), "auto")
    assert result.language == "en"
    assert _lines(result) == list(RECEIPT_LINES)
    assert result.details["tesseract_lang"] == "eng"
    assert result.details["language_detection"] == "eng pass read confidently"  # one pass


def test_chinese_with_some_english_is_read_as_chinese(ocr: TesseractOcr, tmp_path: Path) -> None:
    from PIL import ImageDraw, ImageFont

    font = ImageFont.truetype("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 34)
    lines = ["无线网络 WiFi: Cafe-Guest", "密码 12345678", "营业时间 早上八点至晚上十点"]
    image = Image.new("RGB", (760, 220), "white")
    draw = ImageDraw.Draw(image)
    for number, line in enumerate(lines):
        draw.text((30, 25 + 62 * number), line, fill="black", font=font)
    image.save(tmp_path / "mixed.png")

    result = ocr.recognize(tmp_path / "mixed.png", "auto")
    assert result.language == "zh"
    assert "营业时间" in result.text and "无线网络" in result.text
    assert "WiFi" in result.text or "Cafe-Guest" in result.text


@pytest.mark.parametrize(
    ("alias", "name", "lines"),
    [("eng", "receipt_en.png", RECEIPT_LINES), ("chi_sim", "notice_zh.png", NOTICE_LINES)],
)
def test_tesseract_language_names_are_accepted(
    ocr: TesseractOcr, alias: str, name: str, lines: tuple[str, ...]
) -> None:
    result = ocr.recognize(sample_path(name), alias)
    assert result.language == ("en" if alias == "eng" else "zh")
    assert _lines(result) == list(lines)


def test_photo_without_text_yields_no_text(ocr: TesseractOcr) -> None:
    result = ocr.recognize(sample_path("photo_sunset.jpg"), "auto")
    assert result.text == "" and not result.has_text
    assert "no text found" in result.details["no_text"]
    assert result.image_size == (640, 427)


def test_unevenly_lit_page_is_read_only_with_preprocessing(ocr: TesseractOcr) -> None:
    path = sample_path("page_uneven_light.jpg")
    expected = SAMPLE_TEXTS["page_uneven_light.jpg"]
    raw = TesseractOcr(preprocess=False).recognize(path, "en")
    prepared = ocr.recognize(path, "en")
    assert word_recall(expected, raw.text) < 0.5  # measured 0.24: the sample is hard
    assert word_recall(expected, prepared.text) >= 0.9  # measured 0.98
    assert "illumination normalised" in prepared.details["preprocessing"]
    assert len(_lines(prepared)) == 10
    # Words the filter dropped stay in the result with their confidences.
    assert all(0 <= b.confidence <= 1 for b in (*prepared.boxes, *prepared.dropped))


def test_exif_orientation_is_applied_before_reading(ocr: TesseractOcr, tmp_path: Path) -> None:
    upright, drawn = render_receipt()
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # sideways on disk
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "sideways.jpg"
    stored.save(path, quality=95, exif=exif)
    result = ocr.recognize(path, "en")
    assert result.image_size == upright.size
    assert _lines(result) == list(RECEIPT_LINES)
    assert iou(_box(result, "TOTAL"), drawn["TOTAL"]) > 0.5


def test_skewed_receipt_reads_with_deskew(tmp_path: Path) -> None:
    upright, drawn = render_receipt()
    skewed = upright.rotate(4, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=PAPER)
    path = tmp_path / "skewed.png"
    skewed.save(path)
    assert estimate_skew(skewed.convert("L")) == pytest.approx(-4.0, abs=0.3)
    result = TesseractOcr(deskew=True).recognize(path, "en")
    assert _lines(result) == list(RECEIPT_LINES)
    assert "deskewed -4.0 deg" in result.details["preprocessing"]
    assert result.image_size == skewed.size
    assert _boxes_inside(result)
    # The drawn TOTAL box, rotated like the image, must contain the found box's centre.
    left, top, width, height = _box(result, "TOTAL")
    marker = Image.new("L", upright.size, 0)
    x, y, w, h = drawn["TOTAL"]
    marker.paste(255, (x, y, x + w, y + h))
    rotated = marker.rotate(4, expand=True)
    assert rotated.getpixel((left + width // 2, top + height // 2)) > 128


def test_small_text_is_upscaled_and_boxes_map_back(ocr: TesseractOcr, tmp_path: Path) -> None:
    upright, drawn = render_receipt()
    small = upright.resize((140, 155), Image.Resampling.LANCZOS)  # 0.25x: ~5 px x-height
    path = tmp_path / "small.png"
    small.save(path)
    result = ocr.recognize(path, "en")
    assert "upscaled" in result.details["preprocessing"]
    assert result.image_size == (140, 155)
    assert word_recall(SAMPLE_TEXTS["receipt_en.png"], result.text) >= 0.9  # 0.47 without
    x, y, w, h = drawn["TOTAL"]
    expected = (round(x / 4), round(y / 4), round(w / 4), round(h / 4))
    assert iou(_box(result, "TOTAL"), expected) > 0.4
    assert _boxes_inside(result)


@pytest.mark.slow  # eight OCR calls, about 4 s on two cores
def test_parallel_calls_match_sequential_ones(ocr: TesseractOcr) -> None:
    jobs = [(sample_path("receipt_en.png"), "en"), (sample_path("notice_zh.png"), "zh")] * 2
    sequential = [ocr.recognize(path, lang).text for path, lang in jobs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(lambda job: ocr.recognize(*job).text, jobs))
    assert parallel == sequential
    assert sequential[0].startswith("CORNER CAFE") and sequential[1].startswith("停车场通知")


def test_bad_image_raises_input_error_naming_the_file(ocr: TesseractOcr, tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("this is not a picture\n")
    with pytest.raises(InputError, match=r"notes\.png: not an image file: looks like a text"):
        ocr.recognize(path)


def test_unknown_language_is_a_config_error(ocr: TesseractOcr) -> None:
    with pytest.raises(ConfigError, match="unknown OCR language 'fr'"):
        ocr.recognize(sample_path("receipt_en.png"), "fr")  # type: ignore[arg-type]


def test_missing_tesseract_is_a_config_error_with_install_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", str(tmp_path / "no-such"))
    engine = TesseractOcr()
    with pytest.raises(ConfigError, match="apt-get install tesseract-ocr"):
        engine.recognize(sample_path("receipt_en.png"), "en")


def test_missing_language_pack_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TESSDATA_PREFIX", str(tmp_path))  # an empty tessdata directory
    with pytest.raises(ConfigError, match="language pack"):
        TesseractOcr().recognize(sample_path("receipt_en.png"), "en")


@pytest.fixture
def fake_tesseract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Point pytesseract at a real shell script that misbehaves as told."""

    def install(body: str) -> None:
        script = tmp_path / "tesseract"
        script.write_text(f"#!/bin/sh\n{body}\n")
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
        monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", str(script))

    return install


def test_hung_tesseract_is_killed_and_not_retried(
    fake_tesseract: Callable[[str], None],
) -> None:
    fake_tesseract("exec sleep 30")
    engine = TesseractOcr(timeout_s=1)
    with pytest.raises(PermanentError) as caught:  # a retry would time out the same way
        engine.recognize(sample_path("receipt_en.png"), "en")
    message = str(caught.value)
    assert "receipt_en.png" in message and "did not finish within 1 s" in message
    assert "560x620-pixel" in message and "crop it" in message
    assert not is_transient(caught.value)


def test_crashed_tesseract_is_a_transient_error(fake_tesseract: Callable[[str], None]) -> None:
    fake_tesseract("kill -SEGV $$")
    engine = TesseractOcr()
    with pytest.raises(TransientError, match="crashed"):
        engine.recognize(sample_path("receipt_en.png"), "en")


def test_failing_tesseract_is_a_permanent_error(fake_tesseract: Callable[[str], None]) -> None:
    fake_tesseract("echo bad input >&2; exit 1")
    engine = TesseractOcr()
    with pytest.raises(PermanentError, match=r"exit code 1.*bad input"):
        engine.recognize(sample_path("receipt_en.png"), "en")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"threads": 0}, "threads"), ({"timeout_s": 0}, "timeout"), ({"psm": 14}, "segmentation")],
)
def test_invalid_settings_are_config_errors(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TesseractOcr(**kwargs)  # type: ignore[arg-type]


# --- real-world inputs (issue 11): long scrolls, turned pages, time limits, odd names -------


def test_long_screenshot_is_read_in_bands_once_and_in_order(
    ocr: TesseractOcr, tmp_path: Path
) -> None:
    image, text = render_long_screenshot(height=6000)  # 150 lines, cut into bands
    path = tmp_path / "scroll.png"
    image.save(path)
    result = ocr.recognize(path, "auto")
    assert "bands read in parallel" in result.details["language_detection"]
    expected = text.splitlines()
    found = _lines(result)
    numbers = [int(line.split()[0]) for line in found if line.split()[0].isdigit()]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)  # once, in order
    assert len(set(found) & set(expected)) >= 0.97 * len(expected)
    last = [b for b in result.boxes if b.text == "150"]
    assert last and last[0].top > 5800  # boxes are in the original's rows


def _chat_lines_in_order(result: OcrResult, expected: str) -> None:
    """Each "Message N: text" line read whole (label and its text together), in order."""
    want = {line.split(":")[0]: line for line in expected.splitlines()}
    found = _lines(result)
    whole = [line for line in found if want.get(line.split(":")[0]) == line]
    numbers = [int(line.split(":")[0].split()[1]) for line in whole]
    assert len(whole) >= 0.97 * len(want), f"{len(whole)}/{len(want)} whole lines: {found[:6]}"
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)  # once, in order


@pytest.mark.parametrize(
    ("width", "height"),
    [(1080, 2400), (640, 4000)],  # a phone screenshot; a scroll cut into bands
)
def test_chat_screenshot_label_and_text_are_read_together_in_order(
    ocr: TesseractOcr, tmp_path: Path, width: int, height: int
) -> None:
    # Page segmentation mode 3 read the "Message N:" labels as a column of their own: all
    # labels first, then all texts.
    image, text = render_chat_screenshot(width=width, height=height)
    path = tmp_path / "chat.png"
    image.save(path)
    result = ocr.recognize(path, "auto")
    _chat_lines_in_order(result, text)
    assert result.details["psm"] == "4"
    assert ("bands" in result.details["language_detection"]) == (height > 6 * width)


@pytest.mark.slow  # the 100x30000 scroll of the issue: about 8 CPU seconds
def test_hundred_by_thirty_thousand_screenshot_reads_all_lines(
    ocr: TesseractOcr, tmp_path: Path
) -> None:
    image, text = render_long_screenshot()
    path = tmp_path / "scroll.png"
    image.save(path)
    result = TesseractOcr(timeout_s=300).recognize(path, "auto")
    assert word_recall(text, result.text) >= 0.99


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_page_turned_without_exif_is_read_upright(
    ocr: TesseractOcr, tmp_path: Path, degrees: int
) -> None:
    image, text = render_rotated_page(degrees)
    path = tmp_path / f"turned{degrees}.png"
    image.save(path)
    result = ocr.recognize(path, "en")
    assert word_recall(text, result.text) >= 0.95, result.text
    assert _lines(result)[0].startswith("The museum")  # upright: lines in reading order
    assert result.image_size == image.size
    assert _boxes_inside(result)


def test_time_limit_covers_preprocessing_and_is_not_transient(tmp_path: Path) -> None:
    image, _ = render_sign_photo(size=(1600, 1200))
    path = tmp_path / "sign.jpg"
    image.save(path, quality=85)
    with pytest.raises(PermanentError) as caught:
        TesseractOcr(timeout_s=1e-4).recognize(path, "en")  # runs out before tesseract starts
    message = str(caught.value)
    assert "sign.jpg" in message and "1600x1200-pixel" in message
    assert "stopped while estimating" in message and "crop it" in message
    assert not is_transient(caught.value)


def test_latin1_file_name_is_read(ocr: TesseractOcr, tmp_path: Path) -> None:
    raw = os.fsencode(tmp_path) + b"/re\xe7u_caf\xe9.png"  # bytes from an old zip, not UTF-8
    render_receipt()[0].save(raw.decode("utf-8", "surrogateescape"))
    path = Path(os.fsdecode(raw))
    result = ocr.recognize(path, "en")
    assert _lines(result) == list(RECEIPT_LINES)


def test_planar_16_bit_tiff_is_read(ocr: TesseractOcr, tmp_path: Path) -> None:
    import numpy as np
    import tifffile

    rgb = np.asarray(render_receipt()[0], dtype=np.uint16) * 257
    path = tmp_path / "receipt.tif"
    tifffile.imwrite(path, rgb.transpose(2, 0, 1), photometric="rgb", planarconfig="separate")
    result = ocr.recognize(path, "en")
    assert _lines(result) == list(RECEIPT_LINES)


def test_a_small_page_turned_on_its_side_is_read_without_asking_the_text_check(
    ocr: TesseractOcr, tmp_path: Path
) -> None:
    """Below CHECKED_PIXELS the extra passes are cheap: the caller's check is never asked."""
    image, text = render_rotated_page(90)
    path = tmp_path / "turned.png"
    image.save(path)

    def never() -> bool:
        raise AssertionError("the text check was asked for a small image")

    result = ocr.recognize(path, "auto", text_check=never)
    assert word_recall(text, result.text) >= 0.95, result.text
    assert "turned" in result.details["language_detection"]


@pytest.mark.slow  # a 12 MP photo read at full size: ~3 s
def test_a_text_check_that_finds_no_text_stops_the_extra_passes_on_a_big_photo(
    ocr: TesseractOcr, tmp_path: Path
) -> None:
    """Tesseract reads this text-free photo's texture as junk at 12 MP; without the check
    the chi_sim+eng, OSD and chi_sim_vert passes followed (10-15 s) and found nothing."""
    path = tmp_path / "landscape.jpg"
    render_textfree_photo(size=(4032, 3024)).save(path, quality=90)
    asked: list[bool] = []

    def no_text() -> bool:
        asked.append(False)
        return False

    result = ocr.recognize(path, "auto", text_check=no_text)
    assert asked, "the check was not asked"
    assert result.details["tesseract_lang"] == "eng"  # the first pass's read stands
    assert result.details["language_detection"].endswith("other passes skipped")
