"""What a speech engine can say: clean the text, split it by script, read numbers naturally.

An answer from a model may hold things no speech engine can say, and espeak-ng stops at a
NUL (the rest of the answer was silently lost). ``prepare`` turns the result's text into
runs, each of one script and so one voice (Han -> Mandarin, Latin -> English, whatever the
image's language was):

1. ``clean_text``: markup tags and Markdown marks are dropped (their words stay), HTML
   entities decoded, emoji removed with the ``emoji`` library (ZWJ sequences, flags, skin
   tones), control characters (NUL included) become spaces, format characters (zero-width
   space/joiners, BOM, bidi marks, soft hyphen) and variation selectors are dropped.
2. ``split_runs``: letters decide a run's language; digits, spaces and punctuation join the
   nearest letters (``总计 12 元`` stays Mandarin, ``Harbour Bakery`` inside Chinese is English).
3. ``say_numbers``: prices and clock times are written out per language (``$7.40`` ->
   "seven dollars and forty cents", ``¥12.50`` -> "十二元五角", ``14:30`` -> "十四点三十分"),
   with ``num2words`` for English and ``cn2an`` for Chinese; other numbers the engines read.

When no letter or digit is left, ``InputError`` says the answer had no words in it.
``said`` joins the runs' spoken forms back into one string: the words the WAV says.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from adapters.errors import InputError

NOTHING_SPEAKABLE = (
    "nothing speakable: the answer had no words in it (only emoji, symbols or markup)"
)

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff"
# A number is one token with its currency sign and inner separators (``¥12.50``, ``18:00``,
# ``1,200``): split, "to 18:00营业" was said "to eighteen" in English and "零" in Mandarin.
_TOKEN = re.compile(
    rf"[{_HAN}]+|[^\W\d_]+|[$\u20ac\u00a3\u00a5\uffe5]?\d+(?:[.,:]\d+)*|\s+|.", re.S
)
_HAN_RE = re.compile(rf"[{_HAN}]")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")  # terminal colour codes from a log
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9:-]*(?:\s[^<>]*)?/?>")
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)\s]*\)")
_MD_EMPHASIS = re.compile(r"(\*\*|__|~~|\*|`+)(?=\S)(.+?)(?<=\S)\1")
_MD_LINE_START = re.compile(r"^[ \t]*(?:#{1,6}[ \t]+|[-*+][ \t]+|>[ \t]*)", re.M)
_SPACE_BEFORE_PUNCT = re.compile(r"[ \t]+([,.!?;:，。！？；：、])")
_CURRENCY_EN = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "€": ("euro", "euros", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "¥": ("yuan", "yuan", "fen", "fen"),
    "￥": ("yuan", "yuan", "fen", "fen"),
}
_CURRENCY_ZH = {"$": "美元", "€": "欧元", "£": "英镑", "¥": "元", "￥": "元"}
_AMOUNT = r"(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?(?!\d)"
_PRICE_SYMBOL = re.compile(r"([$€£¥￥])\s?" + _AMOUNT)
_PRICE_YUAN = re.compile(_AMOUNT + r"\s?元")
_TIME = re.compile(r"(?<![\d:])([01]?\d|2[0-3]):([0-5]\d)(?![\d:])(?:\s?([ap])\.?\s?m\b\.?)?", re.I)
# A dash between two clock times is a range: "9:00-18:00" ("to", "到"), not a minus
_TIME_RANGE = re.compile(
    r"(?<![\d:])(\d{1,2}:\d{2}(?:\s?[ap]\.?\s?m\b\.?)?)\s*[-\u2013\u2014~\uff5e]\s*(?=\d{1,2}:\d{2}(?![\d:]))",
    re.I,
)
# A phone number or a code: groups of digits joined by "-" or spaces (PHONE_MIN_DIGITS or
# more in all), or one run of that many digits; said digit by digit ("021-6543 2100" was
# "二十一负六千五百四十三 二千一百" in Chinese: the 0 lost and a "minus" added)
PHONE_MIN_DIGITS = 7
_DIGIT_GROUPS = re.compile(
    r"(?<![\d.,:])(?:\+\d{1,3}[ -]?)?(?:\(\d{2,4}\)[ -]?)?\d{2,5}(?:[ -]\d{2,5}){1,3}(?!\d|[.,:]\d)"
    rf"|(?<![\d.,:])\+?\d{{{PHONE_MIN_DIGITS},}}(?!\d|[.,:]\d)"
)
_NUMBER_RANGE = re.compile(r"(?<=\d)\s*[-\u2013\u2014~\uff5e]\s*(?=\d)")  # "3-4天": 三到四天
_ZH_DIGITS = str.maketrans("0123456789", "零一二三四五六七八九")
_EN_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_GLUED_TIME = re.compile(r"(?<=[A-Za-z])(?=\d{1,2}:\d{2}(?![\d:]))")  # "min6:00": "min 6:00"


@dataclass(frozen=True)
class Run:
    """A stretch of text in one script.

    Attributes:
        text: The cleaned text as written.
        spoken: The text for the engine, with prices and times in words.
        language: ``en`` (Latin and other alphabets) or ``zh`` (Han).
    """

    text: str
    spoken: str
    language: str


def clean_text(text: str) -> str:
    """``text`` without what a speech engine cannot say; the words themselves are kept.

    Args:
        text: Any text, e.g. a model's answer.

    Returns:
        The cleaned text: single spaces, lines kept, no control/format characters, markup
        or emoji.
    """
    text = unicodedata.normalize("NFC", text)
    text = _ANSI.sub(" ", text)
    text = _TAG.sub(" ", text)
    text = html.unescape(text)
    text = _MD_LINK.sub(r"\1", text)
    text = _MD_EMPHASIS.sub(r"\2", text)
    text = _MD_LINE_START.sub("", text)
    if not text.isascii():  # an emoji is never ASCII: skip the library's import (~50 ms)
        import emoji

        text = emoji.replace_emoji(text, " ")
    out: list[str] = []
    for ch in text:
        category = unicodedata.category(ch)
        if ch in "\n\r\u2028\u2029\x85":
            out.append("\n")
        elif category == "Cc":
            out.append(" ")  # NUL, tab, escape...: a gap, never the end of the text
        elif category in ("Cf", "Co", "Cs", "Cn") or "\ufe00" <= ch <= "\ufe0f":
            continue  # zero-width, BOM, bidi marks, soft hyphen, private use, selectors
        elif category == "So":
            out.append(" ")  # pictographs the emoji table does not list
        else:
            out.append(ch)
    lines = (re.sub(r"[ \t\u3000]+", " ", line).strip() for line in "".join(out).split("\n"))
    joined = "\n".join(line for line in lines if line)
    return _SPACE_BEFORE_PUNCT.sub(r"\1", joined)


def _letter_language(token: str) -> str | None:
    if _HAN_RE.match(token):
        return "zh"
    if token[0].isalpha():
        return "en"
    return None


def split_runs(text: str, hint: str = "en") -> list[tuple[str, str]]:
    """Cut cleaned ``text`` into ``(text, language)`` runs of one script each.

    Args:
        text: Cleaned text (see ``clean_text``).
        hint: Language for text with no letters at all (only digits): ``en`` or ``zh``.

    Returns:
        Runs in order; joined they give ``text`` back.
    """
    tokens = [(m.start(), m.end(), m.group()) for m in _TOKEN.finditer(text)]
    langs = [_letter_language(tok) for _, _, tok in tokens]
    lettered = [i for i, lang in enumerate(langs) if lang]
    if not lettered:
        return [(text, hint if hint in ("en", "zh") else "en")] if text else []
    resolved: list[str] = []
    for i, (start, end, _) in enumerate(tokens):
        if langs[i]:
            resolved.append(str(langs[i]))
            continue
        before = [j for j in lettered if j < i]
        after = [j for j in lettered if j > i]
        if not before:
            resolved.append(str(langs[after[0]]))
        elif not after:
            resolved.append(str(langs[before[-1]]))
        else:
            gap_before = start - tokens[before[-1]][1]
            gap_after = tokens[after[0]][0] - end
            nearest = after[0] if gap_after < gap_before else before[-1]
            resolved.append(str(langs[nearest]))
    runs: list[tuple[str, str]] = []
    for (_, _, tok), lang in zip(tokens, resolved, strict=True):
        if runs and runs[-1][1] == lang:
            runs[-1] = (runs[-1][0] + tok, lang)
        else:
            runs.append((tok, lang))
    merged: list[tuple[str, str]] = []
    for chunk, lang in runs:  # a run with no letters or digits belongs to its neighbour
        if merged and not any(ch.isalnum() for ch in chunk):
            merged[-1] = (merged[-1][0] + chunk, merged[-1][1])
        elif merged and not any(ch.isalnum() for ch in merged[-1][0]):
            merged[-1] = (merged[-1][0] + chunk, lang)
        else:
            merged.append((chunk, lang))
    return [(chunk, lang) for chunk, lang in merged if chunk.strip()]


def _en_number(digits: str) -> str:
    from num2words import num2words

    return str(num2words(int(digits.replace(",", "")), lang="en"))


def _en_price(match: re.Match[str]) -> str:
    one, many, sub_one, sub_many = _CURRENCY_EN[match.group(1)]
    whole, cents = match.group(2), match.group(3)
    units = int(whole.replace(",", ""))
    sub = int(cents.ljust(2, "0")) if cents else 0
    change = f"{_en_number(str(sub))} {sub_one if sub == 1 else sub_many}"
    if units == 0 and sub:  # $0.98: "ninety-eight cents", not "zero dollars and ..."
        return change
    words = f"{_en_number(whole)} {one if units == 1 else many}"
    return f"{words} and {change}" if sub else words


def _en_time(match: re.Match[str]) -> str:
    hour, minute, half = int(match.group(1)), int(match.group(2)), match.group(3)
    words = _en_number(str(hour))
    if minute == 0:
        words += " o'clock" if half or hour <= 12 else " hundred"
    elif minute < 10:
        words += f" oh {_en_number(str(minute))}"
    else:
        words += f" {_en_number(str(minute))}"
    return words + (f" {half.lower()} m" if half else "")


def _zh_number(digits: str) -> str:
    import cn2an

    return str(cn2an.an2cn(digits.replace(",", "")))


def _zh_amount(whole: str, cents: str | None, unit: str) -> str:
    words = _zh_number(whole) + unit
    if cents:
        cents = cents.ljust(2, "0")
        jiao, fen = int(cents[0]), int(cents[1])
        if unit == "元":
            words += f"{_zh_number(str(jiao))}角" if jiao else ("零" if fen else "")
            words += f"{_zh_number(str(fen))}分" if fen else ""
        elif int(cents):
            words += _zh_number(str(int(cents))) + ("美分" if unit == "美元" else "分")
    return words


def _zh_time(match: re.Match[str]) -> str:
    hour, minute, half = int(match.group(1)), int(match.group(2)), match.group(3)
    prefix = ("上午" if half.lower() == "a" else "下午") if half else ""
    if minute == 0:
        return f"{prefix}{_zh_number(str(hour))}点"
    minutes = _zh_number(str(minute))
    return f"{prefix}{_zh_number(str(hour))}点{'零' if minute < 10 else ''}{minutes}分"


def _phone_groups(found: str) -> list[str]:
    """The digit groups of a ``_DIGIT_GROUPS`` match; none under ``PHONE_MIN_DIGITS`` digits.

    Fewer digits are a range such as "10-20", said as numbers.
    """
    groups = re.findall(r"\d+", found)
    return groups if sum(map(len, groups)) >= PHONE_MIN_DIGITS else []


def _zh_digits(match: re.Match[str]) -> str:
    """A phone number or code digit by digit, its groups apart: "021-6543" -> "零二一 六五四三"."""
    groups = _phone_groups(match.group(0))
    if not groups:
        return match.group(0)  # "10-20": a range, cn2an says it
    return " ".join(group.translate(_ZH_DIGITS) for group in groups)


def _en_digits(match: re.Match[str]) -> str:
    """A phone number digit by digit, its groups apart.

    "555-0142" is "five five five, zero one four two" (espeak-ng said "five hundred
    fifty-five dash zero one four two"); a range or an ISO date is left to the engine.
    """
    found = match.group(0)
    groups = _phone_groups(found)
    if not groups or _ISO_DATE.fullmatch(found):
        return found  # a range or a date: the engine says it
    words = [" ".join(_EN_DIGITS[int(d)] for d in group) for group in groups]
    return ("plus " if found.startswith("+") else "") + ", ".join(words)


def say_numbers(text: str, language: str) -> str:
    """Write prices and clock times in ``text`` out in words of ``language``.

    Args:
        text: One run of cleaned text.
        language: ``en`` or ``zh``.

    Returns:
        The text with prices and times in words, a dash between two times said as a range
        ("to", "到"), phone numbers and codes digit by digit; in Chinese runs other numbers
        as Chinese numerals (``cn2an``), in English runs they stay (the engines read them).
    """
    if language == "zh":
        text = _PRICE_SYMBOL.sub(
            lambda m: _zh_amount(m.group(2), m.group(3), _CURRENCY_ZH[m.group(1)]), text
        )
        text = _PRICE_YUAN.sub(lambda m: _zh_amount(m.group(1), m.group(2), "元"), text)
        text = _TIME_RANGE.sub(r"\1到", text)
        text = _TIME.sub(_zh_time, text)
        text = _DIGIT_GROUPS.sub(_zh_digits, text)
        text = _NUMBER_RANGE.sub("到", text)
        text = re.sub(r"(?<=\d),(?=\d{3})", "", text)
        try:
            import cn2an

            return str(cn2an.transform(text, "an2cn"))
        except (ValueError, KeyError, IndexError):  # cn2an refuses some shapes: keep digits
            return text
    text = _PRICE_SYMBOL.sub(_en_price, text)
    text = _TIME_RANGE.sub(r"\1 to ", text)
    text = _GLUED_TIME.sub(" ", text)
    text = _DIGIT_GROUPS.sub(_en_digits, text)
    return _TIME.sub(_en_time, text)


def require_speakable(cleaned: str) -> str:
    """``cleaned`` itself when it holds a letter or digit to speak.

    Args:
        cleaned: text after ``clean_text``.

    Returns:
        ``cleaned``, unchanged.

    Raises:
        InputError: no letter or digit in it (``NOTHING_SPEAKABLE``).
    """
    if not any(ch.isalnum() for ch in cleaned):
        raise InputError(None, NOTHING_SPEAKABLE)
    return cleaned


def prepare(text: str, hint: str = "en") -> list[Run]:
    """Clean ``text`` and cut it into speakable runs, one voice each.

    Args:
        text: The text of the result (a description or an answer).
        hint: Language for runs without letters (e.g. only a number): ``en`` or ``zh``.

    Returns:
        The runs, in order, each with its spoken form.

    Raises:
        InputError: No letter or digit is left after cleaning (``NOTHING_SPEAKABLE``).
    """
    if not isinstance(text, str):
        raise InputError(None, f"nothing speakable: expected text, got {type(text).__name__}")
    cleaned = require_speakable(clean_text(text))
    return [Run(chunk.strip(), say_numbers(chunk.strip(), lang), lang)
            for chunk, lang in split_runs(cleaned, hint)]  # fmt: skip


def said(cleaned: str, runs: Sequence[Run]) -> str:
    """What the engines are given for ``runs``, as one string: the words the WAV says.

    ``cleaned`` with each run's text replaced by its spoken form (``Run.spoken``: prices and
    times in words), the spaces and punctuation between runs kept: ``Flat white $3.50`` ->
    ``Flat white three dollars and fifty cents``.

    Args:
        cleaned: ``clean_text`` of the result's text.
        runs: ``prepare``'s runs of that text, in order.

    Returns:
        The spoken text.
    """
    parts: list[str] = []
    at = 0
    for run in runs:
        start = cleaned.find(run.text, at)
        if start < 0:  # not a run of ``cleaned``: say the runs as they are
            return " ".join(r.spoken for r in runs)
        parts += [cleaned[at:start], run.spoken]
        at = start + len(run.text)
    return "".join(parts) + cleaned[at:]


def speakable_text(text: str, hint: str = "en") -> str:
    """The words the WAV says for ``text``: cleaned, prices and times in words (``said``).

    Args:
        text: The text of the result.
        hint: Language for runs without letters, as for ``prepare``.

    Returns:
        The spoken text.

    Raises:
        InputError: No letter or digit is left after cleaning (``NOTHING_SPEAKABLE``).
    """
    return said(clean_text(text), prepare(text, hint))
