"""Tests of the numpy/Pillow feature extractor on synthetic images with known properties."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from adapters.errors import ConfigError, InputError
from adapters.features.base import LOW_CONTRAST_RANGE, ImageFeatures
from adapters.features.numpy_pillow import (
    FEATURE_VECTOR_LENGTH,
    NumpyFeatureExtractor,
    colour_name,
    downscale,
    hamming_distance,
    text_coverage,
)
from adapters.imaging import load_image
from adapters.ocr.base import WordBox
from adapters.registry import get_class


@pytest.fixture(scope="module")
def extractor() -> NumpyFeatureExtractor:
    """One extractor shared by the tests (it holds no state)."""
    return NumpyFeatureExtractor()


def save(image: Image.Image, path: Path) -> Path:
    """Write ``image`` to ``path`` and return the path."""
    image.save(path)
    return path


def solid(tmp_path: Path, colour: tuple[int, int, int], size=(120, 80), name="solid.png") -> Path:
    """A single-colour PNG."""
    return save(Image.new("RGB", size, colour), tmp_path / name)


def scene(width: int = 640, height: int = 480) -> Image.Image:
    """A photo-like synthetic scene: a sky gradient, a sun, hills and a house."""
    y = np.linspace(0, 1, height)[:, None]
    x = np.linspace(0, 1, width)[None, :]
    sky = np.stack(
        [90 + 120 * y + 0 * x, 140 + 80 * y + 0 * x, 230 - 60 * y + 0 * x], axis=2
    ).astype(np.uint8)
    image = Image.fromarray(sky)
    draw = ImageDraw.Draw(image)
    w, h = width, height
    draw.ellipse((0.7 * w, 0.1 * h, 0.85 * w, 0.3 * h), fill=(255, 220, 60))
    draw.polygon(
        [(0, 0.7 * h), (0.4 * w, 0.5 * h), (0.8 * w, 0.75 * h), (w, 0.65 * h), (w, h), (0, h)],
        fill=(40, 130, 50),
    )
    draw.rectangle((0.15 * w, 0.55 * h, 0.35 * w, 0.8 * h), fill=(180, 60, 40))
    draw.polygon(
        [(0.12 * w, 0.55 * h), (0.25 * w, 0.4 * h), (0.38 * w, 0.55 * h)], fill=(90, 40, 30)
    )
    return image


def checkerboard(size: int = 256, square: int = 8) -> Image.Image:
    """A black-and-white checkerboard."""
    cells = (np.indices((size, size)) // square).sum(axis=0) % 2
    return Image.fromarray((cells * 255).astype(np.uint8)).convert("RGB")


def all_finite(features: ImageFeatures) -> bool:
    """True when every number in ``features`` is finite."""
    numbers = [
        features.aspect_ratio,
        features.brightness,
        features.contrast,
        features.colourfulness,
        features.sharpness,
        features.edge_density,
        features.text_coverage,
        *features.vector,
        *(c.share for c in features.dominant_colours),
    ]
    return all(math.isfinite(n) for n in numbers)


# --- interface -----------------------------------------------------------------------------


def test_is_registered() -> None:
    assert get_class("features", "numpy") is NumpyFeatureExtractor


@pytest.mark.parametrize("options", [{"n_colours": 0}, {"n_colours": 17}, {"analysis_size": 8}])
def test_rejects_bad_options(options: dict[str, int]) -> None:
    with pytest.raises(ConfigError):
        NumpyFeatureExtractor(**options)


def test_bad_files_raise_input_error_naming_the_file(tmp_path: Path, extractor) -> None:
    text = tmp_path / "notes.png"
    text.write_text("just some words, not an image\n")
    with pytest.raises(InputError, match=r"notes\.png.*not an image"):
        extractor.extract(text)
    with pytest.raises(InputError, match=r"missing\.png.*not found"):
        extractor.extract(tmp_path / "missing.png")


def test_max_pixels_is_passed_to_the_loader(tmp_path: Path) -> None:
    path = solid(tmp_path, (10, 20, 30), size=(200, 200))
    with pytest.raises(InputError, match="over the limit"):
        NumpyFeatureExtractor(max_pixels=10_000).extract(path)


# --- size and tone -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((300, 200), "landscape"),
        ((200, 300), "portrait"),
        ((200, 200), "square"),
        ((204, 200), "square"),  # within 5%
        ((200, 209), "square"),
        ((220, 200), "landscape"),
        ((200, 230), "portrait"),
    ],
)
def test_size_aspect_and_orientation(tmp_path: Path, extractor, size, expected) -> None:
    features = extractor.extract(solid(tmp_path, (200, 100, 50), size=size))
    assert (features.width, features.height) == size
    assert features.aspect_ratio == pytest.approx(size[0] / size[1])
    assert features.orientation == expected
    assert f"{size[0]}x{size[1]} {expected} image" in features.summary


def test_black_and_white_brightness(tmp_path: Path, extractor) -> None:
    black = extractor.extract(solid(tmp_path, (0, 0, 0), name="black.png"))
    white = extractor.extract(solid(tmp_path, (255, 255, 255), name="white.png"))
    assert black.brightness == pytest.approx(0.0, abs=1e-9)
    assert white.brightness == pytest.approx(1.0, abs=1e-9)
    assert black.contrast == pytest.approx(0.0, abs=1e-9)
    assert white.contrast == pytest.approx(0.0, abs=1e-9)
    assert [c.name for c in black.dominant_colours] == ["black"]
    assert [c.name for c in white.dominant_colours] == ["white"]
    assert black.layout == white.layout == "blank"
    assert "uniformly white" in white.summary and "blank" in white.summary


def test_half_black_half_white_has_contrast_one_half(tmp_path: Path, extractor) -> None:
    array = np.zeros((100, 200, 3), dtype=np.uint8)
    array[:, 100:] = 255
    features = extractor.extract(save(Image.fromarray(array), tmp_path / "half.png"))
    assert features.contrast == pytest.approx(0.5, abs=1e-6)
    assert features.brightness == pytest.approx(0.5, abs=1e-6)
    shares = {c.name: c.share for c in features.dominant_colours}
    assert shares == pytest.approx({"black": 0.5, "white": 0.5}, abs=0.02)
    assert features.layout == "picture"
    assert "high-contrast" in features.summary


# --- colour --------------------------------------------------------------------------------


def test_pure_red_image(tmp_path: Path, extractor) -> None:
    features = extractor.extract(solid(tmp_path, (255, 0, 0)))
    (colour,) = features.dominant_colours
    assert colour.hex == "#ff0000"
    assert colour.name == "red"
    assert colour.share == pytest.approx(1.0)
    # Hasler-Suesstrunk of pure red: sigma 0, mu = |(255, 127.5)|, times 0.3
    assert features.colourfulness == pytest.approx(0.3 * math.hypot(255, 127.5))
    assert "almost uniformly red" in features.summary


def test_grey_is_not_colourful_and_a_saturated_image_is(tmp_path: Path, extractor) -> None:
    grey = extractor.extract(solid(tmp_path, (128, 128, 128), name="grey.png"))
    stripes = np.zeros((120, 240, 3), dtype=np.uint8)
    for index, colour in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]):
        stripes[:, index * 60 : (index + 1) * 60] = colour
    vivid = extractor.extract(save(Image.fromarray(stripes), tmp_path / "stripes.png"))
    assert grey.colourfulness == pytest.approx(0.0, abs=1e-9)
    assert vivid.colourfulness > 100
    assert grey.dominant_colours[0].name == "grey"
    assert "greyscale" not in vivid.summary and "vivid colours" in vivid.summary


def test_quadrants_give_four_colours_with_their_shares(tmp_path: Path, extractor) -> None:
    array = np.zeros((200, 200, 3), dtype=np.uint8)
    array[:100, :100] = (255, 0, 0)
    array[:100, 100:] = (0, 100, 0)
    array[100:, :100] = (0, 0, 140)
    array[100:, 100:] = (255, 255, 255)
    features = extractor.extract(save(Image.fromarray(array), tmp_path / "quads.png"))
    found = {c.name: c for c in features.dominant_colours}
    assert set(found) == {"red", "dark green", "dark blue", "white"}
    assert all(c.share == pytest.approx(0.25, abs=0.01) for c in found.values())
    assert found["dark blue"].hex == "#00008c"
    assert sum(c.share for c in features.dominant_colours) == pytest.approx(1.0)
    shares = [c.share for c in features.dominant_colours]
    assert shares == sorted(shares, reverse=True)


def test_n_colours_caps_the_palette(tmp_path: Path) -> None:
    palette = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 0, 0), (255, 255, 255)]
    array = np.zeros((60, 360, 3), dtype=np.uint8)
    for index, colour in enumerate(palette):
        array[:, index * 60 : (index + 1) * 60] = colour
    path = save(Image.fromarray(array), tmp_path / "six.png")
    assert len(NumpyFeatureExtractor(n_colours=3).extract(path).dominant_colours) <= 3
    names = {c.name for c in NumpyFeatureExtractor(n_colours=6).extract(path).dominant_colours}
    assert names == {"red", "green", "blue", "yellow", "black", "white"}


@pytest.mark.parametrize(
    ("rgb", "name"),
    [
        ((255, 0, 0), "red"),
        ((0, 255, 0), "green"),
        ((0, 0, 255), "blue"),
        ((255, 255, 0), "yellow"),
        ((0, 255, 255), "cyan"),
        ((255, 0, 255), "magenta"),
        ((255, 128, 0), "orange"),
        ((255, 255, 255), "white"),
        ((0, 0, 0), "black"),
        ((128, 128, 128), "grey"),
        ((64, 64, 64), "dark grey"),
        ((200, 200, 200), "light grey"),
        ((0, 0, 128), "dark blue"),
        ((173, 216, 230), "light blue"),
        ((144, 238, 144), "light green"),
        ((0, 100, 0), "dark green"),
        ((139, 69, 19), "brown"),
        ((255, 192, 203), "pink"),
        ((128, 0, 128), "purple"),
        ((128, 128, 0), "olive"),
        ((0, 128, 128), "teal"),
        ((128, 0, 0), "dark red"),
    ],
)
def test_colour_names(rgb: tuple[int, int, int], name: str) -> None:
    assert colour_name(*rgb) == name


# --- sharpness and edges -------------------------------------------------------------------


def test_sharp_image_beats_its_blurred_copy(tmp_path: Path, extractor) -> None:
    sharp_image = checkerboard()
    sharp = extractor.extract(save(sharp_image, tmp_path / "sharp.png"))
    blurred_image = sharp_image.filter(ImageFilter.GaussianBlur(4))
    blurred = extractor.extract(save(blurred_image, tmp_path / "blurred.png"))
    assert sharp.sharpness > 10 * blurred.sharpness
    assert sharp.edge_density > 0.3
    assert blurred.edge_density < 0.05
    assert "sharp" in sharp.summary and "little fine detail" in blurred.summary


def test_sharpness_is_comparable_across_sizes(tmp_path: Path, extractor) -> None:
    big = scene(800, 600)  # analysed at 512 x 384, then 256 x 192
    small = big.resize((400, 300), Image.Resampling.LANCZOS)  # analysed as is, then 256 x 192
    a = extractor.extract(save(big, tmp_path / "big.png"))
    b = extractor.extract(save(small, tmp_path / "small.png"))
    assert a.sharpness == pytest.approx(b.sharpness, rel=0.2)
    assert a.edge_density == pytest.approx(b.edge_density, rel=0.2, abs=0.005)


# --- text ----------------------------------------------------------------------------------


def box(left: int, top: int, width: int, height: int, text: str = "word") -> WordBox:
    """A word box with a fixed confidence."""
    return WordBox(text=text, left=left, top=top, width=width, height=height, confidence=0.9)


def test_text_coverage_counts_overlaps_once_and_clips() -> None:
    boxes = [
        box(0, 0, 50, 20),
        box(25, 10, 50, 20),  # overlaps the first by 25 x 10
        box(190, 90, 30, 30),  # only 10 x 10 inside a 200 x 100 image
        box(10, 10, 0, 5),  # empty
        box(-20, 50, 30, 10),  # 10 x 10 inside
    ]
    union = 50 * 20 + 50 * 20 - 25 * 10 + 10 * 10 + 10 * 10
    assert text_coverage(boxes, 200, 100) == pytest.approx(union / 20_000, rel=1e-12)
    assert text_coverage([box(0, 0, 200, 100), box(0, 0, 200, 100)], 200, 100) == 1.0
    assert text_coverage([box(-50, -50, 1000, 1000)], 200, 100) == 1.0
    assert text_coverage([], 200, 100) == 0.0


def render_words(image: Image.Image, lines: list[str], at: tuple[int, int]) -> list[WordBox]:
    """Draw ``lines`` of black words on ``image`` and return a box per word."""
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=28)
    boxes = []
    x0, y = at
    for line in lines:
        x = x0
        for word in line.split():
            left, top, right, bottom = draw.textbbox((x, y), word, font=font)
            draw.text((x, y), word, font=font, fill=(0, 0, 0))
            boxes.append(box(left, top, right - left, bottom - top, word))
            x = right + 14
        y += 44
    return boxes


def test_layout_text_heavy_text_and_picture_and_picture(tmp_path: Path, extractor) -> None:
    lines = ["Corner cafe open daily", "Flat white 3.50", "Croissant 2.20", "Thank you"]
    page = Image.new("RGB", (480, 240), (250, 250, 245))
    page_boxes = render_words(page, lines, (20, 20))
    document = extractor.extract(save(page, tmp_path / "page.png"), page_boxes)
    assert 0.1 < document.text_coverage < 0.5
    assert document.layout == "text-heavy"
    assert f"text covers about {round(document.text_coverage * 100)}% of it" in document.summary
    assert "(text-heavy)" in document.summary

    poster = scene(640, 480)
    poster_boxes = render_words(poster, ["Summer fair"], (20, 420))
    mixed = extractor.extract(save(poster, tmp_path / "poster.png"), poster_boxes)
    assert 0 < mixed.text_coverage < 0.05
    assert mixed.layout == "text and picture"

    picture = extractor.extract(save(scene(640, 480), tmp_path / "scene.png"))
    assert picture.text_coverage == 0.0
    assert picture.layout == "picture"
    assert "no text detected (picture)" in picture.summary


# --- perceptual hash -----------------------------------------------------------------------


def test_phash_survives_resizing_and_jpeg_but_separates_images(tmp_path: Path, extractor) -> None:
    original = scene(640, 480)
    copy = tmp_path / "copy.jpg"
    original.resize((320, 240), Image.Resampling.BILINEAR).save(copy, quality=60)
    a = extractor.extract(save(original, tmp_path / "original.png")).phash
    b = extractor.extract(copy).phash
    other = extractor.extract(save(checkerboard(256, 32), tmp_path / "other.png")).phash
    assert len(a) == 16 and int(a, 16) >= 0
    assert hamming_distance(a, b) <= 4
    assert hamming_distance(a, other) >= 16


def test_hamming_distance() -> None:
    assert hamming_distance("0" * 16, "f" * 16) == 64
    assert hamming_distance("00000000000000f1", "0000000000000001") == 4
    assert hamming_distance("abc", "abc") == 0
    with pytest.raises(ValueError, match="length"):
        hamming_distance("00", "000")
    with pytest.raises(ValueError, match="hex"):
        hamming_distance("zz", "00")


# --- vector --------------------------------------------------------------------------------


def cosine(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Cosine similarity of two unit vectors."""
    return float(np.dot(a, b))


