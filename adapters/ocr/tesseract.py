"""OCR with the tesseract command line program: preprocessing, layout and language, word boxes.

``TesseractOcr.recognize`` loads the image with ``adapters.imaging.decode_image`` (EXIF
orientation applied, transparency laid on a contrasting ground, a big JPEG decoded reduced
by DCT scaling as far as the text size allows), prepares it with OpenCV
(``adapters.ocr.preprocess``: polarity, illumination, working resolution from the text size),
then reads it:

* ``auto`` language: an ``eng`` pass; unless it read confidently on every line, a
  ``chi_sim+eng`` pass too, and the better read wins (a mostly English page keeps its Chinese
  line); the share of CJK characters among the letters names the language;
* a poor read gets more candidates, the best one wins: tesseract's orientation detection
  (OSD, ``tesseract-ocr-osd``) for a page turned 90/180/270 degrees without EXIF, and
  ``chi_sim_vert`` (page segmentation mode 5) for Chinese written top to bottom;
* a long image (a scrolling screenshot) is cut into overlapping bands read in parallel on
  the cores; each word is kept from the one band that holds its centre away from the cut,
  so the text comes back once and in order;
* tall images and bands are read as one column (page segmentation mode 4, not 3): the
  automatic layout analysis read a chat screenshot's labels apart from their texts;
* on a big working image (``CHECKED_PIXELS`` or more) a caller's ``text_check`` (``auto``:
  RapidOCR's text detector) is asked before those extra passes, which cost seconds there:
  when it finds no text, the first pass's read stands (a 12 MP text-free photo's texture
  was read four times, 15-19 s, for nothing).

Words go through the garbage filter (``adapters.ocr.filtering``); confidences are 0-1. One
deadline covers loading, preprocessing and every tesseract call; running out of it is a
``PermanentError`` naming the image and its size (a retry would time out again).
Tesseract runs through pytesseract (``image_to_data``, TSV; ``image_to_osd``), except the
first pass, which is started before the image is prepared and fed on stdin
(``adapters.ocr.ahead``: its model loads meanwhile).
"""

from __future__ import annotations

import itertools
import math
import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import pytesseract
from PIL import Image

from adapters.errors import ConfigError, PermanentError, TransientError
from adapters.imaging import DEFAULT_MAX_PIXELS, Decoded, decode_image
from adapters.ocr.ahead import (
    PASS_OPTIONS,
    PassAhead,
    TesseractExit,
    claim,
    claim_read,
    first_pack,
    layout_psm,
    park_read,
    upright_size,
)
from adapters.ocr.base import OcrLanguage, OcrResult, WordBox
from adapters.ocr.filtering import (
    TESSERACT_MIN_CONFIDENCE,
    cjk_share,
    join_words,
    language_of,
    looks_like_text,
    split_words,
)
from adapters.ocr.preprocess import ANALYSIS_PIXELS, Deadline, Prepared, estimate_skew, prepare

__all__ = ["CHECKED_PIXELS", "INSTALL_HINT", "TesseractOcr", "estimate_skew"]

INSTALL_HINT = (
    "apt-get install tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-sim "
    "tesseract-ocr-chi-sim-vert tesseract-ocr-osd"
)
_LANGUAGE_PACKS = {"en": "eng", "zh": "chi_sim+eng"}
_LANGUAGE_ALIASES = {
    "auto": "auto",
    "en": "en",
    "eng": "en",
    "zh": "zh",
    "chi_sim": "zh",
    "chi_sim+eng": "zh",
}
_OCR_PSMS = frozenset({1, *range(3, 14)})  # 0 and 2 only analyse the layout
_GOOD_READ = 0.75  # mean confidence of a read that needs no other candidate
_NO_TEXT_SEEN = "the text check found no text, other passes skipped"
_OSD_MIN_CONFIDENCE = 1.5  # tesseract's orientation confidence worth acting on
_BAND_PX = 1800  # band height of a long image, working pixels
_BAND_OVERLAP_PX = 160  # must exceed twice the tallest line
_LONG_ASPECT = 6.0  # height / width above which (and over 2 bands) an image is cut
_BANDS_PER_WORKER = 2
# Working pixels from which the extra passes (chi_sim+eng, OSD, chi_sim_vert) cost seconds
# each (~0.25 s per megapixel and pass here) and a caller's text check is asked first.
CHECKED_PIXELS = 4_000_000


