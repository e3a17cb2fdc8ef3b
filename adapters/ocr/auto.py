"""``auto`` OCR: tesseract with narrate's preprocessing first, RapidOCR when that read is unsure.

The choice follows the measurements in bench/README.md ("OCR on real-world inputs"): on the
generated photos, screenshots and pages tesseract with narrate's preprocessing read as much as
RapidOCR (PP-OCRv6) or more, at a half to a third of the CPU time, and RapidOCR read vertical
Chinese and some photos more surely. So:

* tesseract reads first (long images in parallel bands);
* when its read is unsure (kept text with mean confidence under ``SURE``, nothing kept
  although word-like text was read and dropped, or no word read at all), RapidOCR reads too
  and the read with more confident text wins. Tesseract's layout analysis finds no word at
  all in some legible photos (a sign tilted 6 degrees, a dithered GIF: a new user's trial),
  so "no text" is only said when both engines found none (or RapidOCR's read there has no
  two letters in a line: digits alone from a text-free photo's texture are not text), and
  an unsure read without two letters in a line is no text either;
* a sure read, or one whose words were all junk (not word-like: text-free photos), stands
  alone, unless its lines run ``TILTED_DEG`` or more off the horizontal (the median slope
  between neighbouring words): on signs photographed 7-10 degrees askew tesseract read two to
  four of six lines at 0.92-0.97 confidence and nothing said a line was missing, so RapidOCR
  (which read them all) reads too and the read with more confident text wins;
* a sure read (or one whose words were all junk) is also checked for text it left out
  (``AutoOcr._left_out``): words it read and dropped as unsure that look like words and
  hold ``DROPPED_SHARE`` of the characters it kept ("咖啡 ¥12.50" dropped from a Chinese
  price list at 0.49-0.73; "Exit" and "this" of a big bold "Exit this way", kept "way" at
  0.96), or, on images under 4 MP, a line RapidOCR's text detector finds that no kept word
  covers (``_covered``): the grey "On"/"Off" values of a dark settings screen, of which
  tesseract read every label at 0.96 and no value; "欢迎光临" read "欢迎"; white on red read
  as nothing. RapidOCR's recogniser reads just those lines (milliseconds): where it reads
  nothing word-like (a battery icon) tesseract's read stands; else what it read is added to
  tesseract's read where it stands (``_merged``: tesseract's words stay, as RapidOCR's whole
  read of a dark settings screen gave "Off" as "HO"). Dropped words send RapidOCR to read the
  whole image, and the read with more confident text wins. The detector costs 0.05-0.35 s
  of wall time on a screenshot, run on a copy whose text is ~12 px tall (bench/README.md,
  "Sure reads that left text out"); on big photos it would cost more than tesseract's
  whole read, so they get the dropped-words check only;
* on a photo of ``GLANCE_PIXELS`` or more (1.5 MP) RapidOCR first takes a glance (a read
  at a shorter side of 736 px, ~1 s of CPU for 12 MP instead of 5-11 s at the size the
  text-size estimate asks for). The costly extra reads (RapidOCR's full read; from
  ``CHECKED_PIXELS``, 4 MP, also tesseract's ``chi_sim+eng``, OSD and ``chi_sim_vert``
  passes at full size) are made only when the glance saw text (a line of two letters or
  more, read at ``HINT`` or more); where it saw none, tesseract's first read is weighed as
  it stands (so an unsure read without letters is no text). A sure glance is RapidOCR's
  read; only an unsure one is followed by the full read. A 12 MP text-free photo cost
  15-25 s before, its texture read four times by tesseract and once by RapidOCR
  (bench/README.md, "Text-free 12 MP photos (session 6)"); a 3 MP photo of blurred noise
  8 s and 765 MB, read whole at twice its size, before glances started at 1.5 MP (3.1 s,
  382 MB).

Both engines are built once and reused; ``details["engine_choice"]`` says what was done.
"""

from __future__ import annotations

import functools
import math
import statistics
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from adapters.imaging import DEFAULT_MAX_PIXELS
from adapters.ocr.base import OcrLanguage, OcrResult, WordBox
from adapters.ocr.filtering import (
    RAPIDOCR_MIN_CONFIDENCE,
    TESSERACT_MIN_CONFIDENCE,
    join_words,
    language_of,
    looks_like_text,
)
from adapters.ocr.tesseract import CHECKED_PIXELS, TesseractOcr

