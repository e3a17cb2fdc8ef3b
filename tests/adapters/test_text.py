"""adapters/text.py: one rule for Han characters and one for sentence ends."""

from __future__ import annotations

import pytest

from adapters.text import han_count, has_han, split_sentences


def test_han_is_chinese_only() -> None:
    assert han_count("这是 Harbour Bakery 的通知") == 5
    assert has_han("价格：７元") and not has_han("カタカナ 한국어 café")


@pytest.mark.parametrize(
    ("text", "pieces"),
    [
        ("The total is 7.40. Thank you!", ["The total is 7.40. ", "Thank you!"]),
        ("Open 9.30 to 5. Closed Sunday", ["Open 9.30 to 5. ", "Closed Sunday"]),
        ("今天营业。明天休息！", ["今天营业。", "明天休息！"]),
        ("No end mark", ["No end mark"]),
        ("", []),
    ],
)
def test_split_sentences_cuts_after_ends_and_loses_nothing(text: str, pieces: list[str]) -> None:
    assert split_sentences(text) == pieces
    assert "".join(split_sentences(text)) == text