_LONE_LETTER = re.compile(r"[A-Za-z][.,:;?!)]?")  # "B", "C.", "A?": rescued on sure lines


@dataclass(frozen=True)
class _Word(WordBox):
    """One word row of tesseract's TSV output, in prepared-image pixels (not yet upright)."""

    line_key: tuple[int, ...]  # band, block, paragraph, line


@dataclass(frozen=True)
class _Start:
    """A read's first steps: the image decoded and prepared, its first pass started."""

    decoded: Decoded
    deadline: Deadline  # started with the read: it covers every step
    ahead: PassAhead | None  # the first pass's tesseract (None for a long image)
    prepared: Prepared | None  # None when the preparation ran out of time ...
    timed_out: TimeoutError | None  # ... with this

    def close(self) -> None:
        """Stop the first pass's tesseract if it still runs (a read that was not made)."""
        if self.ahead is not None:
            self.ahead.close()


@dataclass(frozen=True)
class _Read:
    """One candidate reading of the prepared image."""

    words: list[_Word]
    pack: str
    language: str  # "en" | "zh"
    how: str
    psm: int  # the page segmentation mode it was read in

    @property
    def score(self) -> float:
        """Confidence-weighted characters of word-like words: more confident text wins."""
        return sum(
            len(w.text) * w.confidence
            for w in self.words
            if w.confidence >= 0.5 and looks_like_text(w.text)
        )

    @property
    def good(self) -> bool:
        """True when the read is confident enough that no other candidate is tried."""
        real = [w for w in self.words if looks_like_text(w.text)]
        if len(real) < 2:
            return False
        return sum(w.confidence for w in real) / len(real) >= _GOOD_READ


