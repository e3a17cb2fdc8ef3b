"""Image features measured with numpy and Pillow only (no OpenCV, no scikit-learn).

``NumpyFeatureExtractor().extract(path, boxes)`` fills every field of ``ImageFeatures``.
All measurements run on a downsample (longest side ``analysis_size``, 512 px by default),
so a 50-megapixel photo costs about as much as a thumbnail. Conventions:

- brightness: mean Rec. 601 luma (0.299 R + 0.587 G + 0.114 B) / 255, 0-1.
- contrast: RMS contrast, the standard deviation of luma / 255; 0 for a uniform image,
  0.5 at most (half black, half white). It is low on a page of dark text on white (the
  paper dominates), so "low-contrast" also needs a small luma range.
- luma range: (99.9th - 0.1th percentile of luma) / 255, 0-1: the spread between the
  darkest and the lightest parts, ignoring a few stray pixels.
- colourfulness: Hasler & Süsstrunk (2003), ``sigma_rgyb + 0.3 * mu_rgyb`` on 0-255 RGB;
  0 for grey, ~15 slightly, ~33 moderately, ~59 quite, ~82+ highly colourful.
- dominant colours: weighted k-means in CIELAB on the distinct colours of a strided pixel
  sample (deterministic: the first centre is the commonest colour, each next one the colour
  with the largest ``count * distance²``); clusters that get the same name are merged.
- sharpness and edges are measured on luma resampled to ``EDGE_ANALYSIS_SIZE`` (256 px
  longest side, up or down) so values compare across image sizes. sharpness: variance of
  the 4-neighbour Laplacian of 0-255 luma (edge-replicated border). edge density: share
  of pixels whose Sobel gradient magnitude, divided by its largest possible value for a
  black-white step (4 * 255), exceeds ``EDGE_THRESHOLD``; edges are not thinned, so mild
  blur widens them and can raise it, while strong blur removes them: judge focus by
  sharpness.
- text coverage: union area of the word boxes (clipped to the image) / image area, exact.
- phash: 32x32 grey, 2-D DCT-II, top-left 8x8 block thresholded at the median of its 63
  AC coefficients, row-major, first coefficient is the most significant bit.
- vector: see ``FEATURE_VECTOR_LENGTH`` and ``_feature_vector``.
"""

from __future__ import annotations

import colorsys
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image

from adapters.errors import ConfigError
from adapters.features.base import LOW_CONTRAST_RANGE, DominantColour, ImageFeatures
from adapters.imaging import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    Decoded,
    decode_image,
    to_rgb,
)
from adapters.ocr.base import WordBox

#: Length of ``ImageFeatures.vector``:
#: [0:8]   scalars in 0-1: brightness, 2*contrast, colourfulness/150, log1p(sharpness)/14,
#:         edge density, text coverage, 0.5 + log2(aspect ratio)/8, mean HSV saturation
#: [8:35]  3x3x3 RGB histogram (R slowest), square roots of pixel shares
#: [35:51] 4x4 grid of mean luma (0-1), row-major from the top left
#: [51:63] 12 hue bins of 30 degrees from red, square roots of pixel shares
#: [63]    square root of the share of achromatic pixels (HSV chroma < 0.1)
#: Blocks are scaled to norm <= 1 each (scalars / sqrt 8, grid / 4; histograms are unit
#: norm) so none dominates, then the whole vector is L2-normalised.
FEATURE_VECTOR_LENGTH = 64

#: Longest side, in pixels, of the luma on which sharpness and edge density are measured.
EDGE_ANALYSIS_SIZE = 256
#: Sobel magnitude (as a share of a full black-white step) above which a pixel is an edge.
EDGE_THRESHOLD = 0.1

_COLOUR_SAMPLE_PIXELS = 16_384
_KMEANS_ITERATIONS = 25
_MIN_COLOUR_SHARE = 0.01
_SQUARE_TOLERANCE = 0.05
_PHASH_SIZE = 32
_PHASH_BLOCK = 8


