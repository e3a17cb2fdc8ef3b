"""Text helpers shared by the capabilities: scripts (Han vs Latin) and sentence ends.

One home for the character ranges and the sentence rule, so OCR's language guess, the
offline describer, the speech chunker and the A/B statistics agree on what Chinese is and
where a sentence ends.
"""

from __future__ import annotations

import re

# Han ideographs: CJK Unified Ideographs with Extension A, and the compatibility block
# (Unicode 15, chapter 18.1). Kana/Hangul are not Chinese and are not included.
HAN_RANGES = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
HAN = re.compile(f"[{HAN_RANGES}]")
# CJK punctuation and full-width forms, which Chinese text uses beside Han characters.
CJK_PUNCTUATION = re.compile(r"[\u3000-\u303f\uff00-\uffef]")

# A sentence ends at . ! ? ; followed by white space (not inside 7.40), or at the
# full-width 。！？； which need no space after them.
SENTENCE_END = re.compile(r"(?<!\d)[.!?;](?=\s)|(?<=\d)[.!?;](?=\s+\D)|[。！？；]")


def han_count(text: str) -> int:
    """How many Han characters ``text`` holds."""
    return len(HAN.findall(text))


def has_han(text: str) -> bool:
    """True when ``text`` holds at least one Han character."""
    return HAN.search(text) is not None


def split_sentences(text: str) -> list[str]:
    """Cut ``text`` after each sentence end; the pieces joined give ``text`` back.

    Returns:
        The sentences with their end marks and the white space that follows them; a
        trailing piece without an end mark is the last item.
    """
    pieces: list[str] = []
    start = 0
    for match in SENTENCE_END.finditer(text):
        end = match.end()
        while end < len(text) and text[end].isspace():
            end += 1
        pieces.append(text[start:end])
        start = end
    if start < len(text):
        pieces.append(text[start:])
    return pieces
