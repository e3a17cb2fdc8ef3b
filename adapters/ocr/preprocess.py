"""Preparing a photo or screenshot for OCR with OpenCV, at a cost near-linear in pixels.

``prepare(rgb)`` returns the grayscale image an OCR engine should read and how to map its
pixels back to the original. Every estimate is made on a small copy (about 0.75 megapixels)
and only one resize makes the working image (inversion and division run at the working
resolution); a big JPEG is decoded at 1/2-1/8 of its size by DCT scaling (the caller's
``adapters.imaging.decode_image``), so a 12-megapixel photo costs ~0.1 s of CPU here:

1. **polarity**: a median filter of the small copy (wider than a text line) gives the ground
   around each pixel; where pixels well above it (light strokes) outnumber pixels well below
   it (dark strokes), the region holds light text on a dark ground (dark mode, a dark sign)
   and is inverted, the whole image when that holds for the image as a whole. Regions are
   boxes of a few windows, and also each flat ground on its own (a panel, a chat bubble,
   cut out where the median steps), grown to its edges: white text on a blue bubble is
   light on a mid-grey ground (~100) beside black text on white, which no box of mixed
   evidence finds;
2. **background**: that ground, inverted with the text, is the paper's brightness, blurred;
   a flat panel's paper (a bubble, a header bar, a settings group: a ground the median
   keeps flat between its steps) is its own level, out to its edge, as blurring across the
   edge shades the panel's rim. When the paper varies (uneven light, shadow, panels) the
   image is divided by it, scaled up to the working size, and the paper is clamped to white
   below its noise level;
3. **working resolution**: the upper-quartile height of the ink's glyph-like connected
   components on the small copy gives the text size (about a capital's height);
   tesseract reads best with capitals about 20-40 px tall, so big text (over 48 px) is
   downscaled to 24 px (a phone photo shrinks ~5x: fewer pixels for tesseract, as sure a
   read on the benchmark's photos; 20 px made it unsure) and small text (under 10 px)
   upscaled to 28 px (at most 4x and 40 megapixels);
4. optional **deskew** by a projection-profile search over small angles.

OpenCV (``opencv-python-headless``) does the resizing, morphology and arithmetic: it is the
field's library for this, runs in milliseconds at these sizes and releases the GIL, so OCR
calls on threads run in parallel. Source of the text-size rule: tesseract's documentation,
"Improving the quality of the output" (tesseract-ocr.github.io/tessdoc/ImproveQuality).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np
from PIL import Image

ANALYSIS_PIXELS = 750_000  # the small copy every estimate is made on
SMALL_TEXT_PX = 10.0  # glyph height (upper quartile: ~capitals) below which text is upscaled
LARGE_TEXT_PX = 48.0  # ... above which it is downscaled
TARGET_TEXT_PX = 28.0  # the glyph height aimed at when upscaling
DOWNSCALE_TARGET_TEXT_PX = 24.0  # ... when downscaling: fewer pixels, as sure a read (bench)
MAX_UPSCALE = 4.0
UPSCALE_PIXEL_BUDGET = 40_000_000
EVEN_LIGHT_RATIO = 0.75  # darkest/brightest paper above this: lighting is even enough
POLARITY_MARGIN = 1.5  # light-stroke evidence must beat dark-stroke evidence by this factor
# Share of the analysis copy's pixels that must stand off their ground (strokes, texture)
# for the light to be evened out: 0 on a sky or a smooth gradient, 0.5-12% on text and
# textured photos (bench/README.md, session 7).
NO_INK_SHARE = 1e-4
MAX_STROKE_DEPTH_PX = 2.0  # light strokes on a panel: their mean half-width, at least
PANEL_MIN_LEVEL = 64  # a flat panel darker than this, once inverted, is ink, not paper
REGION_EVIDENCE = 0.03  # share of light-stroke pixels a region needs to be inverted alone


class Deadline:
    """A point in time work must finish by; ``check`` raises ``TimeoutError`` past it."""

    def __init__(self, seconds: float) -> None:
        """Start the clock: ``seconds`` from now."""
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        """Seconds left (<= 0 when past)."""
        return self.at - time.monotonic()

    def check(self, what: str) -> None:
        """Raise ``TimeoutError(what)`` when the deadline has passed."""
        if self.remaining() <= 0:
            raise TimeoutError(what)


@dataclass(frozen=True)
class Prepared:
    """The image handed to OCR and how to map its pixels back to the original.

    Transform, in order: rotate by ``angle`` degrees counter-clockwise about the centre
    (expanding to ``rotated_size``), scale by ``scale``, turn ``quarter_turns`` times 90
    degrees counter-clockwise (``np.rot90``).
    """

    image: np.ndarray  # uint8, 2-D: dark text on a light ground
    original_size: tuple[int, int]  # (width, height) of the original image
    angle: float = 0.0
    rotated_size: tuple[int, int] = (0, 0)
    scale: float = 1.0
    quarter_turns: int = 0
    steps: tuple[str, ...] = ()
    text_height_px: float | None = None  # glyph height (~capitals) in original pixels

    def turned(self, quarter_turns: int) -> Prepared:
        """This image turned ``quarter_turns`` x 90 degrees counter-clockwise more."""
        k = quarter_turns % 4
        if k == 0:
            return self
        return replace(
            self,
            image=np.ascontiguousarray(np.rot90(self.image, k)),
            quarter_turns=(self.quarter_turns + k) % 4,
            steps=(*self.steps, f"turned {90 * k} deg"),
        )

    def crop_rows(self, top: int, bottom: int) -> np.ndarray:
        """Rows ``top``..``bottom`` of the prepared image (a band of a long image)."""
        return self.image[top:bottom]

    def to_original(
        self, left: float, top: float, width: float, height: float
    ) -> tuple[int, int, int, int]:
        """Map a box of the prepared image to a box of the original image, clipped to it."""
        xs = np.array([left, left + width, left, left + width], dtype=np.float64)
        ys = np.array([top, top, top + height, top + height], dtype=np.float64)
        h_img, w_img = self.image.shape[:2]
        for _ in range(self.quarter_turns):  # undo one 90-degree counter-clockwise turn
            # np.rot90 puts the point (x, y) of a W-wide image at (y, W - x): W is the turned
            # image's height (it was the width here, which put a turned page's boxes off it)
            xs, ys = h_img - ys, xs
            w_img, h_img = h_img, w_img
        xs, ys = xs / self.scale, ys / self.scale
        if self.angle:
            theta = math.radians(self.angle)
            cx, cy = self.rotated_size[0] / 2, self.rotated_size[1] / 2
            ox, oy = self.original_size[0] / 2, self.original_size[1] / 2
            dx, dy = xs - cx, ys - cy
            xs = dx * math.cos(theta) - dy * math.sin(theta) + ox
            ys = dx * math.sin(theta) + dy * math.cos(theta) + oy
        w, h = self.original_size
        x0 = int(np.clip(math.floor(xs.min()), 0, w))
        y0 = int(np.clip(math.floor(ys.min()), 0, h))
        x1 = int(np.clip(math.ceil(xs.max()), 0, w))
        y1 = int(np.clip(math.ceil(ys.max()), 0, h))
        return x0, y0, x1 - x0, y1 - y0


def prepare(
    rgb: Image.Image,
    *,
    normalise: bool = True,
    deskew: bool = False,
    deadline: Deadline | None = None,
    full_size: tuple[int, int] | None = None,
    finer: Callable[[float], Image.Image] | None = None,
) -> Prepared:
    """Grayscale, fix polarity, even out the light, rescale to the text size, deskew.

    ``rgb`` may be a reduced decode of the image (a JPEG decoded at 1/2 by DCT scaling,
    ``adapters.imaging.decode_image``): the estimates need only ``ANALYSIS_PIXELS``, and
    when the working resolution is no finer than ``rgb`` it is made from ``rgb`` alone, so
    a 12-megapixel photo is never decoded whole. When it is finer, ``finer(scale)`` gives
    the image decoded at ``scale`` or more of the full size.

    Args:
        rgb: the upright image (any Pillow mode; converted to grayscale).
        normalise: False hands the grayscale image on as it is (no other step).
        deskew: search and undo a tilt of up to 10 degrees.
        deadline: raises ``TimeoutError`` between steps once it has passed.
        full_size: (width, height) of the whole image when ``rgb`` is a reduced decode of
            it (default: ``rgb.size``); the result maps to these pixels.
        finer: decodes the image at a given scale or more (1 = whole), for a working
            resolution finer than ``rgb``; without it ``rgb`` is upscaled.

    Returns:
        The prepared image (uint8, dark text on light) and its mapping to the original.

    Raises:
        TimeoutError: ``deadline`` passed during preparation.
    """
    gray = np.asarray(rgb if rgb.mode == "L" else rgb.convert("L"))
    width, height = full_size or rgb.size
    decoded = gray.shape[1] / width  # 1, or the reduction of a reduced decode
    steps = ["grayscale"]
    if not normalise:
        full = _at_scale(gray, decoded, 1.0, (width, height), finer)
        return Prepared(full, (width, height), rotated_size=(width, height), steps=tuple(steps))
    factor = min(decoded, math.sqrt(ANALYSIS_PIXELS / max(1, width * height)))
    small = _resize(gray, factor / decoded)
    if deadline:
        deadline.check("estimating the background")

    k = min(255, _odd(max(31, round(math.sqrt(small.size) / 15))))
    ground = cv2.medianBlur(small, k)  # the majority around each pixel: text removed
    sigma = _noise_sigma(small)  # 0 when most pixels lie in exactly flat areas: a screen
    noise = max(12.0, 3.0 * sigma)  # grey levels a stroke stands off its ground
    # No pixel stands off its ground by more than the noise: no strokes, nothing to even out
    # (a sky, a smooth gradient). Evened out, its noise became 12 MP of speckle that
    # tesseract's layout analysis took 25-44 s over (plain tesseract: 0.7 s).
    inked = np.count_nonzero(cv2.absdiff(small, ground) > noise) >= NO_INK_SHARE * small.size
    light_text = _light_text_mask(small, ground, noise, k)
    inverted_share = float(light_text.mean())
    if inverted_share > 0:
        small = np.where(light_text, 255 - small, small).astype(np.uint8)
        if inverted_share > 0.9:
            ground = np.where(light_text, 255 - ground, ground).astype(np.uint8)
        else:  # an inverted region ends at its panel's edge, not where the median's did
            ground = cv2.medianBlur(small, k)
        steps.append(
            "inverted (light text on dark)"
            if inverted_share > 0.9
            else f"inverted light-on-dark regions ({inverted_share:.0%})"
        )
    paper_small = cv2.GaussianBlur(ground, (0, 0), max(1.0, k / 6))
    low, high = quantiles(paper_small, (0.02, 0.98))
    uneven = inked and high > 0 and low / high < EVEN_LIGHT_RATIO
    # Where the image is divided, or panels were inverted on their own, a flat panel's paper
    # is its own level, out to its edge. Panels are exactly flat only on a rendered screen
    # (``sigma`` 0): a photo's flat-looking patches (sky, a blown highlight) keep the
    # blurred ground (papered, the sunset photo's text-size estimate changed and a
    # text-free photo cost 6x the CPU). An even screen read whole is left as it was.
    if sigma == 0 and (uneven or 0 < inverted_share <= 0.9):
        panel_paper = _panel_paper(small, ground, noise, k)
        paper_small = np.where(panel_paper > 0, panel_paper, paper_small)
        low, high = quantiles(paper_small, (0.02, 0.98))
        uneven = inked and high > 0 and low / high < EVEN_LIGHT_RATIO
    if deadline:
        deadline.check("estimating the text size")

    ratio_small = _divide(small, paper_small) if uneven else small.astype(np.float32) / 255
    text_px_small = estimate_glyph_height(ratio_small)
    text_px = None if text_px_small is None else text_px_small / factor
    scale = _working_scale(text_px, width, height)

    work = _at_scale(gray, decoded, scale, (width, height), finer)
    if inverted_share > 0:
        mask = cv2.resize(
            light_text.astype(np.uint8),
            (work.shape[1], work.shape[0]),
            interpolation=cv2.INTER_NEAREST,
        ).astype(bool)
        work = np.where(mask, 255 - work, work).astype(np.uint8)
    if uneven:
        paper = cv2.resize(
            paper_small, (work.shape[1], work.shape[0]), interpolation=cv2.INTER_LINEAR
        )
        work = _stretch(_divide(cv2.GaussianBlur(work, (0, 0), 0.7), paper))
        steps.append("illumination normalised")
    if scale != 1.0:
        what = "downscaled" if scale < 1 else "upscaled"
        steps.append(f"{what} {scale:.2f}x (text ~{text_px:.0f} px high)")
    if deadline:
        deadline.check("deskewing")

    angle = 0.0
    if deskew:
        angle = estimate_skew(work)
        if angle:
            work = _rotate(work, angle)
            steps.append(f"deskewed {angle:+.1f} deg")
    # rotated_size is kept in original pixels (before scaling), as to_original expects
    rotated_size = (round(work.shape[1] / scale), round(work.shape[0] / scale))
    return Prepared(
        work,
        (width, height),
        angle=angle,
        rotated_size=rotated_size,
        scale=scale,
        steps=tuple(steps),
        text_height_px=text_px,
    )


def _at_scale(
    gray: np.ndarray,
    decoded: float,
    scale: float,
    full_size: tuple[int, int],
    finer: Callable[[float], Image.Image] | None,
) -> np.ndarray:
    """The image at ``scale`` of ``full_size``, from ``gray`` (at ``decoded``) or ``finer``."""
    size = (max(1, round(full_size[0] * scale)), max(1, round(full_size[1] * scale)))
    source = gray
    if scale > decoded * 1.001 and finer is not None:
        image = finer(scale)
        source = np.asarray(image if image.mode == "L" else image.convert("L"))
    if (source.shape[1], source.shape[0]) == size:
        return source
    down = source.shape[1] > size[0]
    method = cv2.INTER_AREA if down else cv2.INTER_CUBIC
    return cv2.resize(source, size, interpolation=method)


def quantiles(values: np.ndarray, qs: Sequence[float]) -> list[float]:
    """The ``qs`` quantiles (0-1) of ``values``, interpolated linearly as ``np.quantile``'s default.

    Computed with ``np.partition``, as numpy does: ``np.quantile`` and ``np.median`` import
    ``numpy.ma`` on their first call, 30-40 ms of a one-image run.
    """
    flat = np.asarray(values).ravel()
    last = flat.size - 1
    positions = [q * last for q in qs]
    lows = [math.floor(p) for p in positions]
    part = np.partition(flat, sorted({*lows, *(min(last, lo + 1) for lo in lows)}))
    out = []
    for position, low in zip(positions, lows, strict=True):
        a, b = float(part[low]), float(part[min(last, low + 1)])
        out.append(a + (b - a) * (position - low))
    return out


def _odd(n: int) -> int:
    return n | 1


def _resize(gray: np.ndarray, factor: float) -> np.ndarray:
    """``gray`` scaled by ``factor`` (area averaging down, cubic up); itself at 1."""
    if factor == 1.0:
        return gray
    height, width = gray.shape
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    method = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
    return cv2.resize(gray, size, interpolation=method)


def _light_text_mask(small: np.ndarray, ground: np.ndarray, noise: float, k: int) -> np.ndarray:
    """True where the strokes around a pixel are lighter than their ground.

    ``ground`` is a median of the neighbourhood: the majority, i.e. the paper or screen, since
    strokes cover less than half of any window. Pixels well above it (light strokes) are
    counted against pixels well below it (dark strokes) over a box of about three windows;
    where light strokes win by ``POLARITY_MARGIN`` the region is light text on dark. Edges
    between two grounds give both kinds in equal measure and change nothing. Each flat
    ground is also weighed on its own (``_light_text_grounds``: chat bubbles). ``noise``: the
    grey levels a stroke stands off its ground.
    """
    diff = small.astype(np.int16) - ground.astype(np.int16)
    dark_px, light_px = diff < -noise, diff > noise
    dark, light = dark_px.astype(np.float32), light_px.astype(np.float32)
    if light.mean() > POLARITY_MARGIN * dark.mean():  # the whole image is light on dark
        return np.ones(small.shape, dtype=bool)
    window = (3 * k, 3 * k)
    dark_share = cv2.boxFilter(dark, -1, window)
    light_share = cv2.boxFilter(light, -1, window)
    # A region must be clearly light on dark: the corners of a light panel on a dark wall
    # give some light evidence and no dark, and must not count.
    mask = (light_share > 2 * POLARITY_MARGIN * dark_share) & (light_share > REGION_EVIDENCE)
    if mask.any():
        # ... on a dark ground two windows wide at least (a panel, a button, a dark screen):
        # inside big bold black letters the median is dark too, and the paper between the
        # arms of an "E" 110 px high looked like light strokes on it ("EXIT" was inverted
        # in patches and read "IEXIT"; plain tesseract read it right). Their strokes are
        # narrower than two windows, so a morphological opening by that leaves none.
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * k, 2 * k))
        panel = cv2.morphologyEx((ground < 128).astype(np.uint8), cv2.MORPH_OPEN, kernel)
        mask &= cv2.dilate(panel, np.ones((3 * k, 3 * k), np.uint8)).astype(bool)
    if mask.any():
        # Grow the regions so that inverted areas end in plain ground, not across strokes.
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
        mask = cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)
    return mask | _light_text_grounds(small, light_px, dark_px, ground, noise, k)


def _grounds(ground: np.ndarray, noise: float) -> tuple[int, np.ndarray, np.ndarray]:
    """The flat grounds of ``ground`` (a median), cut where it steps by more than ``noise``.

    Returns ``cv2.connectedComponentsWithStats``'s count, labels and stats of the
    4-connected areas off the steps (a 3x3 morphological gradient above ``noise``); label 0
    is the steps themselves.
    """
    steps = cv2.morphologyEx(ground, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > noise
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        (~steps).astype(np.uint8), connectivity=4
    )
    return count, labels, stats


def _light_text_grounds(
    small: np.ndarray,
    light: np.ndarray,
    dark: np.ndarray,
    ground: np.ndarray,
    noise: float,
    k: int,
) -> np.ndarray:
    """True on the flat grounds (panels, chat bubbles) whose strokes are lighter than they are.

    ``light`` and ``dark`` are the light and dark stroke pixels (bool, the shape of
    ``small``), ``noise`` the grey levels a stroke stands off its ground, ``k`` the median's
    window (pixels of ``small``).

    A box of three windows mixes the evidence of neighbouring grounds: white text on a blue
    chat bubble (mid-grey, ~100, in grayscale) sits a bubble's height from black text on the
    white screen and on the grey bubbles, and the bubble's own edges give light and dark
    evidence in equal measure, so the box never finds it clearly light on dark (a new user's
    iMessage screenshot lost every outgoing message at confidence 0.96). Here the evidence is
    counted per ground instead: ``ground`` (the median) is flat over a panel and steps at its
    edge, so the steps (a 3x3 morphological gradient above the noise) cut the image into
    grounds, each labelled by ``cv2.connectedComponents``, and a stroke counts for the ground
    it lies on. A ground of at least half a window whose light strokes beat its dark ones by
    twice ``POLARITY_MARGIN`` and cover ``REGION_EVIDENCE`` of it is light text on its own
    ground, whatever its grey level. On photos the ground varies smoothly (no step above the
    noise), so it is one region and the whole-image rule has already decided.
    """
    count, labels, stats = _grounds(ground, noise)
    if count <= 2:  # one ground (label 0 is the steps): the whole-image rule's case
        return np.zeros(ground.shape, dtype=bool)
    # Strokes are a few percent of the pixels: counting them alone costs a tenth of a
    # weighted count over the image.
    n_light = np.bincount(labels[light], minlength=count)
    n_dark = np.bincount(labels[dark], minlength=count)
    area = stats[:, cv2.CC_STAT_AREA]
    light_ground = (
        (n_light > 2 * POLARITY_MARGIN * n_dark)
        & (n_light > REGION_EVIDENCE * k * k / 2)
        & (n_light > REGION_EVIDENCE * area)
        & (area >= k * k / 2)
    )
    light_ground[0] = False  # the steps themselves
    if light_ground.any():
        # Light *strokes*, not light patches: where big bold dark letters fill most of the
        # median's window, their bodies are grounds too and the paper in their counters
        # and between them is "light" (a sign's black "OPEN 24 HOURS" was inverted in
        # bands through its letters and misread). Mean distance to the nearest non-light
        # pixel, per ground: 1.1-1.3 px for the text on chat bubbles, 3.3-4.3 for such
        # paper (k 47-59, bench/README.md "Chat bubbles").
        inside = cv2.distanceTransform(light.astype(np.uint8), cv2.DIST_L2, 3)
        depth = np.bincount(labels[light], weights=inside[light], minlength=count)
        light_ground &= depth <= max(MAX_STROKE_DEPTH_PX, k / 20) * np.maximum(n_light, 1)
    return _whole_panels(light_ground[labels], small, ground, noise, k)


def _whole_panels(
    region: np.ndarray, small: np.ndarray, ground: np.ndarray, noise: float, k: int
) -> np.ndarray:
    """``region`` grown to the whole panels it lies on, out to their edges, letters included.

    The median's panel is narrower than the panel (its window reaches past the edge), so
    inverting ``region`` alone would draw an edge through the first and last letters of a
    bubble ("Yes," was lost so). The panel is the pixels within a window of ``region`` that
    keep its ground level (to the noise) and connect to it (``cv2.connectedComponents``);
    the letters are holes in it, filled from its outer contours (``cv2.findContours``) when
    they are glyph-sized.
    """
    if not region.any():
        return region
    kernel = np.ones((k, k), np.uint8)
    level = cv2.dilate(np.where(region, ground, 0).astype(np.uint8), kernel)
    near = cv2.dilate(region.astype(np.uint8), kernel).astype(bool)
    body = near & (np.abs(small.astype(np.int16) - level.astype(np.int16)) <= noise)
    count, labels = cv2.connectedComponents(body.astype(np.uint8), connectivity=4)
    keep = np.zeros(count, dtype=bool)
    keep[labels[region & body]] = True
    keep[0] = False
    panels = keep[labels].astype(np.uint8)
    contours, _ = cv2.findContours(panels, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = cv2.drawContours(panels.copy(), contours, -1, 1, thickness=cv2.FILLED)
    # Only glyph-sized holes are letters: a hole half a window across or more is another
    # panel (a light sign framed by the ground) and keeps its own polarity.
    _n, holes, stats, _ = cv2.connectedComponentsWithStats(filled - panels, connectivity=8)
    letter = np.minimum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]) < k / 2
    letter[0] = False
    return region | panels.astype(bool) | letter[holes]


def _panel_paper(small: np.ndarray, ground: np.ndarray, noise: float, k: int) -> np.ndarray:
    """The paper of every flat panel: its own level out to its edge, letters included; 0 off.

    ``small`` and ``ground`` (its median, window ``k``) are the image once its light text is
    inverted: dark text on light everywhere. The blurred ground is no paper for a panel (a
    chat bubble, a header bar, a button): blurred across the panel's edge, it is too light
    on the panel's rim, so the division shades the rounded ends of a bubble grey over its
    first letter ("Yes," was lost so on green bubbles, on JPEG copies, and "Yes", "Thanks",
    "Running" and "No" on a half-size dark-mode chat, whose inverted blue bubbles are grey
    panels with dark text). The grounds are cut where the median steps, as in
    ``_light_text_grounds``; one of half a window or more whose median is flat (standard
    deviation within half the noise) and not dark (``PANEL_MIN_LEVEL``) is a panel, and its
    level (mean median) is its paper.
    A ground that varies (uneven light on a page or photo) keeps the blurred ground. A
    panel reaches past its median's edge: its pixels within a window that keep its level
    (the highest or lowest panel level in reach, to the noise) and connect to it; the
    letters are its glyph-sized holes, papered with the level around them.
    """
    count, labels, stats = _grounds(ground, noise)
    no_paper = np.zeros(ground.shape, dtype=np.uint8)
    if count <= 2:  # one ground: the blurred ground is its paper
        return no_paper
    area = stats[:, cv2.CC_STAT_AREA]
    # the level and spread of each ground on every other row and column: a quarter of the cost
    sampled = labels[::2, ::2].ravel()
    values = ground[::2, ::2].ravel().astype(np.float64)
    n = np.maximum(np.bincount(sampled, minlength=count), 1)
    mean = np.bincount(sampled, weights=values, minlength=count) / n
    square = np.bincount(sampled, weights=values * values, minlength=count) / n
    spread = np.sqrt(np.maximum(square - mean * mean, 0.0))
    # Once inverted, paper is light: a flat ground darker than PANEL_MIN_LEVEL is ink (the
    # bodies of big bold letters, a black bar), and papered it would turn white.
    flat = (area >= k * k / 2) & (spread <= noise / 2) & (mean >= PANEL_MIN_LEVEL)
    flat[0] = False  # the steps themselves
    if not flat.any():
        return no_paper
    level = np.where(flat, np.clip(np.rint(mean), 1, 255), 0).astype(np.uint8)
    seeded = level[labels]  # each panel's level on its ground, 0 elsewhere
    seeds = seeded > 0
    kernel = np.ones((k, k), np.uint8)
    high = cv2.dilate(seeded, kernel)  # the lightest panel level within a window
    low = cv2.erode(seeded | np.where(seeds, 0, 255).astype(np.uint8), kernel)  # darkest
    reach = high > 0
    near_high = reach & (cv2.absdiff(small, high) <= noise)
    near_low = reach & (cv2.absdiff(small, low) <= noise) & ~near_high
    paper = np.zeros(ground.shape, dtype=np.uint8)
    for near, own in ((near_high, high), (near_low, low)):
        if not near.any():
            continue
        # a pixel at a panel's level belongs to it only when connected to it: grey text
        # beside a panel of its grey is no part of it
        body_count, body = cv2.connectedComponents(near.view(np.uint8), connectivity=4)
        keep = np.zeros(body_count, dtype=bool)
        keep[body[seeds & near & (seeded == own)]] = True
        keep[0] = False
        np.copyto(paper, own, where=keep[body])
    # Letters: glyph-sized holes in the panels (8-connected, as the panels are 4-connected)
    # off the image's border; each takes the mean paper of the panel pixels around it.
    hole_count, holes, hole_stats, _ = cv2.connectedComponentsWithStats(
        (paper == 0).view(np.uint8), connectivity=8
    )
    x, y = hole_stats[:, cv2.CC_STAT_LEFT], hole_stats[:, cv2.CC_STAT_TOP]
    w, h = hole_stats[:, cv2.CC_STAT_WIDTH], hole_stats[:, cv2.CC_STAT_HEIGHT]
    height, width = ground.shape
    letter = (np.minimum(w, h) < k / 2) & (x > 0) & (y > 0)
    letter &= (x + w < width) & (y + h < height)
    letter[0] = False
    if letter.any():
        in_letter = letter[holes]
        letters = np.where(in_letter, holes, 0).astype(np.float32)
        around = cv2.dilate(letters, np.ones((3, 3), np.uint8))
        rim = (around > 0) & (paper > 0)
        rim_labels = around[rim].astype(np.int32)
        n = np.bincount(rim_labels, minlength=hole_count)
        total = np.bincount(rim_labels, weights=paper[rim], minlength=hole_count)
        fill = np.rint(total / np.maximum(n, 1)).astype(np.uint8)
        paper[in_letter] = fill[holes[in_letter]]
    return paper


def _noise_sigma(gray: np.ndarray) -> float:
    """A robust estimate of the sensor noise: MAD of the Laplacian, scaled (Immerkaer 1996)."""
    lap = cv2.Laplacian(gray, cv2.CV_32F)
    return quantiles(np.abs(lap), (0.5,))[0] * 1.4826 / 6.0


def _divide(gray: np.ndarray, paper: np.ndarray) -> np.ndarray:
    """``gray / paper`` in [0, 1] (float32)."""
    ratio = gray.astype(np.float32) / np.maximum(paper.astype(np.float32), 1.0)
    return np.clip(ratio, 0.0, 1.0)


def _stretch(ratio: np.ndarray) -> np.ndarray:
    """Clamp the paper to white below its noise level and the darkest ink to black (uint8)."""
    scaled = (ratio * 255).astype(np.uint8)
    threshold, _ = cv2.threshold(scaled, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    t = threshold / 255.0
    background = ratio[ratio > t]
    if background.size == 0:
        return scaled
    median = quantiles(background, (0.5,))[0]
    noise = 1.4826 * quantiles(np.abs(background - median), (0.5,))[0]
    white = max(t + 0.05, median - 3.0 * noise)
    black = quantiles(ratio, (0.005,))[0]
    stretched = np.clip((ratio - black) / max(white - black, 1e-3), 0.0, 1.0)
    return (stretched * 255).astype(np.uint8)


def estimate_glyph_height(values: np.ndarray) -> float | None:
    """Upper-quartile height in pixels of the ink's glyph-like connected components, or None.

    ``values`` is a grayscale image (uint8, or float in [0, 1]) with dark text on light.
    Components that are too thin, too flat, too big or too sparse to be characters (noise
    specks, rules, frames, photo regions) are not counted.
    """
    image = values if values.dtype == np.uint8 else (values * 255).astype(np.uint8)
    _, ink = cv2.threshold(image, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    if not ink.any():
        return None
    _count, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    w = stats[1:, cv2.CC_STAT_WIDTH]
    h = stats[1:, cv2.CC_STAT_HEIGHT]
    area = stats[1:, cv2.CC_STAT_AREA]
    limit = max(image.shape) / 4
    glyph = (h >= 4) & (h <= limit) & (w <= 3 * h) & (h <= 6 * w) & (area >= 0.15 * w * h)
    if glyph.sum() < 3:
        return None
    return quantiles(h[glyph], (0.75,))[0]  # capitals and whole CJK characters


def _working_scale(text_px: float | None, width: int, height: int) -> float:
    """The scale that brings the text into the size tesseract reads best (1 when it is)."""
    if text_px is None or SMALL_TEXT_PX <= text_px <= LARGE_TEXT_PX:
        return 1.0
    scale = (TARGET_TEXT_PX if text_px < SMALL_TEXT_PX else DOWNSCALE_TARGET_TEXT_PX) / text_px
    if scale > 1:
        budget = math.sqrt(UPSCALE_PIXEL_BUDGET / max(1, width * height))
        scale = min(scale, MAX_UPSCALE, budget)
        return 1.0 if scale < 1.2 else round(scale, 3)
    return round(scale, 3)


def _rotate(gray: np.ndarray, angle: float) -> np.ndarray:
    """``gray`` rotated ``angle`` degrees counter-clockwise, expanded, new corners white."""
    height, width = gray.shape
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    new_w, new_h = round(height * sin + width * cos), round(height * cos + width * sin)
    matrix[0, 2] += new_w / 2 - width / 2
    matrix[1, 2] += new_h / 2 - height / 2
    return cv2.warpAffine(gray, matrix, (new_w, new_h), flags=cv2.INTER_CUBIC, borderValue=(255,))


def estimate_skew(gray: np.ndarray | Image.Image, *, max_angle: float = 10.0) -> float:
    """The rotation (degrees, counter-clockwise) that makes text lines horizontal.

    Searches the angle whose horizontal projection profile of the ink is sharpest (text lines
    and gaps alternate), coarse then fine, on a copy about 800 px wide.

    Args:
        gray: dark text on a light ground (uint8 array or Pillow image).
        max_angle: the largest tilt searched, in degrees.

    Returns:
        The angle rounded to 0.1 degree; 0.0 below 0.2 degrees.
    """
    array = np.asarray(gray.convert("L")) if isinstance(gray, Image.Image) else gray
    factor = min(1.0, 800 / max(array.shape))
    small = _resize(array, factor)
    _, ink = cv2.threshold(small, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)

    def sharpness(angle: float) -> float:
        height, width = ink.shape
        matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
        rotated = cv2.warpAffine(ink, matrix, (width, height), flags=cv2.INTER_LINEAR)
        profile = rotated.sum(axis=1, dtype=np.float64)
        return float(np.sum(np.diff(profile) ** 2))

    coarse = np.arange(-max_angle, max_angle + 0.01, 1.0)
    best = max(coarse, key=sharpness)
    fine = np.arange(best - 1.0, best + 1.01, 0.1)
    best = max(fine, key=sharpness)
    return 0.0 if abs(best) < 0.2 else round(float(best), 1)
