"""Telling text from garbage in what an OCR engine returns, for every engine alike.

Engines "read" textures, foliage and sensor noise as short junk words (``'ea``, ``YZ.``,
``}eo``) with middling confidence. ``split_words`` keeps a word only when its confidence is
at least the threshold and it looks like a word: mostly letters, digits or CJK characters,
and longer than one character unless it is a digit, ``a``, ``I`` or a CJK character. A
number with a sign, currency, ``#`` or unit sign (``-6``, ``+3``, ``5%``, ``7°``, ``$9``,
``#4``, ``-1.5``) is a word too, although it is mostly symbols: it is no likelier to be
noise than the bare digit, which is kept; so is a numbered reference with bracketed parts
(``3(b)``, ``§4.2(a)(ii)``, ``(iv)``), which tesseract read at 0.92 in "See Section 3(b) for
details." and the filter dropped (a new user's trial).

The default thresholds (one per engine: their confidences are not calibrated alike) were
chosen on a labelled set of words read by both engines from generated photos and screenshots
with known text (real words) and from text-free photos (garbage): see
``bench/ocr_threshold.py`` and bench/README.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal, TypeVar

# 0-1, chosen per engine on the labelled set (bench/ocr_threshold.py, bench/README.md): the
# lowest threshold at which no text-free photo reports text, keeping >= 98% of real words.
TESSERACT_MIN_CONFIDENCE = 0.80  # 98.3% of 289 real words kept, 0 of 35 garbage words
RAPIDOCR_MIN_CONFIDENCE = 0.90  # 100% of 50 real lines kept, 0 of 11 garbage lines
DEFAULT_MIN_CONFIDENCE = TESSERACT_MIN_CONFIDENCE
CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\u3040-\u30ff]")
_SINGLE_OK = frozenset("aAI&")
# A number with a sign, a currency (a discount "-£0.50" has both) or "#" before it, one unit
# sign after it, and a closing mark (``1:``, ``2.``, ``3)``: a list's or a chat's numbering,
# dropped as a lone digit plus a symbol before, so "Message 1: ..." was read "Message ...";
# ``7?``: "Meet me at 7?" was spoken "Meet me at").
_NUMBER = re.compile(
    r"(?:[-+\u2212\u00b1]?[$\u20ac\u00a3\u00a5]|[-+\u2212\u00b1#])?\d+(?:[.,:/]\d+)*"
    r"[%\u2030\u00b0\u2103\u2109]?"
    r"[:.,;)?!]?"
)
# A section or clause reference: a number (or nothing) with one or more bracketed parts of at
# most four letters or digits each, e.g. "3(b)", "12(a)(ii)", "(iv)"; "§" before, a mark after.
_REFERENCE = re.compile(r"\(?\u00a7?(?:\d+(?:\.\d+)*)?(?:\([0-9A-Za-z]{1,4}\))+[:.,;)]?")


def looks_like_text(text: str) -> bool:
    """True when ``text`` (one word or line) is made mostly of letters, digits or CJK.

    Args:
        text: what the engine read, stripped or not.

    Returns:
        False for punctuation specks, lone letters and strings with more symbols than
        letters (except a number with a sign or unit, e.g. ``-6`` or ``5%``, and a numbered
        reference such as ``3(b)``); True otherwise.
    """
    text = text.strip()
    if not text:
        return False
    if _NUMBER.fullmatch(text) or _REFERENCE.fullmatch(text):
        return True
    solid = [ch for ch in text if ch.isalnum()]  # CJK characters are alphanumeric too
    if len(solid) < 0.6 * len(text.replace(" ", "")):
        return False
    if len(solid) == 1:
        ch = solid[0]
        return ch.isdigit() or ch in _SINGLE_OK or bool(CJK.match(ch))
    return True


ZH_CJK_SHARE = 0.3  # a text is Chinese from this share of CJK among its letters


def cjk_share(text: str) -> float:
    """The share (0-1) of CJK characters among the letters of ``text``; 0 with no letter.

    Digits, signs and spaces are not counted: a price list line "咖啡 ¥12.50" is all Chinese
    (counted over every character it was 0.2, and the image was described in English).
    """
    letters = [ch for ch in text if ch.isalpha()]  # CJK characters are letters too
    return sum(bool(CJK.match(ch)) for ch in letters) / len(letters) if letters else 0.0


def language_of(text: str) -> Literal["en", "zh"]:
    """``zh`` when CJK characters make ``ZH_CJK_SHARE`` of the letters of ``text``, else ``en``."""
    return "zh" if cjk_share(text) >= ZH_CJK_SHARE else "en"


def join_words(words: list[str]) -> str:
    """Join one line's words: a space between words, none next to a CJK character."""
    out = ""
    for word in words:
        if out and word and not (CJK.match(out[-1]) or CJK.match(word[0])):
            out += " "
        out += word
    return out


W = TypeVar("W")


def split_words(words: Iterable[W], min_confidence: float) -> tuple[list[W], list[W]]:
    """Split ``words`` (anything with ``.text`` and ``.confidence`` 0-1) into kept and dropped.

    Args:
        words: the engine's words or lines, in reading order.
        min_confidence: the threshold, 0-1.

    Returns:
        ``(kept, dropped)``, each in the original order.
    """
    kept: list[W] = []
    dropped: list[W] = []
    for word in words:
        text = str(getattr(word, "text", ""))
        confidence = float(getattr(word, "confidence", 0.0))
        (kept if confidence >= min_confidence and looks_like_text(text) else dropped).append(word)
    return kept, dropped