@dataclass(frozen=True, kw_only=True)
class NumpyFeatureExtractor:
    """Measures brightness, colour, sharpness, layout, a perceptual hash and a vector.

    Args:
        max_pixels: images with more pixels are refused (decompression bombs).
        max_bytes: files of more bytes are refused.
        analysis_size: longest side, in pixels, of the downsample the measurements run on
            (at least 32).
        n_colours: how many dominant colours to report (1-16).

    Raises:
        ConfigError: ``analysis_size`` or ``n_colours`` is out of range.
    """

    max_pixels: int = DEFAULT_MAX_PIXELS
    max_bytes: int = DEFAULT_MAX_BYTES
    analysis_size: int = 512
    n_colours: int = 5
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )
    _prefetched: dict[tuple[str, int, int], _Prefetched] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        """Check the options; nothing heavy happens here."""
        if self.analysis_size < 32:
            raise ConfigError(f"analysis_size must be at least 32 px, got {self.analysis_size}")
        if not 1 <= self.n_colours <= 16:
            raise ConfigError(f"n_colours must be between 1 and 16, got {self.n_colours}")

    def extract(self, image_path: Path, text_boxes: Sequence[WordBox] = ()) -> ImageFeatures:
        """Measure ``image_path``; ``text_boxes`` (OCR, original pixels) give the text coverage.

        A big JPEG is decoded at 1/2, 1/4 or 1/8 of its size by DCT scaling, never below
        ``analysis_size`` on its longest side (a 4032x3024 photo at 1008x756), then resampled
        to ``analysis_size`` as any image is: the measurements see the same 512-px image up
        to resampling noise, at a fraction of a full decode's cost. What does not depend on
        the text is taken from a ``prefetch`` of the same unchanged file.
        """
        path = Path(image_path)
        key = _file_key(path)
        with self._lock:
            prefetched = self._prefetched.pop(key, None) if key else None
        measured = prefetched.result() if prefetched else self._measure_file(path)
        return measured.with_text(text_boxes)

    def prefetch(self, image_path: Path) -> Callable[[], None]:
        """Decode ``image_path`` now; return the measurement of what does not need the text.

        The returned function is meant for another thread while OCR reads the image: it
        runs numpy only and imports nothing (the decoding here has loaded every module it
        needs; importing on two threads at once can hand one a half-initialised module in
        Python 3.11). The next ``extract`` of the same unchanged file finishes from it,
        waiting for it while it runs, running it if it never started. A bad file's error
        surfaces in ``extract``. At most ``_PREFETCHED`` images are kept.
        """
        path = Path(image_path)
        key = _file_key(path)
        if key is None:
            return _nothing  # extract will say what is wrong with the file
        try:
            decoded = self._decode(path)
        except Exception as exc:
            error = exc
            job = _Prefetched(lambda: _raise(error))
        else:
            job = _Prefetched(lambda: self._measure(decoded.image, decoded.full_size))
        with self._lock:
            self._prefetched[key] = job
            while len(self._prefetched) > _PREFETCHED:
                self._prefetched.pop(next(iter(self._prefetched)))
        return job.run

    def extract_from_image(
        self, image: Image.Image, text_boxes: Sequence[WordBox] = ()
    ) -> ImageFeatures:
        """Measure an image already in memory (any Pillow mode; ``load_image`` output is RGB)."""
        return self._measure(to_rgb(image), image.size).with_text(text_boxes)

    def _decode(self, path: Path) -> Decoded:
        return decode_image(
            path, min_side=self.analysis_size, max_pixels=self.max_pixels, max_bytes=self.max_bytes
        )

    def _measure_file(self, path: Path) -> _Measured:
        decoded = self._decode(path)
        return self._measure(decoded.image, decoded.full_size)

    def _measure(self, image: Image.Image, full_size: tuple[int, int]) -> _Measured:
        """Measure ``image`` (RGB, possibly reduced) of the ``full_size`` image."""
        width, height = full_size
        small = downscale(image, self.analysis_size)
        rgb = np.asarray(small, dtype=np.float64).reshape(small.height, small.width, 3)
        luma = rgb @ np.array([0.299, 0.587, 0.114])

        brightness = float(luma.mean() / 255.0)
        contrast = float(luma.std() / 255.0)
        darkest, lightest = np.percentile(luma, (0.1, 99.9))
        edge_luma = _resize_luma(luma, EDGE_ANALYSIS_SIZE)
        edges = sobel_edges(edge_luma)
        features = ImageFeatures(
            width=width,
            height=height,
            aspect_ratio=width / height,
            orientation=orientation(width, height),
            brightness=brightness,
            contrast=contrast,
            luma_range=float((lightest - darkest) / 255.0),
            colourfulness=hasler_colourfulness(rgb),
            dominant_colours=dominant_colours(rgb, self.n_colours),
            sharpness=laplacian_variance(edge_luma),
            edge_density=float(edges.mean()),
            text_coverage=0.0,
            layout="",
            phash=perceptual_hash(small),
            vector=(),
            summary="",
        )
        return _Measured(features, edges, _vector_parts(features, rgb, luma))


