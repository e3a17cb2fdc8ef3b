"""``OfflineDescriber``: a deterministic description with no network and no model.

It writes two to four short sentences in the language of the text (English or Simplified
Chinese) from the OCR text and the measured features (``request.facts``, the
``ImageFeatures`` fields as a dict; every key is optional). A question is answered by
picking the OCR lines that share the most words (English) or characters (Chinese) with it,
and the answer says plainly when the text holds no answer.

The spoken text does not announce that it is an offline description; the result is marked
instead (``backend="offline"``, ``offline=True``) so the CLI or a flow can say so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from adapters.features.base import LOW_CONTRAST_RANGE
from adapters.llm.base import Description, DescriptionRequest, OnDelta

MAX_QUOTE_EN = 200  # characters of OCR text quoted in a description
MAX_QUOTE_ZH = 100  # Chinese carries more per character and is spoken slower
BLURRY_BELOW = 50.0  # variance of the Laplacian; sharp text is in the hundreds or more

_CJK = "\u3400-\u9fff\uf900-\ufaff"
_CJK_CHAR = re.compile(f"[{_CJK}]")
_CJK_GAP = re.compile(f"(?<=[{_CJK}])\\s+(?=[{_CJK}])")
_EN_WORD = re.compile(r"[a-z0-9]+(?:[.,:][0-9]+)*")
_SENTENCE_END_EN = ".!?;"
_SENTENCE_END_ZH = "。！？；"
_ZH_PUNCT = "。！？；，、：,.!?;:"

_STOP_EN_WORDS = (
    "a an the is are was were be been what whats which who whom whose where when why how "
    "do does did of in on at to for from by with about this that these those it its there "
    "here me my i you your we our they their he she him her please tell can could would "
    "will shall should may might any some image picture photo show shows shown see say "
    "says said read text written write words word and or if not no yes than then so as "
    "into"
)
_STOP_EN = frozenset(_STOP_EN_WORDS.split())
_READ_WORDS_EN = frozenset({"say", "says", "said", "read", "written", "write", "text", "words"})
_COLOUR_WORDS_EN = frozenset({"colour", "color", "colours", "colors", "coloured", "colored"})
_SYNONYMS_EN = {
    "cost": ("total", "price", "amount", "due", "sum"),
    "price": ("total", "cost", "amount", "due"),
    "pay": ("total", "amount", "due"),
    "much": ("total", "price", "amount", "due"),
    "date": ("date",),
    "when": ("date", "time", "open", "hours"),
    "phone": ("tel", "telephone", "phone", "call"),
    "call": ("tel", "telephone", "phone"),
    "address": ("street", "st", "road", "rd", "avenue", "ave"),
    "hours": ("open", "am", "pm", "hours"),
}
_STOP_ZH = frozenset("的是了吗呢吧啊呀么什哪谁怎几这那个图片中里上请问告诉我你有在和与吗？?，。")
_READ_ZH = ("写", "文字", "内容", "说")
# Question words stripped before matching characters, so "上面写了什么" matches no line by "面".
_FILLERS_ZH = (
    "上面",
    "写了",
    "写着",
    "写",
    "文字",
    "内容",
    "说",
    "颜色",
    "什么",
    "多少",
    "哪里",
    "哪儿",
    "怎么",
    "为什么",
    "是不是",
)
_COLOUR_ZH = ("颜色", "什么色", "哪种色")
_MONEY_ZH = ("多少", "价", "钱", "费")
_MONEY_HINTS_ZH = "总计合价元金额¥￥"
_TIME_ZH = ("什么时候", "何时", "几点", "时间", "哪天", "几号", "星期几")
_TIME_HINTS_ZH = "点时分午周日月号"

_COLOUR_ZH_NAMES = {
    "white": "白",
    "black": "黑",
    "grey": "灰",
    "gray": "灰",
    "silver": "银",
    "red": "红",
    "orange": "橙",
    "yellow": "黄",
    "gold": "金",
    "green": "绿",
    "olive": "橄榄绿",
    "teal": "青",
    "cyan": "青",
    "blue": "蓝",
    "navy": "藏青",
    "purple": "紫",
    "violet": "紫",
    "magenta": "品红",
    "pink": "粉",
    "brown": "棕",
    "beige": "米",
    "cream": "米白",
    "tan": "棕褐",
}
_SHADE_ZH = {"dark": "深", "light": "浅", "pale": "淡", "bright": "亮", "deep": "深"}
_ORIENTATION_ZH = {"landscape": "横向", "portrait": "竖向", "square": "方形"}
_ORIENTATION_EN = {"landscape": "wide", "portrait": "tall", "square": "square"}
_LAYOUT_EN = {
    "text-heavy": " made up mostly of text",
    "text and picture": " with both text and picture content",
    "picture": " that is mainly a picture",
    "blank": " that looks almost blank",
}
_LAYOUT_ZH = {
    "text-heavy": "以文字为主",
    "text and picture": "图文并茂",
    "picture": "以画面为主",
    "blank": "几乎空白",
}


class OfflineDescriber:
    """Deterministic ``Describer`` grounded in the OCR text and image features; no network."""

    def __init__(self, *, max_quote_en: int = MAX_QUOTE_EN, max_quote_zh: int = MAX_QUOTE_ZH):
        self.max_quote_en = max_quote_en
        self.max_quote_zh = max_quote_zh

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def describe(self, request: DescriptionRequest, on_delta: OnDelta | None = None) -> Description:
        """Describe the image, or answer ``request.question``, from its text and features.

        ``on_delta``, when given, receives the whole text at once.
        """
        zh = request.language == "zh"
        lines = text_lines(request.ocr_text, zh=zh)
        facts = request.facts or {}
        if request.question and request.question.strip():
            question = request.question.strip()
            text = (
                _answer_zh(question, lines, facts, self.max_quote_zh)
                if zh
                else _answer_en(question, lines, facts, request.features_summary, self.max_quote_en)
            )
        elif zh:
            text = _describe(lines, facts, _features_zh(facts), self.max_quote_zh, zh=True)
        else:
            opening = _features_en(facts, request.features_summary, bool(lines))
            text = _describe(lines, facts, opening, self.max_quote_en, zh=False)
        if on_delta is not None:
            on_delta(text)
        return Description(
            text=text,
            language=request.language,
            backend="offline",
            model="offline",
            endpoint="local",
            offline=True,
        )


# -- text handling ------------------------------------------------------------------------


def text_lines(text: str, *, zh: bool) -> list[str]:
    """OCR text as clean lines: spaces collapsed, CJK gaps closed, debris dropped."""
    lines = []
    for raw in text.splitlines():
        line = " ".join(raw.split())
        if zh:
            line = _CJK_GAP.sub("", line)
        if any(ch.isalnum() for ch in line):  # drop "|||", "---" and other OCR debris
            lines.append(line)
    return lines


def join_lines(lines: Sequence[str], *, zh: bool) -> str:
    """Lines as one speakable run of text."""
    out = ""
    for line in lines:
        if not out:
            out = line
        elif zh:
            out += line if out[-1] in _ZH_PUNCT else "，" + line
        elif out[-1] in ".!?;:," or line[0].islower():
            out += " " + line
        else:
            out += ", " + line
    return out


def clip(text: str, limit: int, *, zh: bool) -> tuple[str, bool]:
    """``text`` cut to ``limit`` characters at a sentence or word boundary; (text, was_cut)."""
    if len(text) <= limit:
        return text, False
    head = text[:limit]
    ends = _SENTENCE_END_ZH + _SENTENCE_END_EN if zh else _SENTENCE_END_EN
    cut = _last_boundary(text, limit, ends)
    if cut >= limit // 2:
        return head[: cut + 1].rstrip(), True
    soft = "，、,: " if zh else " ,"
    cut = _last_boundary(text, limit, soft)
    if cut >= limit // 2:
        return head[:cut].rstrip(" ,，、:"), True
    return head.rstrip(), True


def _last_boundary(text: str, limit: int, marks: str) -> int:
    """The last index before ``limit`` of a mark that ends a sentence or a phrase, or -1.

    Latin punctuation counts only before a space or the end: the point in "$2.20" or the
    comma in "1,000" is no boundary (cut there, "$2..." is spoken as "two dollars").
    """
    for i in range(min(limit, len(text)) - 1, -1, -1):
        mark = text[i]
        if mark in marks and (mark not in ".!?;:," or i + 1 == len(text) or text[i + 1].isspace()):
            return i
    return -1


def _count_words(lines: Sequence[str], *, zh: bool) -> int:
    if zh:
        text = "".join(lines)
        return len(_CJK_CHAR.findall(text)) + len(re.findall(r"[A-Za-z0-9]+", text))
    return sum(len(line.split()) for line in lines)


def _strip_end(text: str) -> str:
    return text.rstrip(".。!！?？;；,，:： ")


def _end_sentence(text: str, *, zh: bool) -> str:
    """``text`` ending in its own final punctuation, or in a full stop."""
    text = text.rstrip(" ,，;；:：")
    if text and text[-1] in ".!?。！？":
        return text
    return text + ("。" if zh else ".")


# -- features -----------------------------------------------------------------------------


def _number(facts: Mapping[str, Any], key: str) -> float | None:
    value = facts.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _text(facts: Mapping[str, Any], key: str) -> str:
    value = facts.get(key)
    return value.strip().lower() if isinstance(value, str) else ""


def colour_names(facts: Mapping[str, Any], limit: int = 3, min_share: float = 0.08) -> list[str]:
    """Names of the main colours, largest share first, from ``facts["dominant_colours"]``."""
    raw = facts.get("dominant_colours") or facts.get("dominant_colors") or ()
    found: list[tuple[float, int, str]] = []
    if isinstance(raw, Sequence) and not isinstance(raw, str):
        for index, item in enumerate(raw):
            if isinstance(item, Mapping):
                name, share = item.get("name"), item.get("share", 0.0)
            else:
                name, share = getattr(item, "name", None), getattr(item, "share", 0.0)
            if isinstance(name, str) and name.strip():
                share = float(share) if isinstance(share, int | float) else 0.0
                found.append((share, index, name.strip().lower()))
    found.sort(key=lambda t: (-t[0], t[1]))
    names: list[str] = []
    for share, _, name in found:
        if name not in names and (share >= min_share or not names):
            names.append(name)
    return names[:limit]


def _and_en(items: Sequence[str]) -> str:
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def colour_zh(name: str) -> str | None:
    """A Chinese colour name for an English one ("dark blue" -> "深蓝色"), or None."""
    words = name.replace("-", " ").split()
    if not words:
        return None
    base = _COLOUR_ZH_NAMES.get(words[-1])
    if base is None:
        return None
    shade = "".join(_SHADE_ZH.get(w, "") for w in words[:-1])
    return f"{shade}{base}色"


def _is_blurry(facts: Mapping[str, Any]) -> bool:
    sharpness = _number(facts, "sharpness")
    return sharpness is not None and sharpness < BLURRY_BELOW


def _light(facts: Mapping[str, Any], *, dark: str, bright: str) -> list[str]:
    """``[dark]`` below 0.3 mean brightness (0-1), ``[bright]`` above 0.75, else ``[]``."""
    brightness = _number(facts, "brightness")
    if brightness is not None and brightness < 0.3:
        return [dark]
    if brightness is not None and brightness > 0.75:
        return [bright]
    return []


def _features_en(facts: Mapping[str, Any], summary: str, has_text: bool) -> str:
    """The first sentence: what kind of picture this is."""
    if not facts:
        tail = f" Its measured features: {_strip_end(summary.strip())}." if summary.strip() else ""
        return f"This is an image.{tail}"
    adjectives = _light(facts, dark="dark", bright="bright")
    contrast, spread = _number(facts, "contrast"), _number(facts, "luma_range")
    faint = spread is None or spread < LOW_CONTRAST_RANGE  # dark text on white is not faint
    if contrast is not None and contrast < 0.08 and faint and _text(facts, "layout") != "blank":
        adjectives.append("low-contrast")
    shape = _ORIENTATION_EN.get(_text(facts, "orientation"))
    if shape:
        adjectives.append(shape)
    layout = _text(facts, "layout")
    clause = _LAYOUT_EN.get(layout, "")
    if layout == "picture" and has_text:
        clause = " that is mainly a picture with some text"
    words = ", ".join(adjectives)
    article = "an" if (words or "image")[0] in "aeiou" else "a"
    sentence = f"This is {article} {words + ' ' if words else ''}image{clause}"
    colours = colour_names(facts)
    if len(colours) == 1:
        sentence += f", mostly {colours[0]}"
    elif colours:
        sentence += f", coloured mostly {_and_en(colours)}"
    return sentence + "."


def _features_zh(facts: Mapping[str, Any]) -> str:
    adjectives = _light(facts, dark="偏暗", bright="明亮")
    adjectives.append(_ORIENTATION_ZH.get(_text(facts, "orientation"), ""))
    adjectives.append(_LAYOUT_ZH.get(_text(facts, "layout"), ""))
    words = "、".join(a for a in adjectives if a)
    sentence = f"这是一张{words + '的' if words else ''}图片"
    colours = [c for c in (colour_zh(n) for n in colour_names(facts)) if c]
    colours = list(dict.fromkeys(colours))
    if colours:
        sentence += "，主要颜色是" + "和".join(colours)
    return sentence + "。"


# -- descriptions -------------------------------------------------------------------------


# What a description says, by language (False: English, True: Chinese).
_QUOTE_CUT = {
    False: 'It holds about {count} words of text, beginning: "{quote}..."',
    True: "图中约有{count}个字，开头写道：“{quote}……”",
}
_QUOTE_WHOLE = {False: 'The text in it reads: "{quote}"', True: "图中文字写道：“{quote}”"}
_BLURRY = {
    False: "The image looks blurry, so some words may be misread.",
    True: "图片有些模糊，个别文字可能识别有误。",
}
_NO_TEXT = {False: "No text was found in it.", True: "图中没有识别出文字。"}


def _quote(lines: Sequence[str], limit: int, *, zh: bool) -> str:
    """A sentence quoting the text, cut to ``limit`` characters (then its length is said)."""
    quote, cut = clip(join_lines(lines, zh=zh), limit, zh=zh)
    if cut:
        count = _count_words(lines, zh=zh)
        return _QUOTE_CUT[zh].format(count=count, quote=_strip_end(quote))
    return _QUOTE_WHOLE[zh].format(quote=_end_sentence(quote, zh=zh))


def _describe(
    lines: Sequence[str], facts: Mapping[str, Any], opening: str, limit: int, *, zh: bool
) -> str:
    """``opening`` (what kind of picture), the quoted text or that there is none, blur."""
    sentences = [opening]
    if lines:
        sentences.append(_quote(lines, limit, zh=zh))
        if _is_blurry(facts):
            sentences.append(_BLURRY[zh])
    else:
        sentences.append(_NO_TEXT[zh])
    return ("" if zh else " ").join(sentences)


# -- answers ------------------------------------------------------------------------------


def _stem(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _terms_en(text: str) -> set[str]:
    return {_stem(w) for w in _EN_WORD.findall(text.lower())}


def best_lines(question: str, lines: Sequence[str], *, zh: bool, limit: int = 2) -> list[str]:
    """The OCR lines that best match ``question`` (in their original order), or []."""
    weights: dict[str, float] = {}
    if zh:
        stripped = question
        for filler in _FILLERS_ZH:
            stripped = stripped.replace(filler, " ")
        for ch in stripped:
            if (_CJK_CHAR.match(ch) or ch.isalnum()) and ch not in _STOP_ZH:
                weights[ch.lower()] = 1.0
        for asks, hints in ((_MONEY_ZH, _MONEY_HINTS_ZH), (_TIME_ZH, _TIME_HINTS_ZH)):
            if any(w in question for w in asks):
                for ch in hints:
                    weights.setdefault(ch, 0.5)
    else:
        for word in _terms_en(question):
            if word not in _STOP_EN and word not in _COLOUR_WORDS_EN:
                weights[word] = 1.0
        for word in _terms_en(question):
            for related in _SYNONYMS_EN.get(word, ()):
                weights.setdefault(related, 0.5)
    if not weights:
        return []
    scores = []
    for index, line in enumerate(lines):
        present = set(line.lower()) if zh else _terms_en(line)
        score = sum(w for term, w in weights.items() if term in present)
        scores.append((score, index))
    top = max((s for s, _ in scores), default=0.0)
    if top <= 0:
        return []
    chosen = sorted(i for s, i in scores if s == top)[:limit]
    return [lines[i] for i in chosen]


def _answer_en(
    question: str,
    lines: Sequence[str],
    facts: Mapping[str, Any],
    summary: str,
    limit: int,
) -> str:
    words = set(_EN_WORD.findall(question.lower()))
    matches = best_lines(question, lines, zh=False)
    if matches:
        return f"Based on the text in the image: {_strip_end('; '.join(matches))}."
    if words & _COLOUR_WORDS_EN:
        colours = colour_names(facts)
        if colours:
            return f"The image's main colours are {_and_en(colours)}."
    if words & _READ_WORDS_EN and lines:
        return _quote(lines, limit, zh=False)
    if not lines:
        return "No text was found in the image, so it cannot answer that question. " + _features_en(
            facts, summary, False
        )
    quote, cut = clip(join_lines(lines, zh=False), limit // 2, zh=False)
    quote = _strip_end(quote) + "..." if cut else _end_sentence(quote, zh=False)
    return f'The text in the image does not seem to answer that question. It reads: "{quote}"'


def _answer_zh(question: str, lines: Sequence[str], facts: Mapping[str, Any], limit: int) -> str:
    matches = best_lines(question, lines, zh=True)
    if matches:
        return f"根据图中的文字：{_strip_end('；'.join(matches))}。"
    if any(w in question for w in _COLOUR_ZH):
        colours = [c for c in (colour_zh(n) for n in colour_names(facts)) if c]
        if colours:
            return "图片的主要颜色是" + "和".join(dict.fromkeys(colours)) + "。"
    if any(w in question for w in _READ_ZH) and lines:
        return _quote(lines, limit, zh=True)
    if not lines:
        return "图中没有识别出文字，无法回答这个问题。" + _features_zh(facts)
    quote, cut = clip(join_lines(lines, zh=True), limit // 2, zh=True)
    quote = _strip_end(quote) + "……" if cut else _end_sentence(quote, zh=True)
    return f"图中的文字似乎没有回答这个问题。图中写道：“{quote}”"
