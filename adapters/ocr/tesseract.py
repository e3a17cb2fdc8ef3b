"""OCR with the tesseract command line program: preprocessing, language detection, word boxes.

``TesseractOcr.recognize`` loads the image with ``adapters.imaging.load_image`` (EXIF
orientation applied), then prepares it for tesseract:

1. grayscale;
2. illumination normalisation when the lighting is uneven: divide by the paper's brightness,
   estimated by a morphological closing (max then min filter) of a downsampled copy, then
   clamp the paper to white so that amplified sensor noise does not reach tesseract;
3. optional deskew: a projection-profile search over small angles;
4. 2x upscaling when the estimated text height is small.

Tesseract runs through pytesseract (``image_to_data``, TSV) with a timeout counted down
across the calls of one ``recognize``; its errors become narrate errors here. Word boxes are
mapped back to the coordinates of the original (upright) image.
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytesseract
from PIL import Image, ImageFilter

from adapters.errors import ConfigError, PermanentError, TransientError
from adapters.imaging import DEFAULT_MAX_PIXELS, load_image
from adapters.ocr.base import OcrLanguage, OcrResult, WordBox

INSTALL_HINT = "apt-get install tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-sim"
_LANGUAGE_PACKS = {"en": "eng", "zh": "chi_sim+eng"}
_LANGUAGE_ALIASES = {
    "auto": "auto",
    "en": "en",
    "eng": "en",
    "zh": "zh",
    "chi_sim": "zh",
    "chi_sim+eng": "zh",
}
_CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f]")
_SMALL_TEXT_HEIGHT = 8  # px of estimated x-height; smaller text is upscaled 2x (measured)
_UPSCALE_PIXEL_BUDGET = 40_000_000
_OCR_PSMS = frozenset({1, *range(3, 14)})  # 0 and 2 only analyse the layout
_EVEN_LIGHT_RATIO = 0.75  # darkest/brightest paper above this: lighting is even enough


@dataclass(frozen=True)
class _Prepared:
    """The image handed to tesseract and how to map its pixels back to the original."""

    image: Image.Image  # mode L
    original_size: tuple[int, int]
    angle: float  # degrees, counter-clockwise, applied before scaling (expand=True)
    rotated_size: tuple[int, int]
    scale: float
    steps: tuple[str, ...]

    def to_original(
        self, left: int, top: int, width: int, height: int
    ) -> tuple[int, int, int, int]:
        """Map a box of the prepared image to a box of the original image, clipped to it."""
        xs = np.array([left, left + width, left, left + width], dtype=np.float64) / self.scale
        ys = np.array([top, top, top + height, top + height], dtype=np.float64) / self.scale
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


class TesseractOcr:
    """``OcrEngine`` on tesseract 5: English (``eng``) and Simplified Chinese (``chi_sim``)."""

    def __init__(
        self,
        *,
        threads: int = 1,
        deskew: bool = False,
        timeout: float = 60.0,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        min_confidence: float = 30.0,
        psm: int = 3,
        preprocess: bool = True,
    ) -> None:
        """Configure the engine; nothing runs until ``recognize``.

        ``threads`` is tesseract's OMP_THREAD_LIMIT (1 is fastest when calls run in parallel);
        pytesseract hands the process environment to tesseract, so it is set process-wide.
        ``timeout`` the seconds one ``recognize`` may take, ``min_confidence`` (0-100) drops
        junk words, ``psm`` is tesseract's page segmentation mode, ``preprocess=False`` hands
        the grayscale image to tesseract as it is.
        """
        if threads < 1:
            raise ConfigError(f"OCR threads must be >= 1, got {threads}")
        if timeout <= 0:
            raise ConfigError(f"OCR timeout must be > 0 seconds, got {timeout}")
        if psm not in _OCR_PSMS:
            raise ConfigError(
                f"tesseract page segmentation mode must be 1 or 3-13 (modes that read text), "
                f"got {psm}"
            )
        self.threads = threads
        self.deskew = deskew
        self.timeout = timeout
        self.max_pixels = max_pixels
        self.min_confidence = min_confidence
        self.psm = psm
        self.preprocess = preprocess
        os.environ["OMP_THREAD_LIMIT"] = str(threads)
        self._version: str | None = None
        self._version_lock = threading.Lock()

    @property
    def version(self) -> str:
        """The tesseract version, e.g. ``5.3.0`` (runs ``tesseract --version`` once)."""
        with self._version_lock:
            if self._version is None:
                try:
                    self._version = str(pytesseract.get_tesseract_version())
                except pytesseract.TesseractNotFoundError:
                    self._version = "unknown"
            return self._version

    def recognize(self, image_path: Path, language: OcrLanguage | str = "auto") -> OcrResult:
        """Read the text in ``image_path``; ``language`` is auto, en or zh (or eng, chi_sim)."""
        try:
            wanted = _LANGUAGE_ALIASES[language]
        except KeyError:
            raise ConfigError(
                f"unknown OCR language {language!r}; use auto, en or zh (eng, chi_sim)"
            ) from None
        deadline = time.monotonic() + self.timeout
        original = load_image(image_path, max_pixels=self.max_pixels)
        prepared = self._prepare(original)
        details = {
            "preprocessing": ", ".join(prepared.steps) or "none",
            "psm": str(self.psm),
        }
        if wanted == "auto":
            # English first: when the eng pass reads confidently, one pass is enough. Other
            # text (Chinese read as Latin is junk with low confidence) gets a chi_sim pass,
            # and the share of CJK characters decides.
            words, pack, result_language = (
                self._tesseract(prepared.image, "eng", deadline),
                "eng",
                "en",
            )
            details["language_detection"] = "eng pass read confidently"
            if not _confidently_latin(words):
                chinese = self._tesseract(prepared.image, "chi_sim", deadline)
                details["language_detection"] = "eng and chi_sim passes, share of CJK characters"
                if _cjk_share(chinese) >= 0.3:
                    words, pack, result_language = chinese, "chi_sim", "zh"
        else:
            result_language = wanted
            pack = _LANGUAGE_PACKS[wanted]
            words = self._tesseract(prepared.image, pack, deadline)
        details["tesseract_lang"] = pack
        return self._result(words, prepared, result_language, details)

    def _prepare(self, rgb: Image.Image) -> _Prepared:
        """Grayscale, even out the light, deskew, upscale small text."""
        gray = rgb.convert("L")
        steps = ["grayscale"]
        angle, scale = 0.0, 1.0
        rotated_size = gray.size
        if self.preprocess:
            gray, evened = normalize_illumination(gray)
            if evened:
                steps.append("illumination normalised")
            if self.deskew:
                angle = estimate_skew(gray)
                if angle:
                    gray = gray.rotate(
                        angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255
                    )
                    steps.append(f"deskewed {angle:+.1f} deg")
            rotated_size = gray.size
            height = estimate_text_height(gray)
            fits = gray.width * gray.height * 4 <= _UPSCALE_PIXEL_BUDGET
            if height is not None and height < _SMALL_TEXT_HEIGHT and fits:
                scale = 2.0
                gray = gray.resize((gray.width * 2, gray.height * 2), Image.Resampling.LANCZOS)
                steps.append(f"upscaled 2x (text ~{height:.0f} px high)")
        return _Prepared(gray, rgb.size, angle, rotated_size, scale, tuple(steps))

    def _tesseract(self, image: Image.Image, pack: str, deadline: float) -> list[_Word]:
        """Run tesseract (through pytesseract) on ``image`` with language pack(s) ``pack``."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TransientError(f"tesseract: OCR took longer than {self.timeout:g} s")
        try:
            tsv = pytesseract.image_to_data(
                image, lang=pack, config=f"--psm {self.psm}", timeout=remaining
            )
        except pytesseract.TesseractNotFoundError as exc:
            raise ConfigError(
                "the tesseract program is not installed or not on PATH; "
                f"install it with: {INSTALL_HINT}"
            ) from exc
        except pytesseract.TesseractError as exc:
            raise _convert_tesseract_error(exc.status, str(exc.message)) from exc
        except RuntimeError as exc:  # pytesseract's "Tesseract process timeout"
            raise TransientError(
                f"tesseract did not finish within {self.timeout:g} s (raise the OCR timeout "
                "or downscale the image)"
            ) from exc
        except OSError as exc:
            raise TransientError(f"tesseract could not be started: {exc}") from exc
        return _parse_tsv(str(tsv))

    def _result(
        self,
        words: list[_Word],
        prepared: _Prepared,
        language: str,
        details: dict[str, str],
    ) -> OcrResult:
        """Drop junk words, join the rest by line, and map boxes to the original image."""
        kept = [w for w in words if w.confidence >= self.min_confidence and _is_real(w)]
        details["words_dropped"] = str(len(words) - len(kept))
        lines: dict[tuple[int, int, int], list[_Word]] = {}
        for word in kept:
            lines.setdefault(word.line_key, []).append(word)
        text = "\n".join(_join_words([w.text for w in line]) for line in lines.values())
        boxes = tuple(
            WordBox(w.text, *prepared.to_original(w.left, w.top, w.width, w.height), w.confidence)
            for w in kept
        )
        confidence = float(np.mean([w.confidence for w in kept])) if kept else 0.0
        return OcrResult(
            text=text,
            language="zh" if language == "zh" else "en",
            confidence=round(confidence, 2),
            boxes=boxes,
            image_size=prepared.original_size,
            engine=f"tesseract {self.version}",
            details=details,
        )


