"""OfflineDescriber: grounded, deterministic descriptions and answers in English and Chinese."""

from __future__ import annotations

from typing import Any

from adapters.llm.base import Describer, DescriptionRequest
from adapters.llm.offline import OfflineDescriber, best_lines, clip, colour_zh, text_lines

RECEIPT = (
    "JOE'S CAFE\n123 Main Street\nCOFFEE 3.50\nMUFFIN 3.70\nSUBTOTAL 7.20\nTOTAL 7.20\nThank you!"
)
RECEIPT_FACTS: dict[str, Any] = {
    "width": 800,
    "height": 1200,
    "orientation": "portrait",
    "brightness": 0.86,
    "contrast": 0.31,
    "dominant_colours": [
        {"hex": "#1f2a60", "name": "dark blue", "share": 0.18},
        {"hex": "#ffffff", "name": "white", "share": 0.79},
    ],
    "sharpness": 820.0,
    "text_coverage": 0.22,
    "layout": "text-heavy",
}
MENU_ZH = "欢迎 光临 小王 面馆\n牛肉面 25元\n合计 25元\n谢谢惠顾"


def _landscape(brightness: float, layout: str, *colours: tuple[str, float]) -> dict[str, Any]:
    """Facts of a landscape image: mean brightness (0-1), layout, (colour name, share)s."""
    return {
        "orientation": "landscape",
        "brightness": brightness,
        "layout": layout,
        "dominant_colours": [{"name": name, "share": share} for name, share in colours],
    }


def _describe(text: str, language: str = "en", **kwargs: Any) -> str:
    kwargs.setdefault("features_summary", "")
    request = DescriptionRequest(ocr_text=text, language=language, **kwargs)  # type: ignore[arg-type]
    return OfflineDescriber().describe(request).text


def test_english_receipt_quotes_the_text_and_a_colour() -> None:
    text = _describe(RECEIPT, facts=RECEIPT_FACTS)

    assert text.startswith("This is a bright, tall image made up mostly of text")
    assert "coloured mostly white and dark blue" in text  # largest share first
    assert "\"JOE'S CAFE, 123 Main Street, COFFEE 3.50, MUFFIN 3.70" in text
    assert 'TOTAL 7.20, Thank you!"' in text


def test_result_is_marked_offline() -> None:
    request = DescriptionRequest(ocr_text=RECEIPT, language="en", features_summary="")

    describer: Describer = OfflineDescriber()  # mypy checks the conformance
    result = describer.describe(request)

    assert (result.backend, result.model, result.endpoint) == ("offline", "offline", "local")
    assert result.offline and result.language == "en"
    assert result.usage is not None and result.usage.total_tokens == 0
    assert "offline" not in result.text.lower()


def test_chinese_text_gets_a_chinese_description() -> None:
    facts = _landscape(0.5, "text-heavy", ("red", 0.6), ("light yellow", 0.3))

    text = _describe(MENU_ZH, "zh", facts=facts)

    assert text.startswith("这是一张横向、以文字为主的图片，主要颜色是红色和浅黄色。")
    assert "图中文字写道：“欢迎光临小王面馆，牛肉面 25元，合计 25元，谢谢惠顾。”" in text
    assert not any(ch.isascii() and ch.isalpha() for ch in text)  # no English words


def test_question_picks_the_total_line() -> None:
    request = DescriptionRequest(
        ocr_text=RECEIPT, language="en", features_summary="", question="What is the total?"
    )

    assert (
        OfflineDescriber().describe(request).text == "Based on the text in the image: TOTAL 7.20."
    )


def test_question_synonyms_and_address() -> None:
    assert _describe(RECEIPT, question="How much did it cost?").endswith("TOTAL 7.20.")
    assert _describe(RECEIPT, question="What is the street?").endswith("123 Main Street.")


def test_chinese_question_by_character_overlap() -> None:
    assert _describe(MENU_ZH, "zh", question="合计多少钱？") == "根据图中的文字：合计 25元。"
    assert _describe(MENU_ZH, "zh", question="牛肉面多少钱？") == "根据图中的文字：牛肉面 25元。"


def test_chinese_when_question_finds_the_line_with_the_time() -> None:
    notice = "停车场通知\n本周六上午九点至十二点，停车场将进行清洁，\n请提前移走车辆。"
    assert _describe(notice, "zh", question="什么时候开始？") == (
        "根据图中的文字：本周六上午九点至十二点，停车场将进行清洁。"
    )


