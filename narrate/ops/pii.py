"""Replace personal data in text with typed placeholders before it leaves the machine.

``anonymize("call 138 0013 8000 or mail li@example.cn")`` gives
``"call [PHONE_1] or mail [EMAIL_1]"``. Detected, in this order (an earlier kind claims its
span first, so an ID number is never half-read as a phone number):

- ``EMAIL``      e-mail addresses
- ``CN_ID``      Chinese resident ID numbers (region, birth date and MOD 11-2 check digit)
- ``BANK_CARD``  13-19 digit card numbers, plain or grouped, that pass the Luhn check
- ``IP``         IPv6 and IPv4 addresses that ``ipaddress`` accepts
- ``PHONE``      Chinese mobiles and landlines, E.164 and North American numbers

Numbers that fail their checksum stay as they are, as do prices, dates, times and other
short numbers. One value gets one placeholder within a text (or a list of messages), so a
model can still tell "[PHONE_1]" from "[PHONE_2]". The result never holds the originals:
only their kinds and offsets. Enable it for LLM calls with ``NARRATE_ANONYMIZE=1``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple


class Replacement(NamedTuple):
    """Where one value was replaced: its kind, its span in the original text, its placeholder."""

    kind: str
    start: int
    end: int
    placeholder: str


@dataclass(frozen=True)
class AnonymizedText:
    """Anonymised text and where its replacements were; the original values are not kept."""

    text: str
    replacements: tuple[Replacement, ...] = ()

    @property
    def counts(self) -> dict[str, int]:
        """How many spans of each kind were replaced, e.g. ``{"PHONE": 2}``."""
        return dict(Counter(r.kind for r in self.replacements))

    def __str__(self) -> str:
        return self.text


# --- validators -----------------------------------------------------------------------

# First two digits of a resident ID: the province-level region (GB/T 2260).
# fmt: off
_CN_PROVINCES = frozenset({
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
    "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64",
    "65", "71", "81", "82", "83", "91",
})
# fmt: on
_CN_ID_WEIGHTS = tuple(2 ** (17 - i) % 11 for i in range(17))


def valid_cn_id(value: str) -> bool:
    """True for an 18-character resident ID with a real region, birth date and check digit."""
    value = value.upper()
    if not re.fullmatch(r"[0-9]{17}[0-9X]", value) or value[:2] not in _CN_PROVINCES:
        return False
    try:
        born = dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    if not dt.date(1900, 1, 1) <= born <= dt.date.today():
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], _CN_ID_WEIGHTS, strict=True))
    return "10X98765432"[total % 11] == value[17]


def luhn_valid(digits: str) -> bool:
    """True when the digit string passes the Luhn (mod 10) check."""
    total = 0
    for i, char in enumerate(reversed(digits)):
        d = int(char)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _digits(text: str) -> str:
    return re.sub(r"[^0-9]", "", text)


# --- detectors: (kind, pattern, normalise-or-None-to-reject) ---------------------------

_A = re.ASCII
_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}(?![\w-])",
    _A,
)
_CN_ID = re.compile(r"(?<![0-9A-Za-z])[0-9]{17}[0-9Xx](?![0-9A-Za-z])", _A)
_CARD = re.compile(
    r"(?<![0-9+.,\-])(?:[0-9]{13,19}"
    r"|[0-9]{4}(?P<sep>[ -])[0-9]{4}(?:(?P=sep)[0-9]{4}){1,2}(?:(?P=sep)[0-9]{1,4})?"
    r"|[0-9]{4}(?P<amex>[ -])[0-9]{6}(?P=amex)[0-9]{5})(?![0-9]|[.,][0-9])",
    _A,
)
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9A-Fa-f]{0,4})"
    r"(?![\w:]|\.[0-9])",
    _A,
)
_IPV4 = re.compile(r"(?<![\w.])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?![\w]|\.[0-9])", _A)
_CN_PREFIX = r"(?:(?:\+|00)86[ -]?)?"
_CN_MOBILE = re.compile(rf"(?<![\w+]){_CN_PREFIX}1[3-9][0-9](?:[ -]?[0-9]{{4}}){{2}}(?![0-9])", _A)
_CN_LANDLINE = re.compile(
    rf"(?<![\w+]){_CN_PREFIX}(?:0[1-9][0-9]{{1,2}}|\(0[1-9][0-9]{{1,2}}\))[ -]?"
    rf"[0-9]{{3,4}}[ -]?[0-9]{{4}}(?![0-9]|-[0-9])",
    _A,
)
_E164 = re.compile(r"(?<![\w+])\+[1-9][0-9]{0,2}(?:[ .-]?\(?[0-9]{1,5}\)?){2,5}(?![0-9])", _A)
_NANP = re.compile(
    r"(?<![\w+(])(?:\+?1[ .-]?)?(?:\([2-9][0-9]{2}\) ?|[2-9][0-9]{2}[ .-])[0-9]{3}[ .-][0-9]{4}"
    r"(?![0-9]|[.-][0-9])",
    _A,
)


def _norm_email(text: str) -> str | None:
    return text.lower()


def _norm_cn_id(text: str) -> str | None:
    return text.upper() if valid_cn_id(text) else None


def _norm_card(text: str) -> str | None:
    digits = _digits(text)
    ok = 13 <= len(digits) <= 19 and digits[0] in "234569" and luhn_valid(digits)
    return digits if ok else None


def _norm_ip(text: str) -> str | None:
    try:
        return ipaddress.ip_address(text).compressed
    except ValueError:
        return None


def _norm_ipv6(text: str) -> str | None:
    return _norm_ip(text) if re.search(r"[0-9A-Fa-f]", text) else None


def _norm_cn_phone(text: str) -> str | None:
    digits = _digits(text)
    return (
        digits[2:] if text.startswith("+86") else digits[4:] if text.startswith("0086") else digits
    )


def _norm_e164(text: str) -> str | None:
    digits = _digits(text)
    if not 8 <= len(digits) <= 15:
        return None
    return digits[2:] if digits.startswith("86") else "+" + digits


def _norm_nanp(text: str) -> str | None:
    digits = _digits(text)
    return "+1" + digits[-10:]


Normaliser = Callable[[str], str | None]

_DETECTORS: tuple[tuple[str, re.Pattern[str], Normaliser], ...] = (
    ("EMAIL", _EMAIL, _norm_email),
    ("CN_ID", _CN_ID, _norm_cn_id),
    ("BANK_CARD", _CARD, _norm_card),
    ("IP", _IPV6, _norm_ipv6),
    ("IP", _IPV4, _norm_ip),
    ("PHONE", _CN_MOBILE, _norm_cn_phone),
    ("PHONE", _CN_LANDLINE, _norm_cn_phone),
    ("PHONE", _E164, _norm_e164),
    ("PHONE", _NANP, _norm_nanp),
)


_PLACEHOLDER = re.compile(r"\[(?:EMAIL|PHONE|CN_ID|BANK_CARD|IP)_\d+\]")


class Anonymizer:
    """Anonymises several texts with shared placeholders: one value, one placeholder."""

    def __init__(self) -> None:
        self._placeholders: dict[tuple[str, str], str] = {}
        self._originals: dict[str, str] = {}  # placeholder -> first original, kept in memory
        self._per_kind: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(counts={dict(self._per_kind)})"

    def _placeholder(self, kind: str, value: str) -> str:
        key = (kind, value)
        if key not in self._placeholders:
            self._per_kind[kind] += 1
            self._placeholders[key] = f"[{kind}_{self._per_kind[kind]}]"
        return self._placeholders[key]

    def anonymize(self, text: str) -> AnonymizedText:
        """``text`` with every detected value replaced by its typed placeholder."""
        found: list[tuple[int, int, str, str]] = []  # start, end, kind, normalised value
        taken: list[tuple[int, int]] = []
        for kind, pattern, normalise in _DETECTORS:
            for match in pattern.finditer(text):
                start, end = match.span()
                if any(start < t_end and t_start < end for t_start, t_end in taken):
                    continue
                value = normalise(match.group())
                if value is None:
                    continue
                taken.append((start, end))
                found.append((start, end, kind, value))
        found.sort()
        pieces: list[str] = []
        replacements: list[Replacement] = []
        cursor = 0
        for start, end, kind, value in found:
            placeholder = self._placeholder(kind, value)
            self._originals.setdefault(placeholder, text[start:end])
            pieces += [text[cursor:start], placeholder]
            replacements.append(Replacement(kind, start, end, placeholder))
            cursor = end
        pieces.append(text[cursor:])
        return AnonymizedText("".join(pieces), tuple(replacements))

    def anonymize_message(self, message: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of an OpenAI-style message with its text (string or text parts) anonymised."""
        out = dict(message)
        content = message.get("content")
        if isinstance(content, str):
            out["content"] = self.anonymize(content).text
        elif isinstance(content, list):
            parts = []
            for part in content:
                if isinstance(part, Mapping) and part.get("type") == "text":
                    part = {**part, "text": self.anonymize(str(part.get("text", ""))).text}
                parts.append(part)
            out["content"] = parts
        return out

    def restore(self, text: str) -> str:
        """``text`` with this anonymiser's placeholders put back to the original values.

        For local use only (e.g. the spoken answer): what was sent stays anonymised.
        """
        return _PLACEHOLDER.sub(lambda m: self._originals.get(m.group(), m.group()), text)

    @property
    def counts(self) -> dict[str, int]:
        """How many distinct values of each kind were replaced so far."""
        return dict(self._per_kind)


def anonymize(text: str) -> AnonymizedText:
    """``text`` with e-mails, phones, resident IDs, card numbers and IPs replaced."""
    return Anonymizer().anonymize(text)


def anonymize_messages(messages: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Copies of OpenAI-style messages, anonymised with placeholders shared across them.

    String content and ``{"type": "text"}`` parts are rewritten; image parts and every
    other key are kept as they are. The input is not modified.
    """
    anonymizer = Anonymizer()
    return [anonymizer.anonymize_message(m) for m in messages]
