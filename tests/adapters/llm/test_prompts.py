"""Prompt templates: rendering, missing variables, and the messages built for each request."""

from __future__ import annotations

import pytest

from adapters.errors import ConfigError
from adapters.llm.base import DescriptionRequest
from adapters.llm.prompts import MAX_OCR_CHARS, NO_TEXT, build_messages, render, template_names


def test_shipped_templates() -> None:
    assert {"describe_system", "describe_user", "answer_system", "answer_user"} <= set(
        template_names()
    )


def test_render_fills_every_variable() -> None:
    text = render(
        "answer_user",
        question="What is the total?",
        features="portrait, bright, mostly white",
        ocr_text="TOTAL 7.20 (paid in $)",
        language="English",
    )

    assert "Question: What is the total?" in text
    assert "portrait, bright, mostly white" in text
    assert "TOTAL 7.20 (paid in $)" in text  # a dollar sign in a value is kept verbatim
    assert "Answer the question in English." in text
    assert "$" not in text.replace("(paid in $)", "")


def test_missing_variable_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"needs the variable \$question"):
        render("answer_user", features="x", ocr_text="y", language="English")


def test_unknown_template_lists_the_available_ones() -> None:
    with pytest.raises(ConfigError, match=r"no prompt template named 'nope'.*describe_user"):
        render("nope")


def test_system_prompt_sets_the_rules() -> None:
    text = render("describe_system", language="Simplified Chinese").lower()

    assert "answer in simplified chinese" in text
    assert "2 to 4" in text and "spoken aloud" in text
    assert "never invent text" in text
    assert "ocr" in text and "features" in text


def test_describe_messages() -> None:
    request = DescriptionRequest(
        ocr_text="欢迎光临\n合计 25元", language="zh", features_summary="横向, 明亮"
    )

    system, user = build_messages(request)

    assert (system.role, user.role) == ("system", "user")
    assert "Simplified Chinese" in system.content
    assert "欢迎光临\n合计 25元" in user.content
    assert "Image features: 横向, 明亮" in user.content
    assert "Question" not in user.content


def test_answer_messages_and_empty_text() -> None:
    request = DescriptionRequest(
        ocr_text="  ", language="en", features_summary="", question=" Is it a cat? "
    )

    system, user = build_messages(request)

    assert "questions about an image" in system.content
    assert "Question: Is it a cat?" in user.content
    assert NO_TEXT in user.content
    assert "(no features were measured)" in user.content


def test_long_text_is_clipped() -> None:
    request = DescriptionRequest(ocr_text="word " * 5000, language="en", features_summary="f")

    _, user = build_messages(request)

    assert "[...]" in user.content
    assert len(user.content) < MAX_OCR_CHARS + 1000