@dataclass(frozen=True)
class _Word:
    """One word row of tesseract's TSV output, in prepared-image pixels."""

    text: str
    left: int
    top: int
    width: int
    height: int
    confidence: float
    line_key: tuple[int, int, int]  # block, paragraph, line


def _parse_tsv(tsv: str) -> list[_Word]:
    """The word rows (level 5) of tesseract's TSV output, in reading order."""
    words: list[_Word] = []
    for row in tsv.splitlines()[1:]:
        cols = row.split("\t")
        if len(cols) < 12 or cols[0] != "5" or not cols[11].strip():
            continue
        block, par, line = int(cols[2]), int(cols[3]), int(cols[4])
        left, top, width, height = (int(c) for c in cols[6:10])
        words.append(
            _Word(cols[11].strip(), left, top, width, height, float(cols[10]), (block, par, line))
        )
    return words


def _is_real(word: _Word) -> bool:
    """False for punctuation-only specks that tesseract reads in textures and noise."""
    return any(ch.isalnum() for ch in word.text) or word.confidence >= 80


def _confidently_latin(words: list[_Word]) -> bool:
    """True when an ``eng`` pass read real text with high confidence throughout.

    Chinese characters read by the English model come out as short junk words with low
    confidence, so a page with Chinese on it fails the test and gets a ``chi_sim`` pass.
    """
    read = [w for w in words if w.text.strip()]
    if len(read) < 3:
        return False
    unsure = sum(1 for w in read if w.confidence < 60) / len(read)
    mean = sum(w.confidence for w in read) / len(read)
    return unsure <= 0.2 and mean >= 75


