"""Telling text from garbage (adapters/ocr/filtering.py): the word shape and the threshold."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from adapters.ocr.filtering import looks_like_text, split_words


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