_PREFETCHED = 4  # prefetched measurements kept per extractor


def _file_key(path: Path) -> tuple[str, int, int] | None:
    """The file's path, size and change time (its content, cheaply); None if unreadable."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return (str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def _nothing() -> None:
    return None


def _raise(error: Exception) -> _Measured:
    raise error


class _Prefetched:
    """A measurement run once, by whichever thread comes first; the others wait for it."""

    def __init__(self, measure: Callable[[], _Measured]) -> None:
        self._measure = measure
        self._lock = threading.Lock()
        self._outcome: _Measured | Exception | None = None

    def run(self) -> None:
        """Measure, unless it is done (waits while another thread measures)."""
        with self._lock:
            if self._outcome is None:
                try:
                    self._outcome = self._measure()
                except Exception as exc:
                    self._outcome = exc

    def result(self) -> _Measured:
        """The measurement (made now if no thread has run it); re-raises its error."""
        self.run()
        if isinstance(self._outcome, Exception):
            raise self._outcome
        assert self._outcome is not None
        return self._outcome


@dataclass(frozen=True)
class _Measured:
    """An image's features before the text is known: all but coverage, layout and summary."""

    features: ImageFeatures
    edges: np.ndarray  # Sobel edge map at EDGE_ANALYSIS_SIZE
    vector_parts: np.ndarray  # see _vector_parts

    def with_text(self, text_boxes: Sequence[WordBox]) -> ImageFeatures:
        """The finished features, given the OCR word boxes (original pixels)."""
        f, edges = self.features, self.edges
        coverage = text_coverage(text_boxes, f.width, f.height)
        text_mask = _text_mask(text_boxes, f.width, f.height, edges.shape)
        edge_count = int(edges.sum())
        text_edge_share = float((edges & text_mask).sum() / edge_count) if edge_count else 1.0
        layout = classify_layout(coverage, f.edge_density, f.contrast, text_edge_share)
        done = replace(f, text_coverage=coverage, layout=layout)
        vector = _normalised(self.vector_parts, coverage)
        return replace(done, vector=vector, summary=summarize(done))


def downscale(image: Image.Image, longest_side: int) -> Image.Image:
    """``image`` shrunk so its longest side is at most ``longest_side`` (never enlarged)."""
    width, height = image.size
    scale = longest_side / max(width, height)
    if scale >= 1:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _resize_luma(luma: np.ndarray, longest_side: int) -> np.ndarray:
    """Luma resampled (up or down) so its longest side is exactly ``longest_side``."""
    height, width = luma.shape
    scale = longest_side / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if size == (width, height):
        return luma
    resized = Image.fromarray(luma.astype(np.float32)).resize(size, Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float64)


def orientation(width: int, height: int) -> str:
    """Return "square" when the sides differ by at most 5%, else "landscape" or "portrait"."""
    if abs(width - height) <= _SQUARE_TOLERANCE * max(width, height):
        return "square"
    return "landscape" if width > height else "portrait"