def test_vector_is_fixed_length_unit_norm_deterministic_and_meaningful(
    tmp_path: Path, extractor
) -> None:
    original = save(scene(640, 480), tmp_path / "scene.png")
    resized = save(scene(640, 480).resize((400, 300)), tmp_path / "resized.png")
    different = save(checkerboard(300, 10), tmp_path / "checks.png")
    tiny = solid(tmp_path, (10, 200, 30), size=(1, 1), name="tiny.png")
    vectors = [extractor.extract(p).vector for p in (original, resized, different, tiny)]
    assert FEATURE_VECTOR_LENGTH == 64
    for vector in vectors:
        assert len(vector) == FEATURE_VECTOR_LENGTH
        assert all(math.isfinite(v) for v in vector)
        assert float(np.linalg.norm(vector)) == pytest.approx(1.0)
    assert extractor.extract(original).vector == vectors[0]
    assert cosine(vectors[0], vectors[1]) > 0.98
    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2]) + 0.2


# --- awkward images ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "layout"),
    [((1, 1), "blank"), ((2, 2), None), ((4000, 1), None), ((1, 4000), None), ((3000, 7), None)],
)
def test_tiny_and_extreme_images_give_finite_features(
    tmp_path: Path, extractor, size, layout
) -> None:
    rng = np.random.default_rng(7)
    array = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    if size == (1, 1):
        array[:] = (30, 60, 90)
    features = extractor.extract(save(Image.fromarray(array), tmp_path / "odd.png"))
    assert (features.width, features.height) == size
    assert all_finite(features)
    assert len(features.vector) == FEATURE_VECTOR_LENGTH
    assert len(features.phash) == 16
    assert features.dominant_colours and features.summary
    if layout:
        assert features.layout == layout


