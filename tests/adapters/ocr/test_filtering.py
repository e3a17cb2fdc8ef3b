"""Telling text from garbage (adapters/ocr/filtering.py): the word shape and the threshold."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.ocr.filtering import cjk_share, looks_like_text, split_words
from adapters.ocr.tesseract import TesseractOcr
from tests.images import render_page


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("RECEIPT", True),
        ("12.50", True),
        ("停车场", True),
        ("停", True),  # one CJK character is a word
        ("7", True),
        ("a", True),
        ("I", True),
        ("x", False),  # a lone letter is noise
        ("'ea", True),  # mostly letters: shape alone keeps it, the threshold must drop it
        ("}~.", False),
        ("—", False),
        ("", False),
        ("   ", False),
        ("Y;:", False),  # more symbols than letters
        # a number with a sign, currency, # or unit is a word, though mostly symbols
        ("-6", True),
        ("+3", True),
        ("\u22126", True),  # the minus sign
        ("5%", True),
        ("7\u00b0", True),
        ("$9", True),
        ("#4", True),
        ("-1.5", True),
        ("-\u00a30.50", True),  # a receipt's discount: a sign and a currency
        ("+$3", True),
        ("12:30", True),
        ("1:", True),  # a list's or a chat's numbering
        ("2.", True),
        ("3)", True),
        ("7?", True),  # "Meet me at 7?"
        ("1::", False),
        # a numbered reference with bracketed parts: "See Section 3(b) for details."
        ("3(b)", True),
        ("12(a)(ii)", True),
        ("(iv)", True),
        ("\u00a74.2(a)", True),
        ("()", False),
        ("3(", False),
        ("(!!)", False),
        # ... but signs without a number, or a letter with one, are not
        ("-", False),
        ("%", False),
        ("--6", False),
        ("6-", False),
        ("a)", False),
        ("x%", False),
    ],
)
def test_word_shape(text: str, expected: bool) -> None:
    assert looks_like_text(text) is expected


@dataclass
class _Word:
    text: str
    confidence: float


def test_split_keeps_confident_words_in_order_and_returns_the_rest() -> None:
    words = [
        _Word("TOTAL", 0.96),
        _Word("'ea", 0.56),  # texture read as a word, middling confidence
        _Word("12.50", 0.70),  # exactly the threshold: kept
        _Word("}~.", 0.99),  # confident but not a word
        _Word("DUE", 0.91),
    ]
    kept, dropped = split_words(words, 0.70)
    assert [w.text for w in kept] == ["TOTAL", "12.50", "DUE"]
    assert [w.text for w in dropped] == ["'ea", "}~."]
    assert split_words([], 0.7) == ([], [])


SIGNED_LINES = (  # the shape test used to drop them all
    "Outside it is -6 today",
    "Change +3 since noon",
    "Humidity 5% and 7\u00b0 wind",
    "Ticket $9 at door #4",
    "Message 1: your parcel arrives today",
    "Step 2. open the door",
)


LETTER_LINES = (  # "Gate B", "Vitamin C", "at 7?" and "3(b)" were spoken without them
    "Boarding at Gate B",
    "Meet me at 7?",
    "I think Plan A works",
    "Take Vitamin C daily",
    "See Section 3(b) for details.",
)


@pytest.mark.parametrize("lines", [SIGNED_LINES, LETTER_LINES], ids=["signed", "letters"])
def test_real_tesseract_keeps_what_it_reads_surely(tmp_path: Path, lines: tuple[str, ...]) -> None:
    """Numbers with a sign or unit, lone letters and "7?" on lines tesseract reads surely."""
    path = tmp_path / "lines.png"
    render_page(lines).save(path)
    result = TesseractOcr().recognize(path, "en")
    assert [line.strip() for line in result.text.splitlines() if line.strip()] == list(lines)
    assert not result.dropped, result.dropped


@pytest.mark.parametrize(
    ("text", "share"),
    [
        ("咖啡 ¥12.50", 1.0),  # a price list line: counted over every character it was 0.2
        ("Welcome 欢迎", 2 / 9),
        ("TOTAL 12.50", 0.0),
        ("12:30", 0.0),
        ("", 0.0),
    ],
)
def test_cjk_share_counts_letters_only(text: str, share: float) -> None:
    assert cjk_share(text) == pytest.approx(share)


def test_a_bar_before_a_lowercase_word_is_the_pronoun_i(tmp_path: Path) -> None:
    """DejaVu Sans's "I" is a bare bar: tesseract read "Great, | will bring the report" at
    0.96 and the bar was dropped (a new user's trial). A bar between table headings stays
    out."""
    from PIL import Image, ImageDraw

    from tests.images import FONT_SANS, _font

    image = Image.new("RGB", (900, 200), "white")
    draw = ImageDraw.Draw(image)
    draw.text((30, 30), "Great, I will bring the report", font=_font(FONT_SANS, 30), fill="black")
    draw.text((30, 110), "Name | Age | City", font=_font(FONT_SANS, 30), fill="black")
    path = tmp_path / "chat.png"
    image.save(path)
    result = TesseractOcr().recognize(path, "en")
    lines = result.text.splitlines()
    assert lines[0] == "Great, I will bring the report", result.text
    assert "I" not in lines[1].split(), result.text