def hasler_colourfulness(rgb: np.ndarray) -> float:
    """Hasler & Süsstrunk (2003) colourfulness of an (h, w, 3) 0-255 RGB array."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    rg = r - g
    yb = 0.5 * (r + g) - b
    sigma = math.hypot(float(rg.std()), float(yb.std()))
    mu = math.hypot(float(rg.mean()), float(yb.mean()))
    return sigma + 0.3 * mu


# --- colours -------------------------------------------------------------------------------


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of an (n, 3) array of 0-255 sRGB colours."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = linear @ np.array(
        [
            [0.4124564, 0.2126729, 0.0193339],
            [0.3575761, 0.7151522, 0.1191920],
            [0.1804375, 0.0721750, 0.9503041],
        ]
    )
    xyz /= np.array([0.95047, 1.0, 1.08883])
    eps, kappa = 216 / 24389, 24389 / 27
    f = np.where(xyz > eps, np.cbrt(xyz), (kappa * xyz + 16) / 116)
    return np.stack(
        [116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1
    )


def colour_name(red: int, green: int, blue: int) -> str:
    """A plain name for an sRGB colour: "white", "dark grey", "light blue", "brown", ...

    HSV rules: near-neutral colours get a grey-scale name by value; others a hue name
    (red, orange, yellow, green, cyan, blue, purple, magenta) with "dark"/"light", and
    the everyday names brown (dark orange or red), olive (dark yellow), teal (dark cyan)
    and pink (light red or magenta).
    """
    hue, saturation, value = colorsys.rgb_to_hsv(red / 255, green / 255, blue / 255)
    if value < 0.16:
        return "black"
    if saturation * value < 0.08 or saturation < 0.2:
        if value < 0.4:
            return "dark grey"
        if value < 0.7:
            return "grey"
        return "light grey" if value < 0.88 else "white"
    degrees = hue * 360
    dark = value < 0.55
    light = value > 0.8 and saturation < 0.55
    if degrees < 15 or degrees >= 340:
        if light:
            return "pink"
        return "dark red" if dark else "red"
    if degrees < 42:
        if value < 0.7 or (saturation < 0.6 and value < 0.85):
            return "brown"
        return "light orange" if light else "orange"
    if degrees < 70:
        if value < 0.6:
            return "olive"
        return "light yellow" if light else "yellow"
    if 165 <= degrees < 190:
        return "teal" if dark else ("light cyan" if light else "cyan")
    if degrees >= 290:
        if dark:
            return "purple"
        return "pink" if light else "magenta"
    if degrees < 165:
        base = "green"
    elif degrees < 260:
        base = "blue"
    else:
        base = "purple"
    if dark:
        return f"dark {base}"
    return f"light {base}" if light else base


def _sample_pixels(rgb: np.ndarray, target: int) -> np.ndarray:
    """An (n, 3) strided sample of about ``target`` pixels (no resampling, no new colours)."""
    height, width, _ = rgb.shape
    step = max(1, math.ceil(math.sqrt(height * width / target)))
    return rgb[::step, ::step].reshape(-1, 3)


def _weighted_kmeans(points: np.ndarray, weights: np.ndarray, k: int) -> np.ndarray:
    """Cluster labels of ``points`` by weighted Lloyd k-means with a deterministic seeding."""
    centres = [points[int(np.argmax(weights))]]
    nearest = ((points - centres[0]) ** 2).sum(axis=1)
    while len(centres) < k:
        score = weights * nearest
        best = int(np.argmax(score))
        if score[best] <= 1e-9:  # every point already sits on a centre
            break
        centres.append(points[best])
        nearest = np.minimum(nearest, ((points - points[best]) ** 2).sum(axis=1))
    centre_array = np.array(centres)
    labels = np.zeros(len(points), dtype=np.int64)
    for iteration in range(_KMEANS_ITERATIONS):
        distances = ((points[:, None, :] - centre_array[None, :, :]) ** 2).sum(axis=2)
        new_labels = distances.argmin(axis=1)
        if iteration and np.array_equal(new_labels, labels):
            break
        labels = new_labels
        for index in range(len(centre_array)):
            member = labels == index
            if member.any():
                centre_array[index] = np.average(points[member], axis=0, weights=weights[member])
    return labels


def dominant_colours(rgb: np.ndarray, n_colours: int = 5) -> tuple[DominantColour, ...]:
    """The main colours of an (h, w, 3) 0-255 RGB array, commonest first; shares sum to ~1."""
    pixels = np.clip(np.rint(_sample_pixels(rgb, _COLOUR_SAMPLE_PIXELS)), 0, 255).astype(np.int64)
    packed = (pixels[:, 0] << 16) | (pixels[:, 1] << 8) | pixels[:, 2]
    unique, counts = np.unique(packed, return_counts=True)
    colours = np.stack([(unique >> 16) & 255, (unique >> 8) & 255, unique & 255], axis=1)
    weights = counts.astype(np.float64)
    labels = _weighted_kmeans(srgb_to_lab(colours), weights, n_colours)

    by_name: dict[str, tuple[float, np.ndarray]] = {}
    # The labels in use, ascending; not np.unique, which imports numpy.ma (30 ms) on first use.
    for label in np.flatnonzero(np.bincount(labels)):
        member = labels == label
        weight = float(weights[member].sum())
        mean_rgb = np.average(colours[member].astype(np.float64), axis=0, weights=weights[member])
        name = colour_name(*(round(v) for v in mean_rgb))
        if name in by_name:
            old_weight, old_rgb = by_name[name]
            mean_rgb = (old_rgb * old_weight + mean_rgb * weight) / (old_weight + weight)
            weight += old_weight
        by_name[name] = (weight, mean_rgb)

    total = float(weights.sum())
    found = [
        DominantColour(
            hex="#{:02x}{:02x}{:02x}".format(*(round(v) for v in mean_rgb)),
            name=name,
            share=weight / total,
        )
        for name, (weight, mean_rgb) in by_name.items()
    ]
    found.sort(key=lambda c: (-c.share, c.hex))
    kept = tuple(c for c in found if c.share >= _MIN_COLOUR_SHARE)
    return kept or tuple(found[:1])


# --- sharpness, edges, text ----------------------------------------------------------------


def laplacian_variance(luma: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian of a 0-255 luma array (replicated border)."""
    p = np.pad(luma, 1, mode="edge")
    laplacian = p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:] - 4 * luma
    return float(laplacian.var())


