"""RapidOCR's own limits (adapters/ocr/rapidocr.py); what it reads is tested with every engine
in ``test_ocr_contract.py`` and ``test_real_world.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters import registry


def test_rapidocr_refuses_a_hairline_image_with_a_clear_error(tmp_path: Path) -> None:
    from PIL import Image

    from adapters.errors import PermanentError

    path = tmp_path / "hairline.png"
    Image.new("RGB", (40, 30000), "white").save(path)
    with pytest.raises(PermanentError, match=r"hairline\.png: RapidOCR cannot read a 40x30000"):
        registry.load("ocr", "rapidocr").recognize(path, "auto")


def test_an_image_without_text_prints_nothing(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """RapidOCR logged a coloured "The text detection result is empty" WARNING to stderr on
    every text-free image, between narrate's own lines; "no text" is in the result instead."""
    from PIL import Image

    path = tmp_path / "flat.png"
    Image.new("RGB", (800, 600), (120, 130, 140)).save(path)
    capfd.readouterr()
    result = registry.load("ocr", "rapidocr").recognize(path, "auto")
    assert result.text == "" and result.details["no_text"] == "no text found"
    out, err = capfd.readouterr()
    assert "detection result is empty" not in out + err and err == ""


def test_a_glance_reads_a_phone_photo_at_the_detectors_own_size(tmp_path: Path) -> None:
    """``short_side_px`` sets the size RapidOCR is handed, whatever the text size; the boxes
    still come back in the original's pixels."""
    from tests.images import SIGN_LINES, render_sign_photo

    image, _text = render_sign_photo(size=(2016, 1512))
    path = tmp_path / "sign.jpg"
    image.save(path, quality=90)
    result = registry.load("ocr", "rapidocr").recognize(path, "auto", short_side_px=736)
    assert result.details["read_size"] == "981x736 (glance)"
    assert [line.strip() for line in result.text.splitlines()] == list(SIGN_LINES)
    assert result.image_size == (2016, 1512)
    platform = [b for b in result.boxes if "PLATFORM" in b.text]
    assert platform and 1512 // 16 < platform[0].top < 1512 // 3, platform


def test_a_small_banner_is_read_at_its_size_and_a_price_line_is_chinese(tmp_path: Path) -> None:
    """The detector's own rule enlarged a 400x160 banner to a 736-px shorter side (0.8 s for
    0.08); "咖啡 ¥12.50" was reported English (2 CJK characters of 10; of its letters, all)."""
    from tests.images import render_banner

    image, text = render_banner("咖啡 ¥12.50")
    path = tmp_path / "price.png"
    image.save(path)
    engine = registry.load("ocr", "rapidocr")
    result = engine.recognize(path, "auto")
    assert result.text.replace(" ", "") == text.replace(" ", "")
    assert result.language == "zh"
    detector = engine._engine.text_det
    assert (detector.limit_type, detector.limit_side_len) == ("min", 736)  # restored after
    lines = engine.find_lines(path)
    assert len(lines) == 1 and lines[0].width > image.width / 2


def test_warm_up_builds_the_models_not_just_the_engine() -> None:
    """rapidocr 3 builds each ONNX session on first use: a warmed-up worker did so on its
    first image."""
    engine = registry.load("ocr", "rapidocr")
    engine.warm_up()
    loaded = engine._engine
    assert loaded.text_det is not None and loaded.text_rec is not None
    assert loaded.text_cls is not None or not loaded.use_cls