class TesseractOcr:
    """``OcrEngine`` on tesseract 5: English (``eng``) and Simplified Chinese (``chi_sim``)."""

    def __init__(
        self,
        *,
        threads: int = 1,
        deskew: bool = False,
        timeout_s: float = 60.0,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        min_confidence: float = TESSERACT_MIN_CONFIDENCE,
        psm: int = 3,
        preprocess: bool = True,
        osd: bool = True,
        workers: int | None = None,
    ) -> None:
        """Configure the engine; nothing runs until ``recognize``.

        Args:
            threads: tesseract's OMP_THREAD_LIMIT (1 is fastest when calls run in parallel);
                pytesseract hands the process environment to tesseract, so it is set
                process-wide.
            deskew: undo a tilt of up to 10 degrees before reading.
            timeout_s: seconds one ``recognize`` may take, loading and preprocessing included.
            max_pixels: images with more pixels are refused (decompression bombs).
            min_confidence: 0-1; words below it are dropped as garbage.
            psm: tesseract's page segmentation mode for the horizontal passes. With the
                default, 3 (automatic layout), tall images (height at least twice the width:
                phone and scrolling screenshots) and the bands of a long image are read in
                mode 4, one column: mode 3 split a chat screenshot's "Message N:" labels
                from their texts and read all labels first.
            preprocess: False hands the grayscale image to tesseract as it is.
            osd: try tesseract's orientation detection when a read is poor.
            workers: bands of a long image read at once (default: the CPU count).

        Raises:
            ConfigError: a setting is out of range.
        """
        if threads < 1:
            raise ConfigError(f"OCR threads must be >= 1, got {threads}")
        if timeout_s <= 0:
            raise ConfigError(f"OCR timeout must be > 0 seconds, got {timeout_s}")
        if psm not in _OCR_PSMS:
            raise ConfigError(
                f"tesseract page segmentation mode must be 1 or 3-13 (modes that read text), "
                f"got {psm}"
            )
        if not 0 <= min_confidence <= 1:
            raise ConfigError(f"OCR min_confidence is 0-1, got {min_confidence}")
        self.threads = threads
        self.deskew = deskew
        self.timeout_s = timeout_s
        self.max_pixels = max_pixels
        self.min_confidence = min_confidence
        self.psm = psm
        self.preprocess = preprocess
        self.osd = osd
        self.workers = workers or os.cpu_count() or 1
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

    def _ask_version(self) -> None:
        """Learn ``version`` in the background; a broken tesseract is reported by the read."""
        try:
            _ = self.version
        except BaseException:  # pytesseract raises SystemExit on an unparsable version
            return

    def recognize(
        self,
        image_path: Path,
        language: OcrLanguage | str = "auto",
        *,
        text_check: Callable[[], bool] | None = None,
    ) -> OcrResult:
        """Read the text in ``image_path``.

        Args:
            image_path: the image file.
            language: auto, en or zh (tesseract's names eng, chi_sim are accepted too).
            text_check: asked, only for a working image of ``CHECKED_PIXELS`` or more
                whose first pass read poorly, whether the image holds text at all; False
                skips the extra passes and keeps the first read. It may be asked twice
                (before the ``chi_sim+eng`` pass and before OSD): remember the answer.

        Returns:
            The kept text (empty when nothing readable was found), its language, the kept
            and dropped word boxes with 0-1 confidences, and what was done in ``details``.

        Raises:
            InputError: the file is missing or not a usable image.
            ConfigError: unknown language, tesseract or a language pack missing.
            PermanentError: the time limit ran out (the message names the image, its size
                and what to do), or tesseract rejected the image.
            TransientError: tesseract crashed or could not be started.
        """
        try:
            wanted = _LANGUAGE_ALIASES[language]
        except KeyError:
            raise ConfigError(
                f"unknown OCR language {language!r}; use auto, en or zh (eng, chi_sim)"
            ) from None
        if self._version is None:  # ask ``tesseract --version`` while the image is prepared
            threading.Thread(
                target=self._ask_version, name="tesseract-version", daemon=True
            ).start()
        start: _Start | None = claim_read(self._read_key(image_path, wanted))
        if start is None:
            start = self._start(image_path, wanted, Deadline(self.timeout_s))
        try:
            if start.timed_out is not None:
                raise start.timed_out
            assert start.prepared is not None  # prepared unless it timed out
            read, prepared = self._read(
                start.prepared, wanted, start.deadline, start.ahead, text_check
            )
        except TimeoutError as exc:
            width, height = start.decoded.full_size
            raise PermanentError(
                f"{image_path}: OCR did not finish within {self.timeout_s:g} s on this "
                f"{width}x{height}-pixel image (stopped while {exc or 'reading'}); crop it to "
                "the text or cut it into parts, or raise the OCR timeout (NARRATE_OCR_TIMEOUT)"
            ) from None
        finally:
            start.close()
        details = {
            "preprocessing": ", ".join(prepared.steps) or "none",
            "psm": str(read.psm),
            "tesseract_lang": read.pack,
            "language_detection": read.how,
        }
        return self._result(read, prepared, details)

    def read_ahead(self, image_path: Path, language: OcrLanguage | str = "auto") -> None:
        """Start reading ``image_path`` now, on a thread; ``recognize`` picks the work up.

        For ``narrate describe``, which calls it at start-up, before its settings and
        pipeline are imported: the image is decoded and prepared, and its first tesseract
        pass fed, on a thread while the caller imports on the other core. The next
        ``recognize(image_path, language)`` of an engine configured like this one (built
        later from the settings) takes over from there, or starts afresh when the file,
        the language or a setting that shapes those steps differs. The result is the same
        either way; the time limit counts from this call. Only JPEG and PNG files are read
        ahead: what reading them imports is imported here, before the thread starts
        (``adapters.ocr.ahead.upright_size``); other formats load Pillow plugins on first
        use and are read when asked, as before.

        Args:
            image_path: the image file.
            language: auto, en or zh, as ``recognize`` will be asked.
        """
        wanted = _LANGUAGE_ALIASES.get(language)
        key = self._read_key(image_path, wanted or "")
        if wanted is None or key is None or upright_size(image_path) is None:
            return  # not JPEG or PNG, or ``recognize`` will report what is wrong
        park_read(key, lambda: self._start(image_path, wanted, Deadline(self.timeout_s), feed=True))

    def _read_key(self, image_path: Path, wanted: str) -> tuple[object, ...] | None:
        """What a read's first steps depend on: the file, the language, this engine's settings.

        None when the file cannot be looked at (``recognize`` reports why).
        """
        try:
            stat = os.stat(image_path)
        except OSError:
            return None
        file = (os.fspath(image_path), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
        knobs = (self.max_pixels, self.preprocess, self.deskew, self.timeout_s, self.psm)
        return (*file, wanted, *knobs, self.threads, pytesseract.pytesseract.tesseract_cmd)

    def _start(
        self, image_path: Path, wanted: str, deadline: Deadline, *, feed: bool = False
    ) -> _Start:
        """Decode and prepare the image; start the first pass's tesseract beside that.

        ``feed``: hand the prepared image to that pass too, when it will read it.

        Raises:
            InputError: the file is missing or not a usable image.
        """
        # A big JPEG is decoded at 1/2, 1/4 or 1/8 (DCT scaling) as long as the estimates
        # keep their pixels; a finer decode follows only when the text needs it.
        decoded = decode_image(
            image_path, mode="L", min_pixels=ANALYSIS_PIXELS, max_pixels=self.max_pixels
        )

        def finer(scale: float) -> Image.Image:
            return decode_image(
                image_path,
                mode="L",
                min_pixels=math.ceil(scale * scale * decoded.full_size[0] * decoded.full_size[1]),
                max_pixels=self.max_pixels,
            ).image

        # The first pass's tesseract loads its model (~0.1 s) while the image is prepared;
        # a long image is read in bands instead, each by its own process.
        width, height = decoded.image.size
        ahead = (
            None
            if height > _LONG_ASPECT * width
            else claim(
                first_pack(wanted),
                self._layout_psm(width, height),
                command=pytesseract.pytesseract.tesseract_cmd,
            )
        )
        try:
            prepared = prepare(
                decoded.image,
                normalise=self.preprocess,
                deskew=self.deskew,
                deadline=deadline,
                full_size=decoded.full_size,
                finer=finer,
            )
        except TimeoutError as exc:
            return _Start(decoded, deadline, ahead, None, exc)
        except BaseException:
            if ahead is not None:
                ahead.close()
            raise
        rows, columns = prepared.image.shape
        if (
            feed
            and ahead is not None
            and not self._banded(rows, columns)
            and ahead.serves(first_pack(wanted), self._layout_psm(columns, rows))
        ):
            ahead.feed(_pgm_bytes(prepared.image))  # what ``_read``'s first pass will send
        return _Start(decoded, deadline, ahead, prepared, None)

    def _layout_psm(self, width: int, height: int, *, banded: bool = False) -> int:
        """The page segmentation mode for horizontal text in a ``width`` x ``height`` image.

        See ``adapters.ocr.ahead.layout_psm``: tall images and bands are read as one column.
        """
        return layout_psm(self.psm, width, height, banded=banded)

    @staticmethod
    def _banded(height: int, width: int) -> bool:
        """True when a prepared image this size is read in bands (a long image)."""
        return height > _LONG_ASPECT * width and height > 2 * _BAND_PX

    # -- reading -------------------------------------------------------------------------

    def _read(
        self,
        prepared: Prepared,
        wanted: str,
        deadline: Deadline,
        ahead: PassAhead | None = None,
        text_check: Callable[[], bool] | None = None,
    ) -> tuple[_Read, Prepared]:
        """The best reading of ``prepared`` and the (possibly turned) image it refers to.

        ``ahead``, a tesseract process already started for the first upright pass, reads
        that pass when its language and mode match (a long image's bands do without it).
        ``text_check``: see ``recognize``.
        """
        height, width = prepared.image.shape
        if self._banded(height, width):
            return self._read_bands(prepared, wanted, deadline), prepared
        if text_check is not None and height * width < CHECKED_PIXELS:
            text_check = None  # the extra passes are cheap here: no need to ask
        best = self._read_upright(
            prepared.image, wanted, deadline, ahead=ahead, text_check=text_check
        )
        if not best.words and best.psm != self.psm:
            # A page lying on its side is tall too; read as one column it gives no word at
            # all, where the automatic layout reads the junk that calls for the OSD below.
            best = self._read_upright(
                prepared.image, wanted, deadline, psm=self.psm, text_check=text_check
            )
        best_prepared = prepared
        if best.good or not best.words or not self.preprocess:
            # No word at all: tesseract's layout analysis found no text, and the other
            # passes (same analysis) find none either; on text-free photos this saves
            # three passes (measured: 2.6 s, 2.8 s and 3.5 s of a 12 s read).
            return best, best_prepared
        if text_check is not None and not text_check():
            if _NO_TEXT_SEEN not in best.how:  # not yet said by the chi_sim+eng pass's skip
                best = _with_how(best, f"{best.how}; {_NO_TEXT_SEEN}")
            return best, best_prepared
        if self.osd:
            turns = self._osd_turns(prepared.image, deadline)
            if turns:
                turned = prepared.turned(turns)
                candidate = self._read_upright(turned.image, wanted, deadline)
                # Only a sure read counts: on text-free photos every extra try finds specks.
                if candidate.good and candidate.score > best.score:
                    how = f"{candidate.how}; page turned {90 * turns} deg by OSD"
                    best, best_prepared = _with_how(candidate, how), turned
        if not best.good and wanted in ("auto", "zh"):
            try:
                words = self._tesseract(prepared.image, "chi_sim_vert", deadline, psm=5)
            except ConfigError:  # tesseract-ocr-chi-sim-vert not installed
                return best, best_prepared
            candidate = _Read(words, "chi_sim_vert", "zh", "vertical Chinese (chi_sim_vert)", psm=5)
            if (
                candidate.good
                and cjk_share(_confident_text(words)) >= 0.5
                and candidate.score > best.score
            ):
                best, best_prepared = candidate, prepared
        return best, best_prepared

    def _read_upright(
        self,
        image: np.ndarray,
        wanted: str,
        deadline: Deadline,
        band: int = 0,
        *,
        banded: bool = False,
        psm: int | None = None,
        ahead: PassAhead | None = None,
        text_check: Callable[[], bool] | None = None,
    ) -> _Read:
        """Horizontal text: ``eng``, ``chi_sim+eng``, or ``auto`` (eng, then both if unsure).

        ``banded``: ``image`` is a band of a long image (read as one column); ``psm``: the
        page segmentation mode (default: ``_layout_psm``'s choice for the image);
        ``text_check``: asked before the ``chi_sim+eng`` pass, False skips it.
        """
        if psm is None:
            height, width = image.shape[:2]
            psm = self._layout_psm(width, height, banded=banded)
        if wanted != "auto":
            pack = _LANGUAGE_PACKS[wanted]
            words = self._tesseract(image, pack, deadline, psm=psm, band=band, ahead=ahead)
            return _Read(words, pack, wanted, f"asked for {wanted}", psm)
        english = _Read(
            self._tesseract(image, "eng", deadline, psm=psm, band=band, ahead=ahead),
            "eng",
            "en",
            "eng pass read confidently",
            psm,
        )
        if not english.words or _confidently_latin(english.words):
            return english
        if text_check is not None and not text_check():
            return _with_how(english, f"eng pass; {_NO_TEXT_SEEN}")
        both = self._tesseract(image, "chi_sim+eng", deadline, psm=psm, band=band)
        language = language_of(_confident_text(both))
        how = "eng and chi_sim+eng passes, the better read"
        mixed = _Read(both, "chi_sim+eng", language, how, psm)
        if mixed.score >= english.score:
            return mixed
        return _with_how(english, how)

    def _read_bands(self, prepared: Prepared, wanted: str, deadline: Deadline) -> _Read:
        """A long image in overlapping bands, read in parallel, each word kept once."""
        height = prepared.image.shape[0]
        # Two bands per worker balance the load; each tesseract start costs ~0.2 s, so no more.
        band_px = max(_BAND_PX, -(-height // (_BANDS_PER_WORKER * self.workers)) + _BAND_OVERLAP_PX)
        step = band_px - _BAND_OVERLAP_PX
        starts = list(range(0, max(1, height - _BAND_OVERLAP_PX), step))
        half = _BAND_OVERLAP_PX // 2

        def own(index: int, words: list[_Word]) -> list[_Word]:
            """The band's words whose centre lies away from its cuts, in image rows."""
            top = starts[index]
            bottom = min(height, top + band_px)
            own_top = top + (half if index > 0 else 0)
            own_bottom = bottom - (half if bottom < height else 0)
            moved = (
                _Word(w.text, w.left, w.top + top, w.width, w.height, w.confidence, w.line_key)
                for w in words
            )
            return [w for w in moved if own_top <= w.top + w.height / 2 < own_bottom]

        def band(index: int) -> np.ndarray:
            top = starts[index]
            return np.ascontiguousarray(prepared.crop_rows(top, min(height, top + band_px)))

        def read(index: int, language: str) -> _Read:
            return self._read_upright(band(index), language, deadline, index, banded=True)

        # All bands at once on the cores; the language most of the text was read in wins and
        # the few bands read otherwise (a Chinese band in an English scroll: kept) are redone.
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            reads = list(pool.map(lambda i: read(i, wanted), range(len(starts))))
            votes: dict[str, int] = {}
            for r in reads:
                votes[r.language] = votes.get(r.language, 0) + len(r.words)
            language = max(votes, key=lambda k: votes[k])
            redo = [i for i, r in enumerate(reads) if wanted == "auto" and r.language != language]
            for i, again in zip(redo, pool.map(lambda i: read(i, language), redo), strict=True):
                if again.score >= reads[i].score:
                    reads[i] = again
        words = [w for i, r in enumerate(reads) for w in own(i, r.words)]
        return _Read(
            words,
            _LANGUAGE_PACKS[language],
            language,
            f"{len(starts)} bands read in parallel",
            reads[0].psm,
        )

    def _osd_turns(self, image: np.ndarray, deadline: Deadline) -> int:
        """Quarter turns (counter-clockwise) that make the page upright, per tesseract's OSD."""
        remaining = deadline.remaining()
        if remaining <= 0:
            raise TimeoutError("detecting the orientation")
        try:
            with _pgm_file(image) as path:
                osd = pytesseract.image_to_osd(path, config="--psm 0", timeout=remaining)
        except pytesseract.TesseractError:
            return 0  # too few characters, or osd.traineddata missing: leave it as it is
        except RuntimeError as exc:
            raise TimeoutError("detecting the orientation") from exc
        fields = dict(line.split(":", 1) for line in str(osd).splitlines() if ":" in line)
        try:
            rotate = int(fields.get("Rotate", "0").strip())
            confidence = float(fields.get("Orientation confidence", "0").strip())
        except ValueError:
            return 0
        if rotate % 360 == 0 or confidence < _OSD_MIN_CONFIDENCE:
            return 0
        return (-rotate // 90) % 4  # "Rotate: 90" means turn 90 degrees clockwise

    def _tesseract(
        self,
        image: np.ndarray,
        pack: str,
        deadline: Deadline,
        *,
        psm: int | None = None,
        band: int = 0,
        ahead: PassAhead | None = None,
    ) -> list[_Word]:
        """Run tesseract on ``image`` with language pack(s) ``pack``.

        Through ``ahead`` when it was started with this pack and mode, else pytesseract.
        """
        remaining = deadline.remaining()
        if remaining <= 0:
            raise TimeoutError(f"reading with {pack}")
        psm = psm or self.psm
        try:
            pgm = _pgm_bytes(image) if ahead is not None else None
            if ahead is not None and pgm is not None and ahead.take(pack, psm, pgm):
                tsv = ahead.read(pgm, remaining)
            else:
                with _pgm_file(image) as path:
                    tsv = pytesseract.image_to_data(
                        path,
                        lang=pack,
                        config=" ".join(("--psm", str(psm), *PASS_OPTIONS)),
                        timeout=remaining,
                    )
        except pytesseract.TesseractNotFoundError as exc:
            raise ConfigError(
                "the tesseract program is not installed or not on PATH; "
                f"install it with: {INSTALL_HINT}"
            ) from exc
        except pytesseract.TesseractError as exc:
            raise _convert_tesseract_error(exc.status, str(exc.message)) from exc
        except TesseractExit as exc:
            raise _convert_tesseract_error(exc.status, exc.message) from exc
        except (RuntimeError, TimeoutError) as exc:  # pytesseract's timeout; the ahead pass's
            raise TimeoutError(f"reading with {pack}") from exc
        except OSError as exc:
            raise TransientError(f"tesseract could not be started: {exc}") from exc
        return _parse_tsv(str(tsv), band)

    def _result(self, read: _Read, prepared: Prepared, details: dict[str, str]) -> OcrResult:
        """Drop garbage, join the rest by line, and map boxes to the original image."""
        kept, dropped = _rescue_in_sure_lines(
            read.words, *split_words(read.words, self.min_confidence), self.min_confidence
        )
        details["words_dropped"] = str(len(dropped))
        lines: dict[tuple[int, ...], list[_Word]] = {}
        for word in kept:
            lines.setdefault(word.line_key, []).append(word)
        text = "\n".join(join_words([w.text for w in line]) for line in lines.values())
        if not text:
            details["no_text"] = (
                f"no readable text found ({len(dropped)} words read below confidence "
                f"{self.min_confidence:g} or not word-like)"
                if dropped
                else "no text found"
            )
        confidence = float(np.mean([w.confidence for w in kept])) if kept else 0.0
        return OcrResult(
            text=text,
            language="zh" if read.language == "zh" else "en",
            confidence=round(confidence, 4),
            boxes=_boxes(kept, prepared),
            image_size=prepared.original_size,
            engine=f"tesseract {self.version}",
            details=details,
            dropped=_boxes(dropped, prepared),
        )


def _pgm_bytes(image: np.ndarray) -> bytes:
    """``image`` (uint8 grayscale) encoded as PGM, for a pass fed on stdin."""
    ok, pgm = cv2.imencode(".pgm", image)
    if not ok:
        raise TransientError("could not encode the image for tesseract")
    return pgm.tobytes()


@contextmanager
def _pgm_file(image: np.ndarray) -> Iterator[str]:
    """``image`` (uint8 grayscale) written to a temporary PGM file, for tesseract to read.

    PGM costs about a millisecond to write where pytesseract's PNG takes ~90 ms for a
    1000x750 image; like PNG it carries no resolution, so tesseract reads it the same way
    (identical TSV output).
    """
    with tempfile.TemporaryDirectory(prefix="narrate-ocr-") as folder:
        path = os.path.join(folder, "page.pgm")
        if not cv2.imwrite(path, image):
            raise TransientError(f"could not write the image for tesseract to {path}")
        yield path


def _rescue_in_sure_lines(
    words: list[_Word], kept: list[_Word], dropped: list[_Word], min_confidence: float
) -> tuple[list[_Word], list[_Word]]:
    """Keep word-shaped words dropped for confidence alone inside lines read surely.

    Tesseract now and then gives one word of a clean line a confidence of 0 (a character
    of vertical Chinese, the last word of a line) or about 0.5 (a long number); with two or
    more sure words beside it (mean >= 0.85), or one for a token of six or more letters and
    digits read at 0.4 or more, it is text. Specks on lines of their own stay dropped.

    A lone letter read at ``min_confidence`` or more on such a line is text too: "Gate B",
    "Vitamin C", "Plan A" lost their letter (read at 0.89-0.92), which changes what is said.
    Alone on a line, or beside unsure words (a photo's texture), it stays dropped. So is a
    bar "|" followed by a lowercase word there: the pronoun "I" of a sans-serif face.
    """
    sure: dict[tuple[int, ...], list[float]] = {}
    for w in kept:
        sure.setdefault(w.line_key, []).append(w.confidence)

    def on_sure_line(w: _Word) -> bool:
        line = sure.get(w.line_key, [])
        return bool(line) and sum(line) / len(line) >= 0.85

    def beside_sure_words(w: _Word) -> bool:
        if not on_sure_line(w):
            return False
        long_token = sum(ch.isalnum() for ch in w.text) >= 6 and w.confidence >= 0.4
        return len(sure[w.line_key]) >= 2 or long_token  # "ID: 11010519491231002X" at 0.55

    def lone_letter(w: _Word) -> bool:
        return (
            bool(_LONE_LETTER.fullmatch(w.text.strip()))
            and w.confidence >= min_confidence
            and on_sure_line(w)
        )

    # The pronoun "I" in a sans-serif face is a bare bar, read "|" (0.96 in "Great, | will
    # bring the report"): on a sure line and followed by a lowercase word, it is "I".
    pronouns = {}
    dropped_ids = {id(d) for d in dropped}
    for w, after in itertools.pairwise(words):
        if (
            w.text == "|"
            and id(w) in dropped_ids
            and w.confidence >= min_confidence
            and after.line_key == w.line_key
            and after.text[:2].isalpha()
            and after.text[:1].islower()
            and on_sure_line(w)
        ):
            pronouns[id(w)] = replace(w, text="I")
    if pronouns:
        words = [pronouns.get(id(w), w) for w in words]
        dropped = [pronouns.get(id(w), w) for w in dropped]
    rescued = {
        id(w)
        for w in dropped
        if (looks_like_text(w.text) and beside_sure_words(w)) or lone_letter(w)
    }
    if not rescued:
        return kept, dropped
    keep = {id(w) for w in kept} | rescued
    return [w for w in words if id(w) in keep], [w for w in dropped if id(w) not in rescued]


def _with_how(read: _Read, how: str) -> _Read:
    return _Read(read.words, read.pack, read.language, how, read.psm)


def _boxes(words: Sequence[_Word], prepared: Prepared) -> tuple[WordBox, ...]:
    return tuple(
        WordBox(
            w.text,
            *prepared.to_original(w.left, w.top, w.width, w.height),
            round(w.confidence, 4),
        )
        for w in words
    )


def _parse_tsv(tsv: str, band: int = 0) -> list[_Word]:
    """The word rows (level 5) of tesseract's TSV output, in reading order; conf to 0-1."""
    words: list[_Word] = []
    for row in tsv.splitlines()[1:]:
        cols = row.split("\t")
        if len(cols) < 12 or cols[0] != "5" or not cols[11].strip():
            continue
        block, par, line = int(cols[2]), int(cols[3]), int(cols[4])
        left, top, width, height = (int(c) for c in cols[6:10])
        confidence = max(0.0, float(cols[10])) / 100.0
        words.append(
            _Word(cols[11].strip(), left, top, width, height, confidence, (band, block, par, line))
        )
    return words


def _confidently_latin(words: list[_Word]) -> bool:
    """True when an ``eng`` pass read real text with high confidence on every line.

    Chinese characters read by the English model come out as runs of junk words with low
    confidence, so a page with Chinese on it (even one line) fails the test and gets a
    ``chi_sim+eng`` pass; one or two unsure specks (edges in a photo) do not.
    """
    read = [w for w in words if w.text.strip()]
    if len(read) < 3:
        return False
    mean = sum(w.confidence for w in read) / len(read)
    if mean < 0.75:
        return False
    unsure_chars: dict[tuple[int, ...], int] = {}
    for w in read:
        if w.confidence < 0.5:
            unsure_chars[w.line_key] = unsure_chars.get(w.line_key, 0) + len(w.text)
    # A Chinese line read as Latin is a run of unsure junk; a speck at a photo's edge is short.
    return all(count < 4 for count in unsure_chars.values())


def _confident_text(words: Sequence[_Word]) -> str:
    """The confidently read words' text, run together (for ``cjk_share``, ``language_of``)."""
    return "".join(w.text for w in words if w.confidence >= 0.5)


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