def sobel_edges(luma: np.ndarray, threshold: float = EDGE_THRESHOLD) -> np.ndarray:
    """Boolean edge map: Sobel magnitude / (4 * 255) above ``threshold``."""
    p = np.pad(luma, 1, mode="edge")
    gx = (p[:-2, 2:] + 2 * p[1:-1, 2:] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[1:-1, :-2] + p[2:, :-2])
    gy = (p[2:, :-2] + 2 * p[2:, 1:-1] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[:-2, 1:-1] + p[:-2, 2:])
    return np.hypot(gx, gy) / (4 * 255) > threshold


def _clipped_boxes(
    boxes: Sequence[WordBox], width: int, height: int
) -> list[tuple[int, int, int, int]]:
    """(x0, y0, x1, y1) of each box clipped to the image; empty boxes dropped."""
    clipped = []
    for box in boxes:
        x0, y0 = max(0, box.left), max(0, box.top)
        x1, y1 = min(width, box.left + box.width), min(height, box.top + box.height)
        if x1 > x0 and y1 > y0:
            clipped.append((x0, y0, x1, y1))
    return clipped


def text_coverage(boxes: Sequence[WordBox], width: int, height: int) -> float:
    """Exact share of a ``width`` x ``height`` image covered by the union of ``boxes``.

    A boolean mask over the grid of distinct box edges (coordinate compression) counts each
    covered pixel once however many boxes overlap it, without allocating a full-size mask.
    """
    clipped = _clipped_boxes(boxes, width, height)
    if not clipped:
        return 0.0
    # sorted distinct edges; not np.unique, which imports numpy.ma (30 ms) on first use
    xs = np.array(sorted({c for b in clipped for c in (b[0], b[2])}))
    ys = np.array(sorted({c for b in clipped for c in (b[1], b[3])}))
    mask = np.zeros((len(ys) - 1, len(xs) - 1), dtype=bool)
    for x0, y0, x1, y1 in clipped:
        i0, i1 = np.searchsorted(ys, [y0, y1])
        j0, j1 = np.searchsorted(xs, [x0, x1])
        mask[i0:i1, j0:j1] = True
    area = (np.diff(ys)[:, None] * np.diff(xs)[None, :] * mask).sum()
    return float(min(1.0, area / (width * height)))