def _cjk_share(words: list[_Word]) -> float:
    """The share of CJK characters among the characters of confidently read words."""
    chars = "".join(w.text for w in words if w.confidence >= 50)
    return len(_CJK.findall(chars)) / len(chars) if chars else 0.0


def _join_words(words: list[str]) -> str:
    """Join one line's words: a space between words, none next to a CJK character."""
    out = ""
    for word in words:
        if out and not (_CJK.match(out[-1]) or _CJK.match(word[0])):
            out += " "
        out += word
    return out


def normalize_illumination(gray: Image.Image) -> tuple[Image.Image, bool]:
    """Even out uneven lighting by dividing by the estimated paper brightness.

    Returns the image and whether it was changed (evenly lit images are returned as they are).
    The paper is a closing (max, then min filter) of a 4x-downsampled copy, which removes the
    text while following shadows; dividing by it makes the paper ~1 and the ink ~its contrast.
    The paper is then clamped to white below the noise level, so noise in dark corners,
    amplified by the division, does not turn into specks that derail tesseract's layout.
    """
    factor = 4 if min(gray.size) >= 64 else 1
    small = gray.resize(
        (max(1, gray.width // factor), max(1, gray.height // factor)), Image.Resampling.BOX
    )
    window = max(31, max(gray.size) // 20)
    k = max(3, (window // factor) | 1)
    paper_small = small.filter(ImageFilter.MaxFilter(k)).filter(ImageFilter.MinFilter(k))
    paper_small = paper_small.filter(ImageFilter.GaussianBlur(1))
    levels = np.percentile(np.asarray(paper_small, dtype=np.float64), [2, 98])
    if levels[1] <= 0 or levels[0] / levels[1] >= _EVEN_LIGHT_RATIO:
        return gray, False
    paper = np.asarray(paper_small.resize(gray.size, Image.Resampling.BILINEAR), np.float64)
    smooth = np.asarray(gray.filter(ImageFilter.GaussianBlur(0.7)), dtype=np.float64)
    ratio = np.clip(smooth / np.maximum(paper, 1.0), 0.0, 1.0)
    threshold = _otsu(ratio)
    background = ratio[ratio > threshold]
    if background.size == 0:
        return gray, False
    median = float(np.median(background))
    noise = 1.4826 * float(np.median(np.abs(background - median)))
    white = max(threshold + 0.05, median - 3.0 * noise)
    black = float(np.percentile(ratio, 0.5))
    stretched = np.clip((ratio - black) / max(white - black, 1e-3), 0.0, 1.0)
    return Image.fromarray((stretched * 255).astype(np.uint8), mode="L"), True


def _otsu(values: np.ndarray) -> float:
    """Otsu's threshold of ``values`` in [0, 1]."""
    hist, edges = np.histogram(values, bins=256, range=(0.0, 1.0))
    p = hist.astype(np.float64) / max(hist.sum(), 1)
    omega = np.cumsum(p)
    mu = np.cumsum(p * np.arange(256))
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mu[-1] * omega - mu) ** 2 / (omega * (1.0 - omega))
    return float(edges[int(np.nanargmax(between)) + 1]) if np.isfinite(between).any() else 0.5


def _ink_mask(gray: Image.Image) -> np.ndarray:
    """True where a pixel is darker than Otsu's threshold: the ink."""
    values = np.asarray(gray, dtype=np.float64) / 255.0
    return values < _otsu(values)


def estimate_text_height(gray: Image.Image) -> float | None:
    """The median height in pixels of the text lines (runs of rows rich in ink), or None."""
    ink = _ink_mask(gray)
    if not ink.any():
        return None
    share = ink.mean(axis=1)  # ink per row; noise and margins give a floor to rise above
    floor, top = np.percentile(share, [10, 95])
    if top - floor < 0.01:
        return None
    rows = share > floor + 0.3 * (top - floor)
    runs: list[int] = []
    length = 0
    for has_ink in rows:
        if has_ink:
            length += 1
        elif length:
            runs.append(length)
            length = 0
    if length:
        runs.append(length)
    runs = [r for r in runs if r >= 4]
    return float(np.median(runs)) if runs else None


def estimate_skew(gray: Image.Image, *, max_angle: float = 10.0) -> float:
    """The rotation (degrees, counter-clockwise) that makes text lines horizontal.

    Searches the angle whose horizontal projection profile of the ink is sharpest (text lines
    and gaps alternate), coarse then fine, on a copy about 800 px wide.
    """
    factor = max(1.0, max(gray.size) / 800)
    small = gray.resize(
        (max(1, round(gray.width / factor)), max(1, round(gray.height / factor))),
        Image.Resampling.BILINEAR,
    )
    ink = Image.fromarray((_ink_mask(small) * 255).astype(np.uint8), mode="L")

    def sharpness(angle: float) -> float:
        rotated = ink.rotate(angle, resample=Image.Resampling.BILINEAR, expand=True)
        profile = np.asarray(rotated, dtype=np.float64).sum(axis=1)
        return float(np.sum(np.diff(profile) ** 2))

    coarse = np.arange(-max_angle, max_angle + 0.01, 1.0)
    best = max(coarse, key=sharpness)
    fine = np.arange(best - 1.0, best + 1.01, 0.1)
    best = max(fine, key=sharpness)
    return 0.0 if abs(best) < 0.2 else round(float(best), 1)


def _convert_tesseract_error(status: int, message: str) -> Exception:
    """The narrate error for a tesseract run that exited with ``status``."""
    if "Failed loading language" in message or "Error opening data file" in message:
        first = message.strip().splitlines()[0] if message.strip() else message
        return ConfigError(
            f"tesseract lacks a language pack ({first}); install it with: {INSTALL_HINT}"
        )
    if status < 0:  # killed by a signal: out of memory, interrupted
        return TransientError(f"tesseract crashed (signal {-status}): {message}")
    return PermanentError(f"tesseract failed (exit code {status}): {message}")