def test_uniform_image_is_finite_and_blank(tmp_path: Path, extractor) -> None:
    features = extractor.extract(solid(tmp_path, (77, 77, 200), size=(640, 480)))
    assert all_finite(features)
    assert features.sharpness == 0.0 and features.edge_density == 0.0
    assert features.colourfulness > 0
    assert features.layout == "blank"
    assert features.phash == extractor.extract(solid(tmp_path, (10, 10, 10), name="b.png")).phash


def test_sixteen_bit_cmyk_rgba_and_palette_files(tmp_path: Path, extractor) -> None:
    sixteen = Image.fromarray(np.full((40, 60), 65535, dtype=np.uint16))
    assert sixteen.mode.startswith("I")
    white = extractor.extract(save(sixteen, tmp_path / "deep.png"))
    assert white.brightness == pytest.approx(1.0, abs=0.01)

    cmyk = Image.new("CMYK", (60, 40), (0, 255, 255, 0))
    red = extractor.extract(save(cmyk, tmp_path / "cmyk.jpg"))
    assert red.dominant_colours[0].name == "red"

    rgba = Image.new("RGBA", (60, 40), (0, 0, 255, 255))
    rgba.paste((255, 0, 0, 0), (0, 0, 30, 40))  # left half fully transparent: shows white
    mixed = extractor.extract(save(rgba, tmp_path / "alpha.png"))
    assert {c.name for c in mixed.dominant_colours} == {"white", "blue"}

    palette = Image.new("RGB", (60, 40), (0, 200, 0)).convert("P", palette=Image.Palette.ADAPTIVE)
    green = extractor.extract(save(palette, tmp_path / "pal.gif"))
    assert green.dominant_colours[0].name == "green"