if TYPE_CHECKING:
    from adapters.ocr.rapidocr import RapidOcr

LONG_ASPECT = 6.0  # RapidOCR's detector shrinks such images and loses their lines
SURE = 0.85  # tesseract's mean kept-word confidence above which its read stands alone
HINT = 0.45  # a dropped word-like word at least this sure hints at text worth a second read
NO_TEXT_GLANCED = "rapidocr's glance saw no text, no second read"
# Lines of a sure tesseract read this steep (degrees) call for RapidOCR too: measured on
# generated signs (bench/README.md, session 6), partial sure reads sloped 6.3-7.4 degrees,
# complete ones of straight and 3-5 degree tilted signs 0-5.1.
TILTED_DEG = 5.5
# A sure read leaves text out (``AutoOcr._left_out``) when dropped word-like words hold this
# share of the kept characters, or when a line RapidOCR's detector finds with a box score of
# FOUND_SURE or more is less than COVERED covered by kept words.
DROPPED_SHARE = 0.1
# From this many pixels RapidOCR glances (GLANCE_SHORT_SIDE_PX) before a whole read: a new
# user's 3 MP photo of blurred noise cost 8 s and 765 MB, read whole at twice its size (its
# texture taken for small text); under ~1.5 MP a glance is nearly the whole read.
GLANCE_PIXELS = 1_500_000
FOUND_SURE = 0.6
COVERED = 0.5


