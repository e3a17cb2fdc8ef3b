"""OCR preprocessing (adapters/ocr/preprocess.py) on generated images with known geometry.

The engines' tests read words; these pin the estimates the preprocessing decides with: the
glyph height that sets the working resolution, the tilt, the polarity and the deadline.
"""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from adapters.ocr.preprocess import (
    Deadline,
    estimate_glyph_height,
    estimate_skew,
    prepare,
    quantiles,
)
from tests import images as gen
from tests.images import FONT_SANS


def _page(
    cap_px: int, *, dark_mode: bool = False, size: tuple[int, int] = (900, 500)
) -> Image.Image:
    """Three lines of capitals about ``cap_px`` tall."""
    ink, paper = ((235, 235, 235), (18, 18, 18)) if dark_mode else ((20, 20, 20), (250, 250, 250))
    image = Image.new("RGB", size, paper)
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(FONT_SANS), int(cap_px / 0.72))  # cap height ~0.72 em
    for row, line in enumerate(("OPEN DAILY", "NINE TO FIVE", "CLOSED MONDAY")):
        draw.text((40, 40 + row * int(cap_px * 2.2)), line, fill=ink, font=font)
    return image


@pytest.mark.parametrize("cap_px", [14, 30, 60])
def test_glyph_height_is_the_capital_height(cap_px: int) -> None:
    gray = np.asarray(_page(cap_px).convert("L"))
    height = estimate_glyph_height(gray)
    assert height is not None and abs(height - cap_px) <= 0.25 * cap_px


def test_glyph_height_of_a_blank_or_noisy_page_is_unknown() -> None:
    assert estimate_glyph_height(np.full((300, 400), 250, np.uint8)) is None
    specks = np.full((300, 400), 250, np.uint8)
    specks[::37, ::41] = 0  # isolated dots are not glyphs
    assert estimate_glyph_height(specks) is None


@pytest.mark.parametrize("tilt", [-4.0, 0.0, 3.0])
def test_skew_is_found_to_a_few_tenths_of_a_degree(tilt: float) -> None:
    page = _page(24).rotate(tilt, expand=True, fillcolor=(250, 250, 250))
    # undoing the tilt means turning the other way
    assert estimate_skew(page) == pytest.approx(-tilt, abs=0.4)


def test_dark_mode_comes_out_dark_text_on_light() -> None:
    light, dark = prepare(_page(30)), prepare(_page(30, dark_mode=True))
    for prepared in (light, dark):
        assert np.median(prepared.image) > 200  # the ground is light
        assert (prepared.image < 100).mean() > 0.01  # and there is dark ink on it


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_every_chat_bubble_comes_out_dark_text_on_light(dark: bool) -> None:
    # White text on a blue bubble is light text on a mid-grey ground (~100): it was left as
    # it was and then divided away with the bubble's colour; grey bubbles keep black text.
    image, _text = gen.render_chat_bubbles(dark=dark)
    prepared = prepare(image)
    assert prepared.scale == 1.0
    rgb = np.asarray(image)
    fills = [(0, 122, 255), (10, 132, 255), (233, 233, 235), (38, 38, 41)]
    bubbles = []
    for fill in fills:
        inside = np.all(rgb == fill, axis=-1).astype(np.uint8)
        _n, _labels, stats, _ = cv2.connectedComponentsWithStats(inside, connectivity=4)
        bubbles += [tuple(s[:4]) for s in stats[1:] if s[cv2.CC_STAT_AREA] > 5000]
    assert len(bubbles) == len(gen.CHAT_BUBBLES)
    for left, top, width, height in bubbles:
        inner = prepared.image[top + 15 : top + height - 15, left + 30 : left + width - 30]
        assert np.median(inner) > 200, (left, top)  # the bubble's ground is light
        assert (inner < 80).mean() > 0.03, (left, top)  # and its letters dark on it


@pytest.mark.parametrize(
    ("dark", "outgoing", "size"),
    [(True, None, (540, 1200)), (True, (48, 209, 88), None), (False, (52, 199, 89), None)],
    ids=["dark-half", "dark-green", "green"],
)
def test_a_bubbles_rounded_ends_are_as_light_as_its_middle(
    dark: bool, outgoing: tuple[int, int, int] | None, size: tuple[int, int] | None
) -> None:
    # The blurred background shaded a bubble's ends grey over its first letter ("Yes",
    # "Thanks", "No" lost on a half-size dark chat); each flat panel is now its own paper.
    image, _text = gen.render_chat_bubbles(dark=dark, outgoing=outgoing)
    fill = outgoing or ((10, 132, 255) if dark else (0, 122, 255))
    if size:
        image = image.resize(size, resample=1)
    prepared = prepare(image)
    scale = prepared.scale * image.width / 1080  # prepared pixels per pixel of the 1080 chat
    rgb = np.asarray(image).astype(np.int16)
    inside = np.all(np.abs(rgb - fill) <= 2, axis=-1).astype(np.uint8)
    _n, _labels, stats, _ = cv2.connectedComponentsWithStats(inside, connectivity=4)
    bubbles = [s[:4] for s in stats[1:] if s[cv2.CC_STAT_AREA] > 5000 * (image.width / 1080) ** 2]
    assert len(bubbles) == sum(mine for mine, _ in gen.CHAT_BUBBLES)
    for left, top, _width, height in bubbles:
        x0, y0 = round(left * prepared.scale), round((top + height / 3) * prepared.scale)
        y1 = round((top + 2 * height / 3) * prepared.scale)
        # between the rounded end and the first letter (38 px in): no ink, only the bubble
        end = prepared.image[y0:y1, x0 + round(6 * scale) : x0 + round(30 * scale)]
        assert end.min() > 200, (left, top, int(end.min()))