def _text_mask(
    boxes: Sequence[WordBox], width: int, height: int, shape: tuple[int, ...]
) -> np.ndarray:
    """Boolean mask of the word boxes at the resolution ``shape``, grown by one pixel."""
    mask = np.zeros(shape, dtype=bool)
    sy, sx = shape[0] / height, shape[1] / width
    for x0, y0, x1, y1 in _clipped_boxes(boxes, width, height):
        top, left = max(0, math.floor(y0 * sy) - 1), max(0, math.floor(x0 * sx) - 1)
        mask[top : math.ceil(y1 * sy) + 1, left : math.ceil(x1 * sx) + 1] = True
    return mask


def classify_layout(
    text_coverage: float, edge_density: float, contrast: float, text_edge_share: float
) -> str:
    """Return "blank", "text-heavy", "text and picture" or "picture" by simple thresholds.

    With words found, the image is text-heavy (a document or a sign) when text covers a
    third of it or when at least half of its edge pixels lie in the word boxes (the text
    is most of the detail); otherwise it is text and picture. Without words it is blank
    when nearly uniform (RMS contrast < 0.03 and edge density < 1%), else a picture.
    """
    if text_coverage > 0:
        if text_coverage >= 0.33 or text_edge_share >= 0.5:
            return "text-heavy"
        return "text and picture"
    if contrast < 0.03 and edge_density < 0.01:
        return "blank"
    return "picture"


# --- perceptual hash -----------------------------------------------------------------------


def _dct_matrix(n: int) -> np.ndarray:
    """The orthonormal n x n DCT-II matrix: ``M @ x`` is the DCT of the vector ``x``."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    matrix = np.sqrt(2 / n) * np.cos(np.pi * (2 * i + 1) * k / (2 * n))
    matrix[0] /= np.sqrt(2)
    return matrix


_DCT = _dct_matrix(_PHASH_SIZE)


def perceptual_hash(image: Image.Image) -> str:
    """The 64-bit DCT perceptual hash of ``image`` as 16 hex digits."""
    grey = image.convert("L").resize((_PHASH_SIZE, _PHASH_SIZE), Image.Resampling.LANCZOS)
    pixels = np.asarray(grey, dtype=np.float64)
    block = (_DCT @ pixels @ _DCT.T)[:_PHASH_BLOCK, :_PHASH_BLOCK]
    block = np.round(block, 6)  # a uniform image has AC terms of ~1e-13: make them 0
    median = np.partition(block.flatten()[1:], 31)[31]  # of 63 (np.median imports numpy.ma)
    value = 0
    for bit in (block > median).flatten():
        value = (value << 1) | int(bit)
    return f"{value:016x}"


def hamming_distance(a: str, b: str) -> int:
    """Number of differing bits between two hex hashes of the same length."""
    if len(a) != len(b):
        raise ValueError(f"hashes differ in length: {a!r} and {b!r}")
    try:
        return (int(a, 16) ^ int(b, 16)).bit_count()
    except ValueError:
        raise ValueError(f"not hex hashes: {a!r} and {b!r}") from None


# --- vector and summary --------------------------------------------------------------------


def _feature_vector(
    features: ImageFeatures, rgb: np.ndarray, luma: np.ndarray
) -> tuple[float, ...]:
    """The 64-dim L2-normalised vector laid out as ``FEATURE_VECTOR_LENGTH`` documents."""
    return _normalised(_vector_parts(features, rgb, luma), features.text_coverage)


_COVERAGE_SLOT = 5  # the text coverage's place among the scalars


def _vector_parts(features: ImageFeatures, rgb: np.ndarray, luma: np.ndarray) -> np.ndarray:
    """The vector before normalisation, with the text coverage's slot left at 0."""
    features = replace(features, text_coverage=0.0)
    pixels = rgb.reshape(-1, 3) / 255.0
    top = pixels.max(axis=1)
    chroma = top - pixels.min(axis=1)
    saturation = np.divide(chroma, top, out=np.zeros_like(chroma), where=top > 0)
    scalars = np.array(
        [
            features.brightness,
            2 * features.contrast,
            features.colourfulness / 150,
            math.log1p(features.sharpness) / 14,
            features.edge_density,
            features.text_coverage,
            0.5 + math.log2(features.aspect_ratio) / 8,
            float(saturation.mean()),
        ]
    )
    scalars = np.clip(scalars, 0, 1) / math.sqrt(8)

    bins = np.minimum((pixels * 3).astype(np.int64), 2)
    rgb_hist = np.bincount(bins[:, 0] * 9 + bins[:, 1] * 3 + bins[:, 2], minlength=27)
    rgb_hist = np.sqrt(rgb_hist / len(pixels))

    grid = Image.fromarray(luma.astype(np.float32)).resize((4, 4), Image.Resampling.BOX)
    grid_values = np.clip(np.asarray(grid, dtype=np.float64).flatten() / 255, 0, 1) / 4

    hue = _hues(pixels, top, chroma)
    chromatic = chroma >= 0.1
    hue_hist = np.bincount(
        np.minimum((hue[chromatic] * 12).astype(np.int64), 11), minlength=12
    ).astype(np.float64)
    hue_block = np.sqrt(np.append(hue_hist, (~chromatic).sum()) / len(pixels))

    return np.concatenate([scalars, rgb_hist, grid_values, hue_block])


