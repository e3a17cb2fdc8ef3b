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
  imported narrate's settings and libraries (~0.3 s on one core while the other is idle).
  ``claim`` hands it to the engine only when it was started exactly as the engine would
  start its own (language pack, page segmentation mode, program, ``OMP_THREAD_LIMIT``,
  ``TESSDATA_PREFIX``); otherwise it is stopped and a fresh one started. An unclaimed pass
  is stopped at exit; if the process dies, tesseract reads end-of-file and exits.

Only the standard library is imported here, so that ``park`` costs nothing before it runs.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import threading

__all__ = ["PASS_OPTIONS", "PassAhead", "TesseractExit", "claim", "first_pack", "park"]

# Every read pass runs with these. Tesseract 5 reads a line again inverted when it read it
# poorly (``tessedit_do_invert``, on by default); narrate's preprocessing already turns light
# text dark (adapters.ocr.preprocess), so the second try only costs time.
PASS_OPTIONS = ("-c", "tessedit_do_invert=0")


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


def _key(pack: str, psm: int, command: str, threads: str | None) -> tuple[str | None, ...]:
    """What a pass was started with; a pass serves only a call that would start the same."""
    return (command, pack, str(psm), threads, os.environ.get("TESSDATA_PREFIX"))


class PassAhead:
    """One tesseract process waiting for its image on stdin. One per read, not thread-safe."""

    def __init__(self, process: subprocess.Popen[bytes], key: tuple[str | None, ...]) -> None:
        self._process = process
        self.key = key
        self._taken = False

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

    def take(self, pack: str, psm: int) -> bool:
        """Claim the pass for a read with ``pack`` and ``psm``; False if it cannot serve it."""
        if self._taken or (pack, str(psm)) != self.key[1:3]:
            return False
        self._taken = True
        return True

    def read(self, image: bytes, timeout_s: float) -> str:
        """Feed ``image`` (an encoded image, e.g. PGM) and return tesseract's TSV.

        Raises:
            TesseractExit: tesseract exited with an error (missing language pack, bad image).
            TimeoutError: it did not finish within ``timeout_s`` seconds; it is killed.
        """
        try:
            out, err = self._process.communicate(image, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.close()
            raise TimeoutError(f"tesseract did not finish within {timeout_s:g} s") from None
        if self._process.returncode:
            message = " ".join(err.decode("utf-8", "replace").splitlines()).strip()
            raise TesseractExit(self._process.returncode, message)
        return out.decode("utf-8")

    def close(self) -> None:
        """Stop the process if it still runs (an unused pass, a timeout); idempotent."""
        if self._process.poll() is None:
            self._process.kill()
        self._process.communicate()


_parked: PassAhead | None = None
_parked_lock = threading.Lock()


def park(pack: str = "eng", psm: int = 3, *, threads: int = 1) -> None:
    """Start a pass now for this process's first read (``narrate describe`` at start-up).

    Args:
        pack: the language pack the first read is expected to use (``eng`` for ``auto``).
        psm: its page segmentation mode (narrate's default, 3).
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