class AutoOcr:
    """``OcrEngine`` that picks RapidOCR or tesseract per image (see the module docstring)."""

    def __init__(
        self,
        *,
        threads: int = 1,
        deskew: bool = False,
        timeout_s: float = 60.0,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        min_confidence: float | None = None,
        rapidocr_threads: int | None = None,
    ) -> None:
        """Configure both engines; nothing loads until ``recognize`` or ``warm_up``.

        Args:
            threads: tesseract's OMP_THREAD_LIMIT.
            deskew: tesseract deskews before reading.
            timeout_s: seconds each engine may take on one image.
            max_pixels: images with more pixels are refused.
            min_confidence: 0-1; words and lines below it are dropped as garbage (default:
                each engine's own, chosen on the labelled set).
            rapidocr_threads: RapidOCR's onnxruntime intra-op threads (default: the CPU
                count).
        """
        self.tesseract = TesseractOcr(
            threads=threads,
            deskew=deskew,
            timeout_s=timeout_s,
            max_pixels=max_pixels,
            min_confidence=TESSERACT_MIN_CONFIDENCE if min_confidence is None else min_confidence,
        )
        self._rapidocr_options = {
            "timeout_s": timeout_s,
            "max_pixels": max_pixels,
            "min_confidence": RAPIDOCR_MIN_CONFIDENCE if min_confidence is None else min_confidence,
            "threads": rapidocr_threads,
        }
        self.max_pixels = max_pixels

    @functools.cached_property
    def rapidocr(self) -> RapidOcr:
        """The RapidOCR engine, its module imported when first asked (a sure read never is)."""
        from adapters.ocr.rapidocr import RapidOcr

        return RapidOcr(**self._rapidocr_options)  # type: ignore[arg-type]

    def warm_up(self) -> None:
        """Load RapidOCR's models now (about 1 s) rather than on the first unsure image."""
        self.rapidocr.warm_up()

    def recognize(self, image_path: Path, language: OcrLanguage | str = "auto") -> OcrResult:
        """Read the text in ``image_path`` with the engine (or both) that suits it.

        Args:
            image_path: the image file.
            language: auto, en or zh.

        Returns:
            The chosen engine's result; ``details["engine_choice"]`` says why.

        Raises:
            InputError, ConfigError, PermanentError, TransientError: as the engines raise them.
        """
        glanced: list[OcrResult] = []

        def glance() -> OcrResult:
            """RapidOCR's read at a 736-px shorter side (made once, when first needed)."""
            if not glanced:
                rapidocr = self.rapidocr  # imports adapters.ocr.rapidocr
                from adapters.ocr.rapidocr import GLANCE_SHORT_SIDE_PX

                glanced.append(
                    rapidocr.recognize(image_path, language, short_side_px=GLANCE_SHORT_SIDE_PX)
                )
            return glanced[0]

        def text_seen() -> bool:
            return _saw_text(glance())

        page = self.tesseract.recognize(image_path, language, text_check=text_seen)
        unsure_text = page.has_text and page.confidence < SURE
        hidden_text = not page.has_text and any(
            b.confidence >= HINT and looks_like_text(b.text) for b in page.dropped
        )
        no_word = not page.boxes and not page.dropped
        tilted = (
            page.has_text
            and not unsure_text
            and not _turned(page)
            and _tilt_deg(page) >= TILTED_DEG
        )
        missed: list[WordBox] = []  # lines the detector found that the sure read left out
        if not (unsure_text or hidden_text or no_word or tilted):
            if _is_long(page.image_size):
                return _noted(page, "tesseract")
            left_out, missed = self._left_out(page, image_path)
            if not left_out:
                return _noted(page, "tesseract")
            why = f"sure, but {left_out}"
        elif _is_long(page.image_size):
            return _noted(page, "tesseract (long image)")
        else:
            why = (
                "unsure"
                if unsure_text
                else "nothing kept"
                if hidden_text
                else "no word read"
                if no_word
                else f"sure, lines tilted {_tilt_deg(page):.1f} deg"
            )
        if missed:
            read = self._read_there(image_path, missed)
            if not read:
                # a status bar's battery icon, a logo: "text" to the detector, nothing to read
                return _noted(page, f"tesseract ({why}; rapidocr read nothing there either)")
            merged = _merged(page, read, language)
            if merged is not None:
                return _noted(merged, f"tesseract + rapidocr ({why}; rapidocr read {len(read)})")
        glance_first = _glance_first(page.image_size)
        if glance_first and not text_seen():
            chosen = _noted(page, f"tesseract ({why}; {NO_TEXT_GLANCED})")
            return _as_noise(chosen) if _noise(chosen) else chosen
        at_a_glance = glance_first and glance().has_text and glance().confidence >= SURE
        scene = glance() if at_a_glance else self.rapidocr.recognize(image_path, language)
        if no_word and not _has_letters(scene):
            # Where tesseract saw no word, a lone "4," or "1" from RapidOCR is the texture of
            # a text-free photo (a new user's 12 MP landscape), not a sign to read aloud.
            return _noted(page, "tesseract (no word read; rapidocr read no letters either)")
        if _score(scene) > _score(page):
            how = "its glance" if at_a_glance else "both read"
            chosen = _noted(scene, f"rapidocr (tesseract {why}; {how}, rapidocr read more)")
        else:
            chosen = _noted(page, f"tesseract ({why}; both read, tesseract read more)")
        return _as_noise(chosen) if _noise(chosen) else chosen

    def _read_there(self, image_path: Path, lines: list[WordBox]) -> list[WordBox]:
        """What RapidOCR's recogniser reads in ``lines``, sure enough, its word-like tokens."""
        floor = float(self._rapidocr_options["min_confidence"])  # type: ignore[arg-type]
        read = []
        for line in self.rapidocr.read_lines(image_path, lines):
            # a settings row's chevron read with its value ("On >"): the value alone
            text = " ".join(token for token in line.text.split() if looks_like_text(token))
            if line.confidence >= floor and text:
                read.append(replace(line, text=text))
        return read

    def _left_out(self, page: OcrResult, image_path: Path) -> tuple[str, list[WordBox]]:
        """Why a sure (or surely text-free) tesseract read leaves text out, and where.

        Returns ``("", [])`` when it does not, else the reason and the lines found unread:

        * Word-like words it read at ``HINT`` or more but dropped hold at least
          ``DROPPED_SHARE`` of the characters it kept (any size of image);
        * or, below ``CHECKED_PIXELS``, RapidOCR's detector finds a line (box score
          ``FOUND_SURE`` or more) that the kept words cover less than ``COVERED`` of
          (``_covered``).
        """
        dropped = sum(
            len(b.text) for b in page.dropped if b.confidence >= HINT and looks_like_text(b.text)
        )
        if dropped and dropped >= DROPPED_SHARE * sum(len(b.text) for b in page.boxes):
            return f"{dropped} word-like characters were dropped", []
        if _is_big(page.image_size):
            return "", []
        heights = [b.height for b in page.boxes]
        found = [
            line
            for line in self.rapidocr.find_lines(
                image_path, text_px=statistics.median(heights) if heights else None
            )
            if line.confidence >= FOUND_SURE
        ]
        missed = [line for line in found if _covered(line, page.boxes) < COVERED]
        if not missed:
            return "", []
        return f"{len(missed)} of {len(found)} text lines found were not read", missed