def test_a_light_page_framed_by_a_dark_window_keeps_its_polarity() -> None:
    # The dark frame holds white captions and is inverted as one ground; the white page is
    # a hole in it, but far bigger than a letter, so it is not inverted with it.
    image = Image.new("RGB", (1000, 800), (50, 52, 58))
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(FONT_SANS), 34)
    draw.text((40, 30), "Draft notes window", font=font, fill=(240, 240, 240))
    draw.text((40, 730), "Saved two minutes ago", font=font, fill=(240, 240, 240))
    draw.rectangle((40, 100, 960, 700), fill=(255, 255, 255))
    for row, line in enumerate(("Buy milk and bread", "Call the dentist on Monday")):
        draw.text((80, 160 + 90 * row), line, font=font, fill=(0, 0, 0))
    prepared = prepare(image).image
    for top, bottom, left, right in ((20, 80, 30, 420), (150, 330, 70, 600), (720, 780, 30, 460)):
        area = prepared[top:bottom, left:right]
        assert np.median(area) > 200, (top, left)  # light ground
        assert (area < 80).mean() > 0.03, (top, left)  # dark letters


def test_big_text_is_read_at_a_smaller_working_resolution_and_maps_back() -> None:
    prepared = prepare(_page(120, size=(3000, 1400)))
    assert prepared.scale < 0.5  # capitals ~120 px tall are brought to tesseract's size
    assert prepared.to_original(0, 0, *prepared.image.shape[::-1]) == (0, 0, 3000, 1400)


@pytest.mark.parametrize("quarter_turns", [1, 2, 3])
def test_a_box_on_a_turned_page_maps_back_onto_the_original(quarter_turns: int) -> None:
    """A word's box read on the page as OSD turned it lands on that word in the file.

    A page turned 270 degrees had its boxes put off the image (height 0 at its bottom edge).
    """
    image = Image.new("L", (600, 400), 255)
    image.paste(0, (100, 50, 220, 90))  # a dark "word" at x 100-220, y 50-90
    prepared = prepare(image, normalise=False)
    assert prepared.scale == 1.0 and not prepared.angle
    turned = prepared.turned(quarter_turns)
    ys, xs = np.nonzero(turned.image < 128)
    box = (xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min())
    assert turned.to_original(*box) == (100, 50, 120, 40)


@pytest.mark.parametrize(("cap_px", "finer_needed"), [(120, False), (20, True)])
def test_a_reduced_decode_is_enough_unless_the_text_needs_more_pixels(
    cap_px: int, finer_needed: bool
) -> None:
    # What decode_image gives for a big JPEG: the image at half size, and the full size.
    full = _page(cap_px, size=(3000, 1400)).convert("L")
    half = full.resize((1500, 700), Image.Resampling.BOX)
    asked: list[float] = []

    def finer(scale: float) -> Image.Image:
        asked.append(scale)
        return full

    prepared = prepare(half, full_size=(3000, 1400), finer=finer)
    whole = prepare(full)
    assert bool(asked) == finer_needed  # 20-px capitals are read at full size
    assert prepared.scale == whole.scale
    assert prepared.image.shape == whole.image.shape
    assert prepared.original_size == (3000, 1400)
    assert prepared.to_original(0, 0, *prepared.image.shape[::-1]) == (0, 0, 3000, 1400)


@pytest.mark.parametrize("qs", [(0.5,), (0.02, 0.98), (0.005,), (0.75,)])
def test_quantiles_are_numpys_linear_quantiles(qs: tuple[float, ...]) -> None:
    rng = np.random.default_rng(7)
    for values in (rng.integers(0, 256, (101, 37), dtype=np.uint8), rng.random(1000), [3.0]):
        expected = np.atleast_1d(np.quantile(np.asarray(values, dtype=np.float64), qs))
        assert quantiles(np.asarray(values), qs) == pytest.approx(list(expected), abs=1e-9)


def test_deadline_checks_raise_once_past() -> None:
    deadline = Deadline(0.05)
    deadline.check("still in time")
    assert 0 < deadline.remaining() <= 0.05
    time.sleep(0.06)
    with pytest.raises(TimeoutError, match="too late"):
        deadline.check("too late")
