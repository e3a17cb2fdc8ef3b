"""Tesseract processes started before their image is ready, loading the model meanwhile.

Tesseract loads its language model before it reads its input: about 0.1 s of one core for
``eng`` (measured here: ``tesseract stdin -`` on an empty input exits after 0.11-0.12 s).
``tesseract stdin stdout -l PACK --psm N tsv`` then waits for the image on stdin, so a pass
can be started first and fed later. Fed a PGM, it writes the same TSV as pytesseract's
``image_to_data`` on the PGM file (compared byte for byte on the 12 MP sign of
``bench/ocr.py``).

Two places start one:

* ``TesseractOcr.recognize`` starts its first pass when the image is decoded, so the model
  loads while the image is prepared (every call, batch included: the same work, earlier);
* ``park`` starts one at the very beginning of ``narrate describe``, before Python has
  imported narrate's settings and libraries (~0.3 s on one core while the other is idle),
  in the page segmentation mode the image's shape calls for (``layout_psm``: a tall image
  is read as one column). ``claim`` hands it to the engine only when it was started
  exactly as the engine would start its own (language pack, page segmentation mode,
  program, ``OMP_THREAD_LIMIT``, ``TESSDATA_PREFIX``); otherwise it is stopped and a fresh
  one started. An unclaimed pass is stopped at exit; if the process dies, tesseract reads
  end-of-file and exits.

A pass can also be fed before anyone asks for its TSV (``PassAhead.feed``): ``narrate
describe`` prepares its first image and hands it to tesseract on a thread of its own while
the settings and the pipeline are imported (``park_read``, ``claim_read``; the engine's
side is ``TesseractOcr.read_ahead``).

Only the standard library is imported here, so that ``park`` costs nothing before it runs.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Hashable
from typing import Any

__all__ = [
    "PASS_OPTIONS",
    "PassAhead",
    "TesseractExit",
    "claim",
    "claim_read",
    "first_pack",
    "layout_psm",
    "park",
    "park_read",
]

# Every read pass runs with these. Tesseract 5 reads a line again inverted when it read it
# poorly (``tessedit_do_invert``, on by default); narrate's preprocessing already turns light
# text dark (adapters.ocr.preprocess), so the second try only costs time.
PASS_OPTIONS = ("-c", "tessedit_do_invert=0")
TALL_ASPECT = 2.0  # height / width from which a page is read as one column (phone screenshots)
ONE_COLUMN_PSM = 4  # tesseract: "a single column of text of variable sizes"


class TesseractExit(Exception):
    """Tesseract exited with an error: ``status`` (negative: killed by that signal), ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"tesseract exited with status {status}: {message}")
        self.status = status
        self.message = message


def first_pack(language: str) -> str:
    """The language pack of a read's first pass: ``eng`` for ``auto`` and ``en``, else both.

    ``language`` is narrate's (auto, en, zh); ``auto`` reads English first and Chinese only
    when that read is unsure (``adapters.ocr.tesseract``).
    """
    return "eng" if language in ("auto", "en") else "chi_sim+eng"


def layout_psm(psm: int, width: int, height: int, *, banded: bool = False) -> int:
    """The page segmentation mode for horizontal text in a ``width`` x ``height`` image.

    Tesseract's automatic layout analysis (mode 3) splits a column of aligned labels
    from the text after them ("Message 12:" | "see you at six"), so a chat screenshot
    came out as all its labels, then all its texts. Tall images (height at least twice the
    width: phone and scrolling screenshots, one column in practice) and bands of a long
    image are read as one column (mode 4) instead; pages and photos keep mode 3, which
    orders real columns. A mode other than 3 (``psm``, the engine's) is always used as it is.
    """
    if psm == 3 and (banded or height >= TALL_ASPECT * width):
        return ONE_COLUMN_PSM
    return psm


