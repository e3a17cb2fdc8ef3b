"""The contract every feature extractor passes (today numpy/Pillow), on the bundled samples.

Real images from ``assets/samples`` with their known text boxes (``expected.json``): sizes in
pixels, ratios in 0-1, the text coverage the boxes give, a picture told from a text page,
the vector and hash shapes; bad files raise ``InputError`` naming the file. mypy proves the
classes conform (``adapters/registry.py``); these prove they behave. A new extractor joins by
adding its registry name to ``ENGINES``.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from PIL import Image

from adapters import registry
from adapters.errors import InputError
from adapters.features.base import FeatureExtractor, ImageFeatures
from adapters.ocr.base import WordBox
from tests.images import sample_path
from tests.support.bad_inputs import assert_names_the_file

ENGINES = ("numpy",)
EXPECTED = json.loads(sample_path("expected.json").read_text(encoding="utf-8"))
TEXT_SAMPLES = ("receipt_en.png", "notice_zh.png", "page_uneven_light.jpg")


@pytest.fixture(scope="module", params=ENGINES)
def extractor(request: pytest.FixtureRequest) -> FeatureExtractor:
    return registry.load("features", str(request.param))


def line_boxes(name: str) -> list[WordBox]:
    """The sample's drawn text lines as boxes (pixels); they do not overlap."""
    lines = EXPECTED[name]["text"].splitlines()
    return [WordBox(t, *EXPECTED[name]["boxes"][t], confidence=0.9) for t in lines]


def assert_units(f: ImageFeatures, image: Path) -> None:
    """Sizes are the image's pixels, ratios 0-1, vector unit length, hash 64 bits."""
    with Image.open(image) as img:
        assert (f.width, f.height) == img.size
    assert f.aspect_ratio == pytest.approx(f.width / f.height)
    expected_orientation = "landscape" if f.width > f.height else "portrait"
    assert f.orientation == expected_orientation
    for ratio in (f.brightness, f.contrast, f.edge_density, f.text_coverage):
        assert 0.0 <= ratio <= 1.0
    assert f.colourfulness >= 0 and f.sharpness >= 0
    assert f.dominant_colours and sum(c.share for c in f.dominant_colours) <= 1.0 + 1e-6
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c.hex) and c.name for c in f.dominant_colours)
    assert re.fullmatch(r"[0-9a-f]{16}", f.phash)
    assert math.sqrt(sum(v * v for v in f.vector)) == pytest.approx(1.0, abs=1e-6)
    assert f"{f.width}x{f.height}" in f.summary


@pytest.mark.parametrize("name", TEXT_SAMPLES)
def test_text_samples_are_text_heavy_with_the_coverage_their_boxes_give(
    extractor: FeatureExtractor, name: str
) -> None:
    image = sample_path(name)
    boxes = line_boxes(name)
    f = extractor.extract(image, boxes)
    assert_units(f, image)
    covered = sum(b.width * b.height for b in boxes) / (f.width * f.height)
    assert f.text_coverage == pytest.approx(covered, abs=0.01)
    assert f.layout == "text-heavy"
    assert f"{round(covered * 100)}%" in f.summary


def test_photo_is_a_colourful_picture_without_text(extractor: FeatureExtractor) -> None:
    image = sample_path("photo_sunset.jpg")
    f = extractor.extract(image)
    assert_units(f, image)
    assert f.text_coverage == 0.0
    assert f.layout == "picture"
    assert "no text" in f.summary
    # a sunset is far more colourful than a black-on-white receipt
    receipt = extractor.extract(sample_path("receipt_en.png"), line_boxes("receipt_en.png"))
    assert f.colourfulness > 5 * receipt.colourfulness
    assert {"orange", "red"} & {c.name for c in f.dominant_colours}
    assert receipt.dominant_colours[0].name == "white"
    assert len(f.vector) == len(receipt.vector) and f.phash != receipt.phash


def test_same_image_gives_the_same_features(extractor: FeatureExtractor, tmp_path: Path) -> None:
    copy = tmp_path / "copy.png"
    copy.write_bytes(sample_path("receipt_en.png").read_bytes())
    a = extractor.extract(sample_path("receipt_en.png"))
    b = extractor.extract(copy)
    assert a == b


def test_bad_input_raises_input_error_naming_the_file(
    extractor: FeatureExtractor, bad_image: Path
) -> None:
    with pytest.raises(InputError) as caught:
        extractor.extract(bad_image)
    assert_names_the_file(caught.value, bad_image)
