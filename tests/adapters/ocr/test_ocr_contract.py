"""The contract every OCR engine passes: tesseract, RapidOCR and ``auto``, same tests.

Real engines on the bundled samples in ``assets/samples`` (their text is in
``expected.json``): the words read are asserted, and so are the result's units (confidence
0-1, boxes in pixels of the upright image, inside it). Bad files raise ``InputError`` naming
the file. mypy proves the classes conform (``adapters/registry.py``); these prove they behave.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from PIL import Image

from adapters.errors import InputError
from adapters.ocr.base import OcrEngine, OcrResult, WordBox
from tests.images import cjk_recall, sample_path, word_recall
from tests.support.bad_inputs import assert_names_the_file

EXPECTED = json.loads(sample_path("expected.json").read_text(encoding="utf-8"))
RECALL = {"en": word_recall, "zh": cjk_recall}


def _assert_units(result: OcrResult, image: Path) -> None:
    """Confidences on 0-1, boxes in pixels of ``image`` and inside it."""
    with Image.open(image) as img:
        assert result.image_size == img.size
    width, height = result.image_size
    assert 0.0 <= result.confidence <= 1.0
    boxes: tuple[WordBox, ...] = result.boxes + result.dropped
    for b in boxes:
        assert all(isinstance(v, int) for v in (b.left, b.top, b.width, b.height)), b
        assert b.width > 0 and b.height > 0, b
        assert b.left >= 0 and b.left + b.width <= width, (b, width)
        assert b.top >= 0 and b.top + b.height <= height, (b, height)
        assert 0.0 <= b.confidence <= 1.0 and math.isfinite(b.confidence), b
    if result.boxes:
        mean = sum(b.confidence for b in result.boxes) / len(result.boxes)
        assert result.confidence == pytest.approx(mean, abs=0.05)
    else:
        assert result.confidence == 0.0
    assert result.engine  # says which engine read it


def test_english_receipt_words_are_read_where_they_are(engine: OcrEngine) -> None:
    image = sample_path("receipt_en.png")
    result = engine.recognize(image, "auto")
    _assert_units(result, image)
    expected = EXPECTED["receipt_en.png"]
    assert result.language == "en"
    assert result.has_text
    assert word_recall(expected["text"], result.text) >= 0.95, result.text
    assert {"CORNER", "CAFE", "TOTAL", "7.20"} <= set(result.text.split())
    assert result.confidence > 0.8
    # "TOTAL" sits where the sample drew it (pixels): its box (a word for tesseract, a line
    # for RapidOCR) covers the drawn word's centre and stays within its drawn line, +-12 px
    wl, wt, ww, wh = expected["boxes"]["TOTAL"]
    ll, lt, lw, lh = expected["boxes"]["TOTAL 7.20"]
    total = [b for b in result.boxes if "TOTAL" in b.text]
    assert len(total) == 1, result.boxes
    b = total[0]
    cx, cy = wl + ww / 2, wt + wh / 2
    assert b.left <= cx <= b.left + b.width and b.top <= cy <= b.top + b.height, b
    assert b.left >= ll - 12 and b.top >= lt - 12, b
    assert b.left + b.width <= ll + lw + 12 and b.top + b.height <= lt + lh + 12, b


@pytest.mark.parametrize(
    ("name", "lang", "must_read"),
    [
        ("notice_zh.png", "auto", {"停车场"}),
        pytest.param(
            "page_uneven_light.jpg",
            "en",
            {"museum", "cloakroom", "Photography"},
            marks=pytest.mark.slow,
        ),
    ],
)
def test_sample_is_read_in_its_language(
    engine: OcrEngine, name: str, lang: str, must_read: set[str]
) -> None:
    """The Chinese notice (language detected) and the unevenly lit English page."""
    image = sample_path(name)
    result = engine.recognize(image, lang)
    _assert_units(result, image)
    expected = EXPECTED[name]
    assert result.language == expected["language"]
    assert RECALL[expected["language"]](expected["text"], result.text) >= 0.9, result.text
    assert all(word in result.text for word in must_read), result.text


def test_photo_without_text_reads_nothing_and_says_why(engine: OcrEngine) -> None:
    image = sample_path("photo_sunset.jpg")
    result = engine.recognize(image, "auto")
    _assert_units(result, image)
    assert not result.has_text, result.text
    assert result.boxes == ()
    assert result.confidence == 0.0
    assert result.details.get("no_text"), result.details


def test_bad_input_raises_input_error_naming_the_file(engine: OcrEngine, bad_image: Path) -> None:
    with pytest.raises(InputError) as caught:
        engine.recognize(bad_image, "auto")
    assert_names_the_file(caught.value, bad_image)
