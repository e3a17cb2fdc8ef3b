"""OCR with RapidOCR: PaddleOCR's PP-OCR detection and recognition models on onnxruntime.

``rapidocr`` (PyPI) ships the PP-OCRv6 small detection and recognition models and the
direction classifier inside its wheel, so it runs offline with no download
(github.com/RapidAI/RapidOCR). It is a scene-text engine: it finds text lines anywhere in a
photo or screenshot, reads light-on-dark text and vertical Chinese as they are, and reads
English and Simplified Chinese with one model.

``RapidOcr.recognize`` loads the image with ``adapters.imaging.load_image``, scales it so the
text is about 32 px high (the text size is estimated on a small copy by
``adapters.ocr.preprocess``; a 12 MP phone photo shrinks ~3x, which is most of the speed),
runs the engine with its detector told not to enlarge the image again (its own rule
enlarges any image whose shorter side is under 736 px: a 400x160 banner cost 0.8 s instead
of 0.08, and a narrow page read 0.75 of its words instead of all; bench/README.md, session
8), orders vertical columns right to left (RapidOCR returns them left to right) and maps
the line boxes back to the original pixels. Each ``WordBox`` is one text line.
Lines go through the same garbage filter as tesseract's words.

``recognize(..., short_side_px=736)`` is a glance instead: the image decoded reduced and
read at a shorter side of 736 px, the size RapidOCR's detector works at by its own
configuration (``Det.limit_side_len``, ``limit_type: min``), whatever the text size. On a
12 MP photo it costs 0.85-1.5 s of CPU instead of 5-11 s, and it is how ``auto``
learns whether a big photo holds text at all (bench/README.md, "Text-free 12 MP photos").
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from adapters.errors import ConfigError, PermanentError, TransientError
from adapters.imaging import DEFAULT_MAX_PIXELS, decode_image
from adapters.ocr.base import OcrLanguage, OcrResult, WordBox
from adapters.ocr.filtering import CJK, RAPIDOCR_MIN_CONFIDENCE, language_of, split_words
from adapters.ocr.preprocess import Deadline, prepare

INSTALL_HINT = "pip install rapidocr onnxruntime"
TARGET_TEXT_PX = 32.0  # line height the detector and recogniser read best at (measured)
SMALL_TEXT_PX = 12.0  # text below this height is enlarged (at most 2x)
MAX_SIDE_PX = 4000  # RapidOCR downsizes anything larger itself; keep boxes in our hands
MAX_ASPECT = 20  # longer/shorter side; beyond it RapidOCR fails (100x30000: ResizeImgError)
# RapidOCR's Det.limit_side_len with limit_type "min": its detector enlarges any image whose
# shorter side is below this, so a glance at this size is the cheapest full read it makes.
GLANCE_SHORT_SIDE_PX = 736
# ``find_lines`` runs the detector alone on a copy whose text is about FIND_TEXT_PX tall (never
# enlarged), its longer side at most FIND_MAX_SIDE_PX; the detector's own rule (shorter side
# enlarged to 736) made a 700x160 banner 3220x736 and cost 3.5 CPU s.
FIND_TEXT_PX = 12.0  # 0.14-0.65 CPU s on screenshots; 24 px cost 0.4-2 s, found no more lines
FIND_MAX_SIDE_PX = 1280


class RapidOcr:
    """``OcrEngine`` on RapidOCR (PP-OCRv6 small models, onnxruntime, CPU)."""

    def __init__(
        self,
        *,
        threads: int | None = None,
        timeout_s: float = 60.0,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        min_confidence: float = RAPIDOCR_MIN_CONFIDENCE,
    ) -> None:
        """Configure the engine; the models load on first use or in ``warm_up``.

        Args:
            threads: onnxruntime intra-op threads (default: the CPU count). One call runs
                at a time per engine (see ``recognize``), so these are the cores one read may
                use; with 1, onnxruntime starts no thread pool of its own (nothing spins).
            timeout_s: seconds one ``recognize`` may take; checked between steps (onnxruntime
                cannot be interrupted mid-inference).
            max_pixels: images with more pixels are refused (decompression bombs).
            min_confidence: 0-1; lines below it are dropped as garbage.

        Raises:
            ConfigError: a setting is out of range.
        """
        if timeout_s <= 0:
            raise ConfigError(f"OCR timeout must be > 0 seconds, got {timeout_s}")
        if not 0 <= min_confidence <= 1:
            raise ConfigError(f"OCR min_confidence is 0-1, got {min_confidence}")
        self.threads = threads or os.cpu_count() or 1
        self.timeout_s = timeout_s
        self.max_pixels = max_pixels
        self.min_confidence = min_confidence
        self._engine: Any = None
        self._lock = threading.Lock()  # RapidOCR.__call__ mutates its parameters

    def warm_up(self) -> None:
        """Import rapidocr and load its models now (about 1 s) instead of on the first image.

        rapidocr 3 builds each ONNX session on its first use: the detector, the direction
        classifier (when used) and the recogniser are built here.

        Raises:
            ConfigError: rapidocr or onnxruntime is not installed.
        """
        with self._lock:
            engine = self._load()
            engine._load_det_model()
            if engine.use_cls:
                engine._load_cls_model()
            engine._load_rec_model()

    def _load(self) -> Any:
        if self._engine is None:
            try:
                from rapidocr import RapidOCR
            except ImportError as exc:
                raise ConfigError(
                    f"the rapidocr OCR engine is not installed ({exc}); install it with: "
                    f"{INSTALL_HINT}"
                ) from exc
            logging.getLogger("RapidOCR").setLevel(logging.ERROR)  # "detection result is empty"
            self._engine = RapidOCR(
                params={
                    "Global.log_level": "error",
                    "Global.text_score": 0.0,  # keep every line: our filter decides
                    "Global.max_side_len": MAX_SIDE_PX,
                    "EngineConfig.onnxruntime.intra_op_num_threads": self.threads,
                    "EngineConfig.onnxruntime.inter_op_num_threads": 1,
                }
            )
        return self._engine

    @property
    def version(self) -> str:
        """The rapidocr package version."""
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("rapidocr")
        except PackageNotFoundError:
            return "unknown"

    def find_lines(self, image_path: Path, text_px: float | None = None) -> list[WordBox]:
        """Where the text lines are, without reading them: RapidOCR's detector (DBNet) alone.

        ``auto`` checks a sure tesseract read against it: a line found here that no kept word
        covers was left out. Costs 0.05-0.3 CPU s on a screenshot, besides loading the models
        once (about 1 s).

        Args:
            image_path: the image file.
            text_px: the text's height in the image's pixels when known (e.g. the median
                height of tesseract's words): the copy is shrunk so that it is about
                ``FIND_TEXT_PX`` (the cost falls with the square of the scale).

        Returns:
            One ``WordBox`` per line found, its ``text`` empty and ``confidence`` the
            detector's 0-1 box score, in original pixels; empty when none was found.

        Raises:
            InputError: the file is missing or not a usable image.
            ConfigError: rapidocr is not installed.
            PermanentError: the detector failed on this image.
        """
        decoded = decode_image(image_path, max_pixels=self.max_pixels)
        width, height = decoded.full_size
        scale = min(1.0, FIND_MAX_SIDE_PX / max(width, height))
        if text_px:
            scale = min(scale, FIND_TEXT_PX / text_px)
        image = np.asarray(decoded.image)
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        with self._lock, _detector_limit(self._load(), "max", FIND_MAX_SIDE_PX) as detector:
            try:
                output = detector(image)
            except Exception as exc:
                raise PermanentError(
                    f"{image_path}: RapidOCR's text detector failed on this {width}x{height}-"
                    f"pixel image ({type(exc).__name__}: {exc or 'no message'})"
                ) from exc
        boxes = getattr(output, "boxes", None)
        scores = getattr(output, "scores", None) or ()
        if boxes is None:
            return []
        return [
            WordBox("", *_quad_box(quad, scale, width, height), float(score))
            for quad, score in zip(boxes, scores, strict=False)
        ]

    def read_lines(self, image_path: Path, lines: list[WordBox]) -> list[WordBox]:
        """Read the given line boxes (``find_lines``'s) with the recogniser alone.

        Each box is cut out of the image and read as one line (a box twice as tall as wide
        is turned a quarter first, as PP-OCR turns vertical crops): a few milliseconds per
        line, against seconds for a whole read of a screenshot.

        Args:
            image_path: the image file.
            lines: boxes in original pixels.

        Returns:
            One ``WordBox`` per box, its text as read (stripped) and the 0-1 confidence;
            nothing is filtered.

        Raises:
            InputError: the file is missing or not a usable image.
            ConfigError: rapidocr is not installed.
            PermanentError: the recogniser failed on this image.
        """
        if not lines:
            return []
        image = np.asarray(decode_image(image_path, max_pixels=self.max_pixels).image)
        crops = []
        for box in lines:
            crop = image[
                box.top : box.top + max(1, box.height), box.left : box.left + max(1, box.width)
            ]
            crops.append(
                np.ascontiguousarray(np.rot90(crop) if box.height >= 2 * box.width else crop)
            )
        with self._lock:
            try:
                output = self._load().recognize_txt(crops)
            except Exception as exc:
                raise PermanentError(
                    f"{image_path}: RapidOCR's recogniser failed on {len(crops)} lines of this "
                    f"image ({type(exc).__name__}: {exc or 'no message'})"
                ) from exc
        texts = getattr(output, "txts", None) or ()
        scores = getattr(output, "scores", None) or ()
        return [
            WordBox(str(text).strip(), box.left, box.top, box.width, box.height, float(score))
            for box, text, score in zip(lines, texts, scores, strict=False)
        ]

    def recognize(
        self,
        image_path: Path,
        language: OcrLanguage | str = "auto",
        *,
        short_side_px: int | None = None,
    ) -> OcrResult:
        """Read the text in ``image_path``.

        Args:
            image_path: the image file.
            language: auto, en or zh; one model reads both, so this only names the result's
                language when it is not auto.
            short_side_px: read a copy whose shorter side is this many pixels (never
                enlarged; a big JPEG decoded reduced, so that side may come out a little
                shorter for a panorama) instead of the size the text calls for: a glance.
                Default: the text-size rule of the module docstring.

        Returns:
            The kept lines (empty text when nothing readable was found), the language (zh
            when at least 30% of the characters are CJK), line boxes with 0-1 confidences.

        Raises:
            InputError: the file is missing or not a usable image.
            ConfigError: unknown language, or rapidocr is not installed.
            PermanentError: the time limit ran out (the message names the image and its
                size) or the engine failed on this image.
            TransientError: onnxruntime ran out of memory.
        """
        if language not in ("auto", "en", "zh", "eng", "chi_sim"):
            raise ConfigError(f"unknown OCR language {language!r}; use auto, en or zh")
        deadline = Deadline(self.timeout_s)
        glance = short_side_px is not None
        decoded = decode_image(
            image_path,
            # a JPEG decoded at 1/2-1/8 as long as the glance's copy keeps its pixels (4:3)
            min_side=math.ceil(short_side_px * 4 / 3) if short_side_px is not None else 0,
            max_pixels=self.max_pixels,
        )
        original = decoded.image
        width, height = decoded.full_size
        if max(width, height) > MAX_ASPECT * min(width, height):
            raise PermanentError(
                f"{image_path}: RapidOCR cannot read a {width}x{height}-pixel image (sides "
                f"more than {MAX_ASPECT}:1 apart; its detector would shrink the text away); "
                "use the tesseract engine (NARRATE_OCR_ENGINE=tesseract or auto), which reads "
                "long images in bands"
            )
        try:
            if short_side_px is not None:
                scale = min(1.0, short_side_px / min(width, height))
            else:
                text_px = prepare(original, deadline=deadline).text_height_px
                scale = _scale_for(text_px, width, height)
            image = original
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            if size != original.size:
                method = cv2.INTER_AREA if size[0] < original.width else cv2.INTER_CUBIC
                image = Image.fromarray(
                    cv2.resize(np.asarray(original), size, interpolation=method)
                )
            deadline.check("loading the models")
            with self._lock:
                engine = self._load()
                deadline.check("reading")
                if glance:
                    output = engine(image)
                else:
                    # Scaled for its text already: the detector is not to enlarge it again
                    # (its own rule took a 737x177 banner to 3065x736: 1.7 s instead of 0.1)
                    with _detector_limit(engine, "max", MAX_SIDE_PX):
                        output = engine(image)
        except TimeoutError as exc:
            raise PermanentError(
                f"{image_path}: OCR did not finish within {self.timeout_s:g} s on this "
                f"{width}x{height}-pixel image (stopped while {exc}); crop it to the text or "
                "cut it into parts, or raise the OCR timeout (NARRATE_OCR_TIMEOUT)"
            ) from None
        except MemoryError as exc:
            raise TransientError(f"{image_path}: RapidOCR ran out of memory") from exc
        except ConfigError:
            raise
        except Exception as exc:
            raise PermanentError(
                f"{image_path}: RapidOCR failed on this {width}x{height}-pixel image "
                f"({type(exc).__name__}: {exc or 'no message'}); very long or thin images "
                "are read better by the tesseract engine (NARRATE_OCR_ENGINE=tesseract)"
            ) from exc
        lines = _lines(output, scale, width, height)
        kept, dropped = split_words(lines, self.min_confidence)
        text = "\n".join(w.text for w in kept)
        details = {
            "preprocessing": f"scaled {scale:.2f}x" if scale != 1.0 else "none",
            "read_size": f"{image.width}x{image.height}" + (" (glance)" if glance else ""),
            "layout": "vertical" if _vertical(lines) else "horizontal",
            "lines_dropped": str(len(dropped)),
        }
        if not text:
            details["no_text"] = (
                f"no readable text found ({len(dropped)} lines read below confidence "
                f"{self.min_confidence:g} or not word-like)"
                if dropped
                else "no text found"
            )
        if language in ("en", "eng"):
            result_language = "en"
        elif language in ("zh", "chi_sim"):
            result_language = "zh"
        else:
            result_language = language_of(text)
        confidence = float(np.mean([w.confidence for w in kept])) if kept else 0.0
        return OcrResult(
            text=text,
            language="zh" if result_language == "zh" else "en",
            confidence=round(confidence, 4),
            boxes=tuple(kept),
            image_size=(width, height),
            engine=f"rapidocr {self.version}",
            details=details,
            dropped=tuple(dropped),
        )


@contextmanager
def _detector_limit(engine: Any, limit_type: str, side_px: int) -> Iterator[Any]:
    """RapidOCR's detector, resizing by ``limit_type``/``side_px`` for the calls made inside.

    The detector reads ``limit_type`` and ``limit_side_len`` on each call (rapidocr 3:
    ``TextDetector.get_preprocess``); its configuration says "min", 736: any image whose
    shorter side is below 736 px is enlarged to it. "max" only shrinks an image whose longer
    side is over ``side_px`` (sizes rounded to the network's multiple of 32 either way).
    Loads the detector (rapidocr 3 loads each model on first use). Hold the engine's lock.
    """
    detector = engine.text_det or engine._load_det_model()
    saved = detector.limit_type, detector.limit_side_len
    detector.limit_type, detector.limit_side_len = limit_type, side_px
    try:
        yield detector
    finally:
        detector.limit_type, detector.limit_side_len = saved


def _scale_for(text_px: float | None, width: int, height: int) -> float:
    """Scale that brings the text to ~``TARGET_TEXT_PX``: shrink big text, enlarge small text."""
    if text_px is None:
        # No text size to go by: keep the detector's working size sensible, and never shrink
        # the short side below 64 px (RapidOCR would blow a sliver back up, using gigabytes).
        longest, shortest = max(width, height), min(width, height)
        if longest <= 1600:
            return 1.0
        return round(min(1.0, max(1600 / longest, 64 / max(1, shortest))), 3)
    scale = TARGET_TEXT_PX / text_px
    if scale > 1:
        # Only truly small text is enlarged: on photos without text the size estimate comes
        # from texture, and enlarging those cost 4x the time for nothing (measured).
        if text_px >= SMALL_TEXT_PX:
            return 1.0
        return round(min(scale, 2.0, math.sqrt(20_000_000 / max(1, width * height))), 3)
    return 1.0 if scale >= 0.8 else round(scale, 3)


def _quad_box(quad: Any, scale: float, width: int, height: int) -> tuple[int, int, int, int]:
    """The upright box around a detector quad, in original pixels: left, top, width, height.

    ``quad``: 4 corners in pixels of the copy at ``scale``; clipped to the ``width`` x
    ``height`` image.
    """
    pts = np.asarray(quad, dtype=np.float64) / scale
    x0 = int(np.clip(math.floor(pts[:, 0].min()), 0, width))
    y0 = int(np.clip(math.floor(pts[:, 1].min()), 0, height))
    x1 = int(np.clip(math.ceil(pts[:, 0].max()), 0, width))
    y1 = int(np.clip(math.ceil(pts[:, 1].max()), 0, height))
    return x0, y0, x1 - x0, y1 - y0


def _lines(output: Any, scale: float, width: int, height: int) -> list[WordBox]:
    """RapidOCR's lines as ``WordBox`` in original pixels, in reading order."""
    boxes = getattr(output, "boxes", None)
    texts = getattr(output, "txts", None) or ()
    scores = getattr(output, "scores", None) or ()
    if boxes is None or not len(texts):
        return []
    lines = []
    for quad, text, score in zip(boxes, texts, scores, strict=False):
        box = _quad_box(quad, scale, width, height)
        lines.append(WordBox(str(text).strip(), *box, float(score)))
    if _vertical(lines):  # columns of vertical text are read right to left
        lines.sort(key=lambda b: (-(b.left + b.width / 2), b.top))
    return lines


def _vertical(lines: list[WordBox]) -> bool:
    """True when most lines are tall, narrow columns of CJK text."""
    cjk = [b for b in lines if CJK.search(b.text) and len(b.text) >= 2]
    if not cjk:
        return False
    tall = sum(1 for b in cjk if b.height > 2 * b.width)
    return tall > len(cjk) / 2