def upright_size(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """(width, height) of a JPEG or PNG as shown (EXIF orientation applied), from its header.

    None for other formats and for files Pillow cannot open (whoever reads the file reports
    why). Imports Pillow (~40 ms) and, here rather than on a thread that decodes the file
    later, the plugins and EXIF parser reading such a file uses.
    """
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path, formats=("JPEG", "PNG"))  # Pillow's first plugins
        with image:
            width, height = image.size
            turned = image.getexif().get(_EXIF_ORIENTATION, 1) in (5, 6, 7, 8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    return (height, width) if turned else (width, height)


_EXIF_ORIENTATION = 0x0112  # values 5-8 turn the image a quarter: width and height swap


def _key(pack: str, psm: int, command: str, threads: str | None) -> tuple[str | None, ...]:
    """What a pass was started with; a pass serves only a call that would start the same."""
    return (command, pack, str(psm), threads, os.environ.get("TESSDATA_PREFIX"))


class PassAhead:
    """One tesseract process waiting for its image on stdin. One per read, not thread-safe."""

    def __init__(self, process: subprocess.Popen[bytes], key: tuple[str | None, ...]) -> None:
        self._process = process
        self.key = key
        self._taken = False
        self._fed: bytes | None = None
        self._feeding: threading.Thread | None = None
        self._answer: tuple[bytes, bytes] | BaseException | None = None

    @classmethod
    def start(
        cls, pack: str, psm: int, *, command: str = "tesseract", threads: str | None = None
    ) -> PassAhead | None:
        """Start ``tesseract stdin stdout -l pack --psm psm tsv``.

        Args:
            pack: tesseract language pack(s), e.g. ``eng`` or ``chi_sim+eng``.
            psm: page segmentation mode.
            command: the tesseract program (pytesseract's ``tesseract_cmd``).
            threads: ``OMP_THREAD_LIMIT`` for it (default: this process's).

        Returns:
            The pass, or None when the program cannot be started (the caller's own run of
            tesseract then reports why).
        """
        env = dict(os.environ)
        if threads is not None:
            env["OMP_THREAD_LIMIT"] = threads
        try:
            process = subprocess.Popen(
                [command, "stdin", "stdout", "-l", pack, "--psm", str(psm), *PASS_OPTIONS, "tsv"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
            )
        except OSError:
            return None
        return cls(process, _key(pack, psm, command, env.get("OMP_THREAD_LIMIT")))

    def serves(self, pack: str, psm: int) -> bool:
        """True when the pass was started with ``pack`` and ``psm`` (taken or not)."""
        return (pack, str(psm)) == self.key[1:3]

    def take(self, pack: str, psm: int, image: bytes | None = None) -> bool:
        """Claim the pass for a read with ``pack`` and ``psm``; False if it cannot serve it.

        ``image``: the encoded image the read will hand over; a pass already fed (``feed``)
        serves only the image it was fed.
        """
        if self._taken or not self.serves(pack, psm):
            return False
        if self._fed is not None and image is not None and image != self._fed:
            return False
        self._taken = True
        return True

    def feed(self, image: bytes) -> None:
        """Hand ``image`` (an encoded image, e.g. PGM) over now; ``read`` collects the TSV.

        Tesseract reads it meanwhile, on a thread that waits for the process. Once.
        """
        if self._fed is not None:
            raise RuntimeError("this tesseract pass was fed already")
        self._fed = image
        self._feeding = threading.Thread(
            target=self._communicate, args=(image,), name="tesseract-ahead", daemon=True
        )
        self._feeding.start()

    def _communicate(self, image: bytes) -> None:
        try:
            self._answer = self._process.communicate(image)
        except BaseException as exc:  # handed to ``read``'s caller
            self._answer = exc

    def read(self, image: bytes, timeout_s: float) -> str:
        """Feed ``image`` (an encoded image, e.g. PGM) and return tesseract's TSV.

        A pass fed already (``feed``) waits for that read, which must be of ``image``.

        Raises:
            TesseractExit: tesseract exited with an error (missing language pack, bad image).
            TimeoutError: it did not finish within ``timeout_s`` seconds; it is killed.
            ValueError: the pass was fed another image.
        """
        if self._feeding is None:
            try:
                out, err = self._process.communicate(image, timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.close()
                raise TimeoutError(f"tesseract did not finish within {timeout_s:g} s") from None
        else:
            if image != self._fed:
                raise ValueError("this tesseract pass was fed another image")
            self._feeding.join(timeout_s)
            if self._feeding.is_alive():
                self.close()
                raise TimeoutError(f"tesseract did not finish within {timeout_s:g} s")
            if isinstance(self._answer, BaseException):
                raise self._answer
            assert self._answer is not None  # set by the finished thread
            out, err = self._answer
        if self._process.returncode:
            message = " ".join(err.decode("utf-8", "replace").splitlines()).strip()
            raise TesseractExit(self._process.returncode, message)
        return out.decode("utf-8")

    def close(self) -> None:
        """Stop the process if it still runs (an unused pass, a timeout); idempotent."""
        if self._process.poll() is None:
            self._process.kill()
        if self._feeding is not None:
            self._feeding.join()  # its ``communicate`` ends with the process
        else:
            self._process.communicate()


_parked: PassAhead | None = None
_parked_lock = threading.Lock()


def park(pack: str = "eng", psm: int = 3, *, threads: int = 1) -> None:
    """Start a pass now for this process's first read (``narrate describe`` at start-up).

    Args:
        pack: the language pack the first read is expected to use (``eng`` for ``auto``).
        psm: its page segmentation mode (``layout_psm`` of narrate's default, 3, for the
            image's shape).
        threads: its ``OMP_THREAD_LIMIT`` (narrate's default, 1).
    """
    global _parked
    with _parked_lock:
        if _parked is None:
            _parked = PassAhead.start(pack, psm, threads=str(threads))
            if _parked is not None:
                atexit.register(_stop_parked)


def claim(pack: str, psm: int, *, command: str = "tesseract") -> PassAhead | None:
    """The parked pass if it was started as this read would start one, else a new pass.

    ``OMP_THREAD_LIMIT`` is compared with this process's current value (the engine sets it).
    Returns None when tesseract cannot be started.
    """
    global _parked
    with _parked_lock:
        parked, _parked = _parked, None
    wanted = _key(pack, psm, command, os.environ.get("OMP_THREAD_LIMIT"))
    if parked is not None:
        if parked.key == wanted:
            return parked
        parked.close()
    return PassAhead.start(pack, psm, command=command)


def _stop_parked() -> None:
    """At exit: stop a parked pass that no read claimed."""
    global _parked
    with _parked_lock:
        parked, _parked = _parked, None
    if parked is not None:
        parked.close()


class _ReadAhead:
    """A read's first steps running on a thread of their own; ``result`` waits for them."""

    def __init__(self, key: Hashable, start: Callable[[], Any]) -> None:
        self.key = key
        self._start = start
        self._value: Any = None
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._finished = False
        self._abandoned = False
        self._thread = threading.Thread(target=self._run, name="ocr-ahead", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        # Beside a thread that imports (pure Python, holding the GIL), this one gets the GIL
        # back after each OpenCV or Pillow call only when the other is made to let go:
        # every ``switch interval`` (5 ms by default; the convoy effect). Shorter while it runs.
        interval = sys.getswitchinterval()
        sys.setswitchinterval(min(interval, _SWITCH_INTERVAL_S))
        try:
            value = self._start()
        except BaseException as exc:  # re-raised by ``result``, in the reader's thread
            value, self._error = None, exc
        finally:
            sys.setswitchinterval(interval)
        with self._lock:
            self._value, self._finished = value, True
            abandoned = self._abandoned
        if abandoned:
            _close(value)

    def result(self) -> Any:
        """What ``start`` returned, waiting for it; re-raises what it raised."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value

    def wait(self, timeout_s: float) -> None:
        """Wait for the work to end, ``timeout_s`` at most (it goes on after that)."""
        self._thread.join(timeout_s)

    def discard(self) -> None:
        """Close what the work started (``close()`` of its value), now or when it finishes.

        Does not wait: a read that is not wanted (other settings, a cached result, the
        end of the process) should not hold anything up.
        """
        with self._lock:
            self._abandoned = True
            finished = self._finished
        if finished:
            _close(self._value)


def _close(value: Any) -> None:
    close = getattr(value, "close", None)
    if close is not None:
        close()


_parked_read: _ReadAhead | None = None
_SWITCH_INTERVAL_S = 0.001  # see ``_ReadAhead._run``


def park_read(key: Hashable, start: Callable[[], Any]) -> None:
    """Run ``start`` now on a thread; the first ``claim_read(key)`` gets what it returns.

    For ``narrate describe``'s first image: the engine's first steps (decode, preparation,
    the first pass fed) run while the caller imports the rest of the program. ``start``
    must import nothing (Python 3.11's imports are not safe on two threads at once): its
    caller imports first. What it returns is closed (``close()``) when no read claims it.

    Args:
        key: what the read depends on (the file, the engine's settings, the language);
            only a read with an equal key gets it.
        start: the work; its return value, or its exception, goes to the claiming read.
    """
    global _parked_read
    with _parked_lock:
        if _parked_read is None:
            _parked_read = _ReadAhead(key, start)
            atexit.register(_stop_parked_read)


def claim_read(key: Hashable) -> Any:
    """What the parked read returned if it was parked with ``key`` (waiting for it), else None.

    A parked read with another key is discarded (what it started is closed). Either way
    nothing stays parked.

    Raises:
        Exception: whatever the parked read raised (the claiming read would have raised it).
    """
    global _parked_read
    with _parked_lock:
        parked, _parked_read = _parked_read, None
    if parked is None:
        return None
    if parked.key != key:
        parked.discard()
        return None
    return parked.result()


_EXIT_WAIT_S = 10.0  # at most, for a parked read's first steps to end at exit (see below)


def _stop_parked_read() -> None:
    """At exit: close what an unclaimed parked read started (its tesseract pass).

    Waits (``_EXIT_WAIT_S`` at most) for the read's thread: its first steps run in OpenCV
    and Pillow, and an interpreter that finalises while a daemon thread is inside OpenCV
    can abort with "terminate called without an active exception". That happened to
    ``narrate describe`` stopped by a wrong setting before its first image was read (11 of
    20 runs, when the imports were already warm). The wait is the decode and preparation
    of one image, which the read had started anyway.
    """
    global _parked_read
    with _parked_lock:
        parked, _parked_read = _parked_read, None
    if parked is not None:
        parked.discard()
        parked.wait(_EXIT_WAIT_S)