# --- downsampling --------------------------------------------------------------------------


def test_downscale_caps_the_longest_side_and_never_enlarges() -> None:
    assert downscale(Image.new("RGB", (3000, 2000)), 512).size == (512, 341)
    assert downscale(Image.new("RGB", (20000, 3)), 512).size == (512, 1)
    small = Image.new("RGB", (100, 50))
    assert downscale(small, 512) is small


def test_large_image_is_measured_on_its_downsample(tmp_path: Path) -> None:
    big = scene(2048, 1536)
    big_path = save(big, tmp_path / "big.png")
    small_path = save(downscale(big, 256), tmp_path / "small.png")
    extractor = NumpyFeatureExtractor(analysis_size=256)
    a = extractor.extract(big_path)
    b = extractor.extract(small_path)
    assert (a.width, a.height) == (2048, 1536)
    # the big image's analysis copy IS the small image: same measurements
    assert a.brightness == pytest.approx(b.brightness, abs=1e-6)
    assert a.contrast == pytest.approx(b.contrast, abs=1e-6)
    assert a.colourfulness == pytest.approx(b.colourfulness, abs=1e-6)
    assert a.sharpness == pytest.approx(b.sharpness, rel=1e-6)
    assert a.phash == b.phash
    assert a.dominant_colours == b.dominant_colours


