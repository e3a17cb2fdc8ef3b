"""Continuing cut answers: restart detection, seams, joins, sentence cuts (pure)."""

from __future__ import annotations

import pytest

from adapters.llm.chat.continuation import (
    ContinuationJoiner,
    continuation_messages,
    cut_at_sentence,
    join_gap,
    partial_mode,
    seam_overlap,
)
from adapters.llm.chat.types import ChatMessage

SO_FAR = "This image is a 560x620 portrait of a corner cafe, featuring a"
REST = " red awning and two small tables outside."


def feed_all(joiner: ContinuationJoiner, text: str, size: int = 5) -> str:
    out = "".join(joiner.feed(text[i : i + size]) for i in range(0, len(text), size))
    return out + joiner.finish()


@pytest.mark.parametrize("size", [1, 5, 1000])
def test_partial_mode_continuation_passes_through(size: int) -> None:
    joiner = ContinuationJoiner(SO_FAR, partial=True)
    assert feed_all(joiner, REST, size) == REST and not joiner.restarted


@pytest.mark.parametrize("size", [1, 7, 1000])
def test_a_restart_that_repeats_the_answer_keeps_only_the_new_text(size: int) -> None:
    """llama.cpp ignores partial mode and starts over: the garbled "...aThis image is..."."""
    joiner = ContinuationJoiner(SO_FAR, partial=True)
    assert feed_all(joiner, SO_FAR + REST, size) == REST
    assert joiner.restarted and not joiner.dropped


def test_a_restart_that_says_something_else_is_dropped() -> None:
    joiner = ContinuationJoiner(SO_FAR, partial=False)
    other = "This image is a 560x620 portrait showing a bakery with a blue door and a bike."
    assert feed_all(joiner, other) == "" and joiner.dropped


@pytest.mark.parametrize(
    ("so_far", "reply", "joined"),
    [
        ("The cafe has a", "red awning.", " red awning."),
        ("The cafe has a ", "red awning.", "red awning."),
        ("The cafe has a red", "red awning.", " red awning."),  # too short to call a seam
        ("The cafe has a red awning", "a red awning and two tables.", " and two tables."),
        ("The total is 7", ".20 in cash.", ".20 in cash."),
        ("这是一家咖啡馆，门口有", "两张桌子。", "两张桌子。"),
    ],
)
def test_portable_joins_at_word_boundaries_and_drops_a_repeated_seam(
    so_far: str, reply: str, joined: str
) -> None:
    assert feed_all(ContinuationJoiner(so_far, partial=False), reply) == joined


def test_seam_and_gap_helpers() -> None:
    assert seam_overlap("has a red awning", "red awning and") == len("red awning")
    assert seam_overlap("the", "theatre") == 0
    assert join_gap("word", "next") == " " and join_gap("word", ", next") == ""
    assert join_gap("中文", "文字") == ""


@pytest.mark.parametrize(
    ("text", "cut"),
    [
        ("One. Two is cut", "One."),
        ("Paid 7.20 in cash. The", "Paid 7.20 in cash."),
        ("Total 7.20 and the", "Total 7.20 and the"),
        ("第一句。第二句没", "第一句。"),
        ("Why? Because", "Why?"),
    ],
)
def test_cut_at_sentence(text: str, cut: str) -> None:
    assert cut_at_sentence(text) == cut
    assert cut_at_sentence("no sentence end", keep_fragment=False) == ""


def test_partial_mode_only_on_model_studio_unless_set() -> None:
    assert partial_mode("https://dashscope-intl.aliyuncs.com/compatible-mode/v1", "auto")
    assert not partial_mode("http://127.0.0.1:8000/v1", "auto")
    assert partial_mode("http://127.0.0.1:8000/v1", "partial")
    assert not partial_mode("https://dashscope.aliyuncs.com/v1", "portable")
    messages = (ChatMessage("user", "q"),)
    assert continuation_messages(messages, "so far", partial=True)[-1].partial
    portable = continuation_messages(messages, "so far", partial=False)
    assert [m.role for m in portable] == ["user", "assistant", "user"]