def _merged(page: OcrResult, read: list[WordBox], language: str) -> OcrResult | None:
    """``page`` with the lines RapidOCR read where it had left text out, in reading order.

    Tesseract's words stay as read (it reads dense text better: a settings screen's "Off"
    that RapidOCR read "HO"); each line read is put where it stands: among the words of the
    line beside it, else as a line of its own above the first line below it. Tesseract's
    words inside the line's box give way, in whatever line its layout put them ("欢迎" read
    of "欢迎光临"; an "On" tesseract had put in a column of values, said twice otherwise).
    None when the text's lines cannot be matched to the words (then the reads are compared
    whole).
    """
    lines = _lines_of(page)
    if lines is None:
        return None
    for added in sorted(read, key=lambda b: (b.top, b.left)):
        middle_y = added.top + added.height / 2
        for line in lines:  # what tesseract read inside it, wherever its layout put it
            line[:] = [w for w in line if not _inside(w, added)]
        beside = [line for line in lines if _spans(line, middle_y)]
        if beside:
            line = beside[0]
            line.insert(sum(w.left + w.width / 2 < added.left + added.width / 2 for w in line),
                        added)  # fmt: skip
            continue
        below = [i for i, line in enumerate(lines) if _top(line) > middle_y]
        lines.insert(below[0] if below else len(lines), [added])
    lines = [line for line in lines if line]
    boxes = tuple(w for line in lines for w in line)
    text = "\n".join(join_words([w.text for w in line]) for line in lines)
    result_language = language_of(text) if language == "auto" else page.language
    details = {**page.details, "lines_added": str(len(read))}
    details.pop("no_text", None)
    return replace(
        page,
        text=text,
        language=result_language,
        confidence=round(statistics.fmean(w.confidence for w in boxes), 4),
        boxes=boxes,
        engine=f"{page.engine} + rapidocr",
        details=details,
    )


def _lines_of(page: OcrResult) -> list[list[WordBox]] | None:
    """The kept words of ``page`` grouped as the lines of its text (words are in text order)."""
    words, lines = list(page.boxes), []
    for text_line in page.text.splitlines():
        want, got, line = text_line.replace(" ", ""), "", []
        while words and len(got) < len(want):
            line.append(words.pop(0))
            got += line[-1].text.replace(" ", "")
        if got != want:
            return None
        lines.append(line)
    return lines if not words else None


def _spans(line: list[WordBox], y: float) -> bool:
    return bool(line) and _top(line) < y < max(w.top + w.height for w in line)


def _top(line: list[WordBox]) -> float:
    return min(w.top for w in line) if line else math.inf


def _inside(word: WordBox, line: WordBox) -> bool:
    """Is ``word``'s centre inside ``line``'s box?"""
    x, y = word.left + word.width / 2, word.top + word.height / 2
    return line.left <= x <= line.left + line.width and line.top <= y <= line.top + line.height


def _covered(line: WordBox, words: tuple[WordBox, ...]) -> float:
    """The share (0-1) of a found line's length that ``words`` cover.

    The detector's boxes are grown around the text by DBNet's unclip rule (offset
    ``d = A * 1.6 / L`` for a text region of area ``A`` and perimeter ``L``; Liao et al.,
    "Real-time Scene Text Detection with Differentiable Binarization", AAAI 2020, eq. 9,
    unclip ratio 1.6 as RapidOCR sets it): the text's own extent is taken back out first,
    so that a line read whole counts as covered whatever its length. Length runs along the
    box's longer side (a vertical Chinese column's is its height); a word counts where it
    overlaps the middle half of the line across.
    """
    wide, tall = float(line.width), float(line.height)
    # the text's w x h grown by d on each side is the box: d = 1.6 (W-2d)(H-2d) / (2 (W+H-4d)),
    # i.e. 14.4 d^2 - 5.2 (W+H) d + 1.6 W H = 0, whose smaller root is the offset
    total = wide + tall
    offset = (5.2 * total - math.sqrt(max(0.0, 27.04 * total**2 - 92.16 * wide * tall))) / 28.8
    w, h = max(1.0, wide - 2 * offset), max(1.0, tall - 2 * offset)
    x0, y0 = line.left + (wide - w) / 2, line.top + (tall - h) / 2
    along_x = w >= h
    start, length = (x0, w) if along_x else (y0, h)
    band0, band = (y0 + h / 4, h / 2) if along_x else (x0 + w / 4, w / 2)
    spans: list[tuple[float, float]] = []
    for word in words:
        across0, across = (word.top, word.height) if along_x else (word.left, word.width)
        if across0 < band0 + band and across0 + across > band0:
            lo, size = (word.left, word.width) if along_x else (word.top, word.height)
            spans.append((max(start, lo), min(start + length, lo + size)))
    covered, reach = 0.0, start
    for low, high in sorted(spans):
        if high > max(low, reach):
            covered, reach = covered + high - max(low, reach), high
    return covered / length