def test_big_jpeg_decoded_reduced_measures_like_the_full_decode(tmp_path: Path) -> None:
    # A 4032x3024 phone-size JPEG is decoded at 1/4 (DCT scaling) before the 512-px
    # analysis copy is made; the features must match those of the whole decoded image.
    rng = np.random.default_rng(5)
    noisy = np.asarray(scene(4032, 3024), dtype=np.int16) + rng.normal(0, 6, (3024, 4032, 3))
    path = tmp_path / "phone.jpg"
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(path, quality=90)
    boxes = (WordBox("HOUSE", 600, 1650, 800, 300, 0.9),)
    extractor = NumpyFeatureExtractor()
    full = extractor.extract_from_image(load_image(path), boxes)
    reduced = extractor.extract(path, boxes)
    assert (reduced.width, reduced.height) == (4032, 3024)
    assert reduced.text_coverage == full.text_coverage
    assert reduced.layout == full.layout
    assert reduced.brightness == pytest.approx(full.brightness, abs=0.005)
    assert reduced.contrast == pytest.approx(full.contrast, abs=0.005)
    assert reduced.colourfulness == pytest.approx(full.colourfulness, rel=0.02)
    assert reduced.sharpness == pytest.approx(full.sharpness, rel=0.05)
    assert reduced.edge_density == pytest.approx(full.edge_density, abs=0.01)
    assert hamming_distance(reduced.phash, full.phash) <= 2
    assert [c.name for c in reduced.dominant_colours[:3]] == [
        c.name for c in full.dominant_colours[:3]
    ]
    assert float(np.dot(reduced.vector, full.vector)) > 0.999