def _normalised(parts: np.ndarray, coverage: float) -> tuple[float, ...]:
    """``parts`` with the text coverage put in its slot, L2-normalised."""
    vector = parts.copy()
    vector[_COVERAGE_SLOT] = min(max(coverage, 0.0), 1.0) / math.sqrt(8)
    norm = float(np.linalg.norm(vector))
    if not math.isfinite(norm) or norm == 0:
        vector = np.zeros(FEATURE_VECTOR_LENGTH)
        vector[0] = 1.0
    else:
        vector = vector / norm
    return tuple(float(v) for v in vector)


def _hues(pixels: np.ndarray, top: np.ndarray, chroma: np.ndarray) -> np.ndarray:
    """HSV hue in 0-1 of (n, 3) 0-1 RGB pixels (0 where chroma is 0)."""
    r, g, b = pixels[:, 0], pixels[:, 1], pixels[:, 2]
    safe = np.where(chroma > 0, chroma, 1.0)
    hue = np.where(
        top == r, ((g - b) / safe) % 6, np.where(top == g, (b - r) / safe + 2, (r - g) / safe + 4)
    )
    return np.where(chroma > 0, hue / 6, 0.0)


def _percent(share: float) -> str:
    """A share as a rounded percentage for prose."""
    if share < 0.01:
        return "under 1%"
    return f"about {round(share * 100)}%"


def summarize(features: ImageFeatures) -> str:
    """One or two factual sentences about ``features`` for the LLM prompt."""
    size = f"A {features.width}x{features.height} {features.orientation} image"
    main = [c.name for c in features.dominant_colours if c.share >= 0.15][:3] or [
        features.dominant_colours[0].name
    ]
    colours = main[0] if len(main) == 1 else ", ".join(main[:-1]) + " and " + main[-1]
    if features.layout == "blank":
        return f"{size}, almost uniformly {colours}; it looks blank."

    if features.brightness < 0.3:
        tone = "dark"
    elif features.brightness > 0.7:
        tone = "bright"
    else:
        tone = "mid-toned"
    if features.contrast < 0.1 and features.luma_range < LOW_CONTRAST_RANGE:
        tone += " and low-contrast"
    elif features.contrast > 0.25:
        tone += " and high-contrast"
    if features.colourfulness < 5:
        colours += " (greyscale)"
    elif features.colourfulness > 80:
        colours += " (vivid colours)"

    if features.sharpness >= 500:
        detail = "sharp, with much fine detail"
    elif features.sharpness < 50:
        detail = "smooth, with little fine detail"
    else:
        detail = "some fine detail"
    if features.text_coverage > 0:
        text = f"text covers {_percent(features.text_coverage)} of it ({features.layout})"
    else:
        text = f"no text detected ({features.layout})"
    return f"{size}, {tone}, mostly {colours}; {detail}; {text}."
