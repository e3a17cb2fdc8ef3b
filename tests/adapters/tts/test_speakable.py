"""Text cleaning, script runs and numbers in words (adapters/tts/speakable.py)."""

from __future__ import annotations

import pytest

from adapters.errors import InputError
from adapters.tts.speakable import clean_text, prepare, say_numbers, split_runs


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("The total is 7.40.\x00 Thank you.", "The total is 7.40. Thank you."),
        ("It is <b>on sale</b> now.", "It is on sale now."),
        ("Line<br/>break &amp; more", "Line break & more"),
        ("ASCII in, emoji out: &#128077; &#x1F389;done", "ASCII in, emoji out: done"),
        ("Great 👍🏽 deal 🇬🇧 for 👨\u200d👩\u200d👧 families!", "Great deal for families!"),
        ("zero\u200bwidth\ufeff and\u00ad soft", "zerowidth and soft"),
        ("**Bold** and `code` and [a link](http://x.test)", "Bold and code and a link"),
        ("# Heading\n- first item\n- second", "Heading\nfirst item\nsecond"),
        ("bell\x07 escape\x1b[0m tab\tend", "bell escape tab end"),
        ("这是\u200b通知。", "这是通知。"),
    ],
)
def test_clean_text_keeps_the_words_and_drops_the_rest(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean


@pytest.mark.parametrize(
    "text", ["", "   ", "🎉🎉 ✨", "<b></b> <i> </i>", "\x00\x00", "... !?", "\u200b"]
)
def test_nothing_speakable_says_the_answer_had_no_words(text: str) -> None:
    with pytest.raises(InputError, match="nothing speakable: the answer had no words in it"):
        prepare(text)


def test_runs_follow_the_script_not_the_image_language() -> None:
    runs = prepare("这是 Harbour Bakery 的通知", hint="zh")
    assert [(r.text, r.language) for r in runs] == [
        ("这是", "zh"),
        ("Harbour Bakery", "en"),
        ("的通知", "zh"),
    ]
    # a Chinese answer about an English image: the hint does not decide, the script does
    assert {r.language for r in prepare("收据上的总额是十二元。", hint="en")} == {"zh"}
    assert {r.language for r in prepare("The total is twelve.", hint="zh")} == {"en"}


def test_digits_and_punctuation_join_the_nearest_letters() -> None:
    assert split_runs("总计 12 元, thanks", "en") == [("总计 12 元,", "zh"), (" thanks", "en")]
    assert split_runs("42", "zh") == [("42", "zh")]
    # a time or a price is one unit, spoken in one voice (it was cut at its colon)
    assert split_runs("Open 10:00 to 18:00营业", "en") == [
        ("Open 10:00 to ", "en"), ("18:00营业", "zh"),
    ]  # fmt: skip
    assert split_runs("营业 9:00 to 5pm", "en") == [("营业 9:00", "zh"), (" to 5pm", "en")]
    assert split_runs("咖啡 ¥12.50", "en") == [("咖啡 ¥12.50", "zh")]
    assert split_runs("42", "en") == [("42", "en")]


@pytest.mark.parametrize(
    ("language", "text", "spoken"),
    [
        ("en", "It costs $7.40.", "It costs seven dollars and forty cents."),
        ("en", "Milk $0.98", "Milk ninety-eight cents"),  # not "zero dollars and ..."
        ("en", "Only $1 each", "Only one dollar each"),
        ("en", "A £3.05 fee", "A three pounds and five pence fee"),
        ("en", "Total $1,250", "Total one thousand, two hundred and fifty dollars"),
        ("en", "Open at 9:05 until 21:30", "Open at nine oh five until twenty-one thirty"),
        ("en", "Meet at 2:30 pm", "Meet at two thirty p m"),
        ("en", "At 12:00 sharp", "At twelve o'clock sharp"),
        ("en", "Version 3.14 of 20 files", "Version 3.14 of 20 files"),
        ("zh", "总计 ¥12.50", "总计 十二元五角"),
        ("zh", "共 7.05 元", "共 七元零五分"),
        ("zh", "售价 $3.99", "售价 三美元九十九美分"),
        ("zh", "营业时间 9:05 到 21:30", "营业时间 九点零五分 到 二十一点三十分"),
        ("zh", "下午 2:00", "下午 二点"),
        ("zh", "重 3.5 公斤，打 45% 折", "重 三点五 公斤，打 百分之四十五 折"),
        ("zh", "第 1,250 位", "第 一千二百五十 位"),
        # a new user's trial: a phone number said as sums ("二十一负六千...")
        ("zh", "电话 021-6543 2100", "电话 零二一 六五四三 二一零零"),
        ("zh", "手机 13800138000", "手机 一三八零零一三八零零零"),
        ("zh", "营业时间 9:00-18:00", "营业时间 九点到十八点"),  # a range, not a minus
        ("zh", "10-20人", "十到二十人"),
        ("zh", "气温 -5 度", "气温 负五 度"),  # a minus, where there is one
        ("en", "Open 8:00-20:00 daily", "Open eight o'clock to twenty hundred daily"),
        ("en", "Hours 9:00 - 15:30", "Hours nine o'clock to fifteen thirty"),
        # English phone numbers were said as amounts ("five hundred fifty-five dash ...")
        ("en", "Call 555-0142 today", "Call five five five, zero one four two today"),
        (
            "en",
            "Call +1 (415) 555-0198 or 010-8888-6666.",
            "Call plus one, four one five, five five five, zero one nine eight or "
            "zero one zero, eight eight eight eight, six six six six.",
        ),
        ("en", "Date 2024-03-15", "Date 2024-03-15"),  # a date is left to the engine
        ("en", "Pi is 3.14159265", "Pi is 3.14159265"),
        ("en", "Every 15 min6:00", "Every 15 min six o'clock"),  # a time glued to a word
    ],
)
def test_prices_and_times_in_words(language: str, text: str, spoken: str) -> None:
    assert say_numbers(text, language) == spoken


def test_prepare_gives_each_run_its_spoken_form() -> None:
    runs = prepare("Harbour Bakery 今天 9:30 开门，面包 ¥8.")
    assert [(r.language, r.spoken) for r in runs] == [
        ("en", "Harbour Bakery"),
        ("zh", "今天 九点三十分 开门，面包 八元."),
    ]


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        (
            "Flat white $3.50, opens at 7:05.",
            "Flat white three dollars and fifty cents, opens at seven oh five.",
        ),
        ("No numbers here.", "No numbers here."),
        ("Harbour Bakery 总计 ¥12.50", "Harbour Bakery 总计 十二元五角"),
        ("<b>Total</b> 7.20 👍", "Total 7.20"),  # a bare number: the engine reads it
    ],
)
def test_speakable_text_is_the_words_the_engines_are_given(text: str, spoken: str) -> None:
    from adapters.tts.speakable import speakable_text

    assert speakable_text(text) == spoken
