"""Continuing an answer that was cut short, on any server.

Two ways to ask for the rest of an answer:

- **partial** (Model Studio's partial mode): the text so far is sent as a final
  ``{"role": "assistant", "content": T, "partial": true}`` message and the reply holds
  only the rest (https://help.aliyun.com/zh/model-studio/partial-mode).
- **portable** (any OpenAI-compatible server): the text so far as a plain assistant turn,
  then a user turn asking to go on. Servers that ignore ``partial`` (llama.cpp, vLLM,
  LiteLLM's mock) are served this way.

Either way the reply may restart the answer instead of continuing it. ``ContinuationJoiner``
holds back the start of a continuation until it can tell: a restart that repeats the text
so far is cut to what is new; a restart that says something else is dropped (the answer
stays cut, marked truncated); words repeated at the seam are removed; the pieces are joined
at a word boundary (a space between Latin words, none for CJK or before punctuation).

``cut_at_sentence(text)`` ends a kept-but-cut answer at its last full sentence, for speech.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from adapters.llm.chat.policy import Continuation
from adapters.llm.chat.types import ChatMessage
from adapters.text import CJK_PUNCTUATION, HAN, SENTENCE_END

CONTINUE_PROMPT = (
    "Your previous answer was cut off. Continue it exactly where it stopped, without "
    "repeating anything and without any preamble."
)
RESTART_MIN_CHARS = 16  # a continuation sharing this much of the answer's start restarted it
DECIDE_CHARS = 40  # text held back before deciding whether a continuation restarted
SEAM_MIN_CHARS = 4  # shortest repeated text at the seam that is removed
_NO_SPACE_BEFORE = set(",.;:!?)]}%'\"…，。；：！？、）」』")


def partial_mode(endpoint: str, setting: Continuation) -> bool:
    """True when ``endpoint`` is continued with partial mode.

    ``auto`` uses it on Model Studio hosts only (``dashscope*.aliyuncs.com``), whose API
    documents it; a partial continuation that restarts anyway is caught by the joiner.
    """
    if setting != "auto":
        return setting == "partial"
    host = (urlsplit(endpoint).hostname or "").lower()
    return host.startswith("dashscope") and host.endswith(".aliyuncs.com")


def continuation_messages(
    messages: tuple[ChatMessage, ...], text_so_far: str, *, partial: bool
) -> tuple[ChatMessage, ...]:
    """The conversation that asks for the rest of ``text_so_far``."""
    if partial:
        return (*messages, ChatMessage("assistant", text_so_far, partial=True))
    return (*messages, ChatMessage("assistant", text_so_far), ChatMessage("user", CONTINUE_PROMPT))


def _is_cjk(char: str) -> bool:
    return bool(char) and bool(HAN.match(char) or CJK_PUNCTUATION.match(char))


def join_gap(before: str, after: str) -> str:
    """The separator between answer text ``before`` and a continuation ``after`` (stripped)."""
    if not before or not after or before[-1].isspace():
        return ""
    if after[0] in _NO_SPACE_BEFORE or _is_cjk(before[-1]) or _is_cjk(after[0]):
        return ""
    return " "


def common_prefix_length(a: str, b: str) -> int:
    """How many leading characters ``a`` and ``b`` share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def seam_overlap(before: str, after: str) -> int:
    """Length of the longest start of ``after`` that ``before`` already ends with.

    Only whole words count (at least ``SEAM_MIN_CHARS`` characters, starting at a word
    boundary of ``before``), so "the" + "theatre" is no overlap.
    """
    longest = min(len(before), len(after))
    for k in range(longest, SEAM_MIN_CHARS - 1, -1):
        if not before.endswith(after[:k]):
            continue
        start = len(before) - k
        at_boundary = start == 0 or not before[start - 1].isalnum() or _is_cjk(before[start])
        ends_word = k == len(after) or not after[k].isalnum() or _is_cjk(after[k - 1])
        if at_boundary and ends_word:
            return k
    return 0


class ContinuationJoiner:
    """Turns one continuation's pieces into the new text to append, restart-safe.

    ``feed(piece)`` returns the text to deliver now (possibly "" while deciding);
    ``finish()`` returns what is left. ``restarted`` is True when the reply began the
    answer again; ``dropped`` when it said something else (nothing of it is used).
    """

    def __init__(self, so_far: str, *, partial: bool) -> None:
        self.so_far = so_far
        self.partial = partial
        self.buffer = ""
        self.decided = False
        self.restarted = False
        self.dropped = False
        self._emitted = ""

    def feed(self, piece: str) -> str:
        """Take the next piece of the continuation; return the text to deliver now."""
        if self.dropped:
            return ""
        if self.decided:
            self._emitted += piece
            return piece
        self.buffer += piece
        return self._decide(final=False)

    def finish(self) -> str:
        """The continuation ended: decide on what is held back; return it."""
        if self.decided or self.dropped:
            return ""
        return self._decide(final=True)

    @property
    def emitted(self) -> str:
        """Everything this joiner let through."""
        return self._emitted

    def _decide(self, *, final: bool) -> str:
        so_far = self.so_far
        text = self.buffer if self.partial else self.buffer.lstrip()
        stripped_so_far = so_far.lstrip()
        if not text:
            if final:
                self.decided = True
            return ""
        # A reply that so far repeats the answer's start: a restart, or too early to tell.
        if not final and stripped_so_far.startswith(text) and len(text) < len(stripped_so_far):
            return ""
        if text.startswith(stripped_so_far) and len(stripped_so_far) >= RESTART_MIN_CHARS:
            self.restarted = True
            return self._emit(text[len(stripped_so_far) :], exact=True)
        common = common_prefix_length(stripped_so_far, text)
        if common >= RESTART_MIN_CHARS or (final and common == len(text) and common > 0):
            tail = stripped_so_far[-DECIDE_CHARS:]
            where = text.find(tail)
            if where != -1:
                self.restarted = True
                return self._emit(text[where + len(tail) :], exact=True)
            if not final and len(text) < len(stripped_so_far) + DECIDE_CHARS:
                return ""  # a restart: wait for it to reach the end of the text so far
            self.restarted = True
            self.dropped = True
            return ""
        if not final and len(text) < min(DECIDE_CHARS, len(stripped_so_far)):
            return ""  # too early to tell a seam repeat from new text
        return self._emit(text[seam_overlap(so_far, text) :], exact=self.partial)

    def _emit(self, new: str, *, exact: bool) -> str:
        self.decided = True
        if not exact:
            new = new.lstrip()
            new = join_gap(self.so_far, new) + new if new else ""
        self._emitted += new
        return new


def cut_at_sentence(text: str, *, keep_fragment: bool = True) -> str:
    """``text`` up to the end of its last complete sentence (``adapters.text``'s rule).

    A text with no complete sentence is kept whole, or dropped (``""``) when
    ``keep_fragment`` is False.
    """
    stripped = text.rstrip()
    last = None
    for match in SENTENCE_END.finditer(stripped + " "):  # a final "." ends a sentence too
        last = match
    if last is None:
        return stripped if keep_fragment else ""
    return stripped[: last.end()]