def test_question_without_an_answer_says_so() -> None:
    text = _describe(RECEIPT, question="Who is the president of France?")
    assert text.startswith("The text in the image does not seem to answer that question.")
    assert "JOE'S CAFE" in text

    zh = _describe(MENU_ZH, "zh", question="营业时间是几点？")
    assert zh.startswith("图中的文字似乎没有回答这个问题。")


def test_colour_and_read_questions() -> None:
    assert _describe(RECEIPT, question="What colour is it?", facts=RECEIPT_FACTS) == (
        "The image's main colours are white and dark blue."
    )
    assert _describe(RECEIPT, question="What does it say?").startswith(
        "The text in it reads: \"JOE'S CAFE"
    )
    assert _describe(MENU_ZH, "zh", question="上面写了什么？").startswith("图中文字写道：“欢迎光临")


def test_deterministic() -> None:
    outputs = {_describe(RECEIPT, facts=RECEIPT_FACTS) for _ in range(5)}
    answers = {_describe(MENU_ZH, "zh", question="合计多少钱？") for _ in range(5)}
    assert len(outputs) == 1 and len(answers) == 1


def test_no_text_describes_the_picture() -> None:
    facts = _landscape(0.2, "picture", ("green", 0.55), ("brown", 0.3))

    text = _describe("", facts=facts)
    zh = _describe("  \n ", "zh", facts=facts)

    assert text == (
        "This is a dark, wide image that is mainly a picture, coloured mostly green and brown. "
        "No text was found in it."
    )
    assert zh == "这是一张偏暗、横向、以画面为主的图片，主要颜色是绿色和棕色。图中没有识别出文字。"


def test_missing_facts_fall_back_to_the_summary() -> None:
    text = _describe("", features_summary="640x480 landscape, mostly grey")
    assert text == (
        "This is an image. Its measured features: 640x480 landscape, mostly grey. "
        "No text was found in it."
    )
    odd = _describe("Hello", facts={"brightness": "bright", "dominant_colours": "red"})
    assert odd == 'This is an image. The text in it reads: "Hello."'


def test_blurry_image_warns_about_misreads() -> None:
    text = _describe("Fresh bread daily", facts={**RECEIPT_FACTS, "sharpness": 12.0})
    assert text.endswith("The image looks blurry, so some words may be misread.")


def test_long_text_is_quoted_up_to_a_sentence_boundary() -> None:
    sentence = "The quick brown fox jumps over the lazy dog. "
    text = _describe(sentence * 10)

    quote = text.split('"')[1]
    assert text.startswith("This is an image. It holds about 90 words of text, beginning:")
    assert quote.endswith("lazy dog...") and len(quote) <= 203


def test_helpers() -> None:
    assert text_lines("  |||\n 合 计  25元 \n\n", zh=True) == ["合计 25元"]
    assert clip("one two three four", 10, zh=False) == ("one two", True)
    assert clip("short", 10, zh=False) == ("short", False)
    assert colour_zh("dark blue") == "深蓝色" and colour_zh("chartreuse") is None
    assert best_lines("What is the total?", ["SUBTOTAL 1", "TOTAL 2"], zh=False) == ["TOTAL 2"]
    assert best_lines("Why?", ["anything"], zh=False) == []


def test_low_contrast_needs_a_small_luma_range_too() -> None:
    """A dark-mode screen's RMS contrast is low, as a faint image's is; its luma range is not."""
    dark_mode = {**_landscape(0.1, "text-heavy", ("black", 0.9)), "contrast": 0.06}
    assert "low-contrast" not in _describe("Wi-Fi On", facts={**dark_mode, "luma_range": 0.89})
    assert "low-contrast" in _describe("Wi-Fi On", facts={**dark_mode, "luma_range": 0.14})
    assert "low-contrast" in _describe("Wi-Fi On", facts=dark_mode)  # measured before the range


def test_a_quote_is_never_cut_inside_a_price_a_time_or_a_number() -> None:
    """Cut at the point of "$2.20", the WAV says "two dollars": a wrong price, aloud."""
    from adapters.llm.offline import clip

    text = "Fresh bread $3.50, Coffee and tea $2.20, Open 7:00 to 19:00, Seats 1,200 in all"
    for limit in range(20, len(text)):
        quote, cut = clip(text, limit, zh=False)
        assert cut and text.startswith(quote)
        rest = text[len(quote) :]
        assert not rest[:1].isalnum() and not (rest[:1] in ".,:" and rest[1:2].isdigit()), (
            limit,
            quote,
        )