def test_prefetch_is_reused_once_for_the_same_unchanged_file(tmp_path: Path) -> None:
    path = save(scene(800, 600), tmp_path / "scene.png")
    boxes = (WordBox("SIGN", 100, 100, 300, 80, 0.9),)
    extractor = NumpyFeatureExtractor()
    expected = NumpyFeatureExtractor().extract(path, boxes)
    measure = extractor.prefetch(path)
    assert len(extractor._prefetched) == 1
    measure()  # as on the second thread
    assert extractor.extract(path, boxes) == expected  # the text part is added to it
    assert not extractor._prefetched  # used once, then dropped
    extractor.prefetch(path)  # never run: extract measures itself
    assert extractor.extract(path, boxes) == expected
    extractor.prefetch(path)
    save(checkerboard(), path)  # the file changes after the prefetch
    fresh = extractor.extract(path)
    assert (fresh.width, fresh.height) == (256, 256)


def test_prefetch_of_a_bad_file_fails_in_extract_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("not an image")
    extractor = NumpyFeatureExtractor()
    extractor.prefetch(path)()  # records the failure, raises nothing
    with pytest.raises(InputError, match=r"notes\.png"):
        extractor.extract(path)
    extractor.prefetch(tmp_path / "missing.png")  # nothing to measure: extract will say so
    with pytest.raises(InputError, match=r"missing\.png"):
        extractor.extract(tmp_path / "missing.png")


def test_dark_text_on_white_and_dark_mode_are_not_called_low_contrast(
    tmp_path: Path, extractor: NumpyFeatureExtractor
) -> None:
    """RMS contrast is low on both (the paper or the dark ground dominates); the luma range
    is what tells them from a faint grey-on-grey image."""
    from assets import SAMPLES_DIR
    from tests.images import FONT_SANS, _font, render_dark_screenshot

    render_dark_screenshot()[0].save(tmp_path / "dark.png")
    faint = Image.new("RGB", (800, 400), (140, 140, 140))
    for row in range(4):  # faint lines, as in fog: a picture, not a blank page
        ImageDraw.Draw(faint).text(
            (40, 30 + 90 * row),
            "Faint text on grey fog",
            font=_font(FONT_SANS, 60),
            fill=(175,) * 3,
        )
    faint.save(tmp_path / "faint.png")
    for path in (SAMPLES_DIR / "receipt_en.png", tmp_path / "dark.png"):
        features = extractor.extract(path)
        assert features.luma_range > 0.6, (path.name, features.luma_range)
        assert "low-contrast" not in features.summary, (path.name, features.summary)
    dark = extractor.extract(tmp_path / "dark.png")
    assert dark.contrast < 0.1  # what alone made it "low-contrast" before
    features = extractor.extract(tmp_path / "faint.png")
    assert features.luma_range < LOW_CONTRAST_RANGE, features.luma_range
    assert "low-contrast" in features.summary, features.summary
