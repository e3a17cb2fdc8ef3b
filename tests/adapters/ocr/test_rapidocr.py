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