def _glance_first(size: tuple[int, int]) -> bool:
    """Does RapidOCR glance before it reads this image whole (``GLANCE_PIXELS`` or more)?"""
    return size[0] * size[1] >= GLANCE_PIXELS


def _is_big(size: tuple[int, int]) -> bool:
    return size[0] * size[1] >= CHECKED_PIXELS


def _tilt_deg(result: OcrResult) -> float:
    """How steeply the read's lines run, in degrees: the median slope between neighbours.

    Neighbours are consecutive word boxes (reading order) where the second starts right of
    the first's middle, less than a word's height above or below it; 0 when there is none.
    """
    slopes = []
    for a, b in zip(result.boxes, result.boxes[1:], strict=False):
        ax, ay = a.left + a.width / 2, a.top + a.height / 2
        bx, by = b.left + b.width / 2, b.top + b.height / 2
        if b.left > ax and bx > ax and abs(by - ay) < max(a.height, b.height):
            slopes.append(abs(by - ay) / (bx - ax))
    return math.degrees(math.atan(statistics.median(slopes))) if slopes else 0.0


def _turned(result: OcrResult) -> bool:
    """Did tesseract turn the page upright (OSD) before reading it?

    Its word boxes are then given on the image as stored, where a turned page's lines run
    down or up: their slope says nothing of a tilt. A page turned 90 degrees measured 36-39
    degrees, and RapidOCR's read, in the wrong line order, replaced tesseract's sure one.
    """
    return "turned" in result.details.get("preprocessing", "")


def _saw_text(glance: OcrResult) -> bool:
    """Did a glance read (kept or dropped) a line of two letters or more at ``HINT`` or more?

    A text-free photo's glance reads nothing or lone marks ("1", "六" from poles and
    branches); a sign's reads its lines.
    """
    lines = (*glance.boxes, *glance.dropped)
    return any(b.confidence >= HINT and sum(ch.isalpha() for ch in b.text) >= 2 for b in lines)


def _noise(result: OcrResult) -> bool:
    """An unsure read without two letters in a line (a lone "4," from a photo's texture)."""
    return result.has_text and result.confidence < SURE and not _has_letters(result)


def _is_long(size: tuple[int, int]) -> bool:
    width, height = size
    return height > LONG_ASPECT * max(1, width)


def _has_letters(result: OcrResult) -> bool:
    """Does a kept line hold two letters or more (Latin or CJK), not only digits and marks?"""
    return any(sum(ch.isalpha() for ch in box.text) >= 2 for box in result.boxes)


def _as_noise(result: OcrResult) -> OcrResult:
    """``result`` with its kept words moved to ``dropped``: no text.

    For an unsure read of digits and marks alone, as tesseract reads "4," at 0.83 in the
    texture of a 12 MP text-free photo.
    """
    details = {**result.details, "no_text": "only an unsure number or mark was read"}
    details["engine_choice"] += "; an unsure read without letters is no text"
    dropped = result.dropped + result.boxes
    return replace(result, text="", confidence=0.0, boxes=(), dropped=dropped, details=details)


def _score(result: OcrResult) -> float:
    """Confidence-weighted characters of the kept text."""
    return sum(len(b.text) * b.confidence for b in result.boxes)


def _noted(result: OcrResult, choice: str) -> OcrResult:
    result.details["engine_choice"] = choice
    return result
