"""Replace personal data in text with typed placeholders before it leaves the machine.

``anonymize("call 138 0013 8000 or mail li@example.cn")`` gives
``"call [PHONE_1] or mail [EMAIL_1]"``. Detected, in this order (an earlier kind claims its
span first and masks it, so an ID number is never half-read as a phone number):

- ``EMAIL``      e-mail addresses (a regex for the common ``local@domain.tld`` form)
- ``CN_ID``      Chinese resident ID numbers (GB 11643-1999): ISO 7064 MOD 11-2 check digit,
  birth date and a region code in GB/T 2260, checked with python-stdnum's ``stdnum.cn.ric``
- ``BANK_CARD``  13-19 digit card numbers, plain or grouped, whose leading digits and length
  belong to a payment network (ISO/IEC 7812 IIN ranges) and that pass the Luhn check
  (``stdnum.luhn``)
- ``IP``         IPv6 and IPv4 addresses that ``ipaddress`` accepts
- ``PHONE``      numbers that libphonenumber (the ``phonenumbers`` port) finds and validates
  against its per-country numbering plans: Chinese mobiles, landlines and 400/800
  numbers, and international numbers written with ``+`` or ``00``

Numbers that fail their checksum or numbering plan stay as they are, as do prices, dates,
times, order numbers and other numbers that are not plausible card numbers. One value gets
one placeholder within a text (or a list of messages), so a model can still tell
"[PHONE_1]" from "[PHONE_2]": phones are compared in E.164 form, so ``138 0013 8000`` and
``+86 138-0013-8000`` are one value. The result never holds the originals: only their
kinds and offsets. Enable it for LLM calls with ``NARRATE_ANONYMIZE=1``.

Sources: libphonenumber (https://github.com/google/libphonenumber) and its Python port
``phonenumbers``; python-stdnum (https://arthurdejong.org/python-stdnum/); GB 11643-1999
"Citizen identification number"; ISO/IEC 7812-1 and the networks' IIN ranges as listed in
Wikipedia's "Payment card number" article.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import phonenumbers
from stdnum import luhn, numdb
from stdnum.cn import ric
from stdnum.exceptions import ValidationError


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

_CN_ID_FORM = re.compile(r"[0-9]{17}[0-9X]", re.ASCII)
# Residence permits for Hong Kong, Macao and Taiwan residents (issued since 2018) follow
# GB 11643 with these region codes, which name no county and so are not in stdnum's table.
_CN_PERMIT_REGIONS = frozenset({"810000", "820000", "830000"})


def _cn_region_known(code: str) -> bool:
    """True when python-stdnum's GB/T 2260 table lists ``code`` as a county in any year."""
    return any("county" in props for _, props in numdb.get("cn/loc").info(code))


def valid_cn_id(value: str) -> bool:
    """Tell whether ``value`` is a plausible 18-character Chinese resident ID number.

    The layout is GB 11643-1999: a six-digit region code (GB/T 2260), the birth date as
    YYYYMMDD, a three-digit sequence number and an ISO 7064 MOD 11-2 check digit (``X``
    for 10). The check digit, the birth date and the region table come from python-stdnum
    (``stdnum.cn.ric``). Unlike ``stdnum.cn.ric.is_valid``, a region counts if it existed in
    any year: people born before their district was created hold such numbers (Pudong,
    310115, dates from 1992). The residence permits of Hong Kong, Macao and Taiwan
    residents (810000, 820000, 830000) count too, and birth dates after today do not.

    Args:
        value: 18 characters, digits then a digit or ``X`` (either case), no separators.

    Returns:
        True when the check digit, the birth date and the region code are all right.
    """
    value = value.upper()
    if not _CN_ID_FORM.fullmatch(value) or ric.calc_check_digit(value) != value[-1]:
        return False
    try:
        born = ric.get_birth_date(value)
    except ValidationError:
        return False
    if born > dt.date.today():
        return False
    return value[:6] in _CN_PERMIT_REGIONS or _cn_region_known(value[:6])


def luhn_valid(digits: str) -> bool:
    """Tell whether a digit string passes the Luhn (mod 10) check, via ``stdnum.luhn``.

    Args:
        digits: The digits only, e.g. ``"4111111111111111"``.

    Returns:
        True when the Luhn checksum is 0; False for a wrong one, or for an empty string
        or one with other characters.
    """
    return bool(digits) and digits.isascii() and digits.isdigit() and luhn.is_valid(digits)


# Issuer identification number ranges and card-number lengths of the payment networks
# (ISO/IEC 7812-1 numbering; ranges and lengths as listed in Wikipedia's "Payment card
# number" article). (lowest prefix, highest prefix, lengths): a number belongs to a row when
# its first len(lowest) digits lie in the range and its length is one of the lengths.
# Receipt and order numbers mostly start with a date (2026...) or a shop code, which no
# network uses; 13-digit Visa numbers are no longer issued and are left out.
_CARD_RANGES: tuple[tuple[str, str, frozenset[int]], ...] = (
    ("4", "4", frozenset({16, 19})),  # Visa, Visa Electron
    ("51", "55", frozenset({16})),  # Mastercard
    ("2221", "2720", frozenset({16})),  # Mastercard (2-series)
    ("34", "34", frozenset({15})),  # American Express
    ("37", "37", frozenset({15})),  # American Express
    ("62", "62", frozenset(range(16, 20))),  # UnionPay (China UnionPay, most Chinese cards)
    ("81", "81", frozenset(range(16, 20))),  # UnionPay
    ("6011", "6011", frozenset(range(16, 20))),  # Discover
    ("644", "649", frozenset(range(16, 20))),  # Discover
    ("65", "65", frozenset(range(16, 20))),  # Discover
    ("3528", "3589", frozenset(range(16, 20))),  # JCB
    ("36", "36", frozenset(range(14, 20))),  # Diners Club International
    ("300", "305", frozenset(range(14, 20))),  # Diners Club
    ("3095", "3095", frozenset(range(14, 20))),  # Diners Club
    ("38", "39", frozenset(range(14, 20))),  # Diners Club
    ("2200", "2204", frozenset(range(16, 20))),  # Mir
    ("5018", "5018", frozenset(range(13, 20))),  # Maestro
    ("5020", "5020", frozenset(range(13, 20))),  # Maestro
    ("5038", "5038", frozenset(range(13, 20))),  # Maestro
    ("5893", "5893", frozenset(range(13, 20))),  # Maestro
    ("6304", "6304", frozenset(range(13, 20))),  # Maestro
    ("6759", "6759", frozenset(range(13, 20))),  # Maestro
    ("6761", "6763", frozenset(range(13, 20))),  # Maestro
)


def plausible_card_number(digits: str) -> bool:
    """Tell whether a digit string can be a payment card number.

    It must have the length a payment network issues for its leading digits (ISO/IEC 7812
    issuer identification number: Visa, Mastercard, American Express, UnionPay, Discover,
    JCB, Diners Club, Mir, Maestro) and pass the Luhn check (``stdnum.luhn``). About one in
    ten random digit strings passes Luhn alone; the range and length rule is what keeps
    receipt and order numbers out.

    Args:
        digits: The digits only, separators removed, e.g. ``"6222021234567890128"``.

    Returns:
        True for a Luhn-valid number in a network's range with one of its lengths.
    """
    in_range = any(
        len(digits) in lengths and low <= digits[: len(low)] <= high
        for low, high, lengths in _CARD_RANGES
    )
    return in_range and luhn_valid(digits)


def _digits(text: str) -> str:
    return re.sub(r"[^0-9]", "", text)


# --- detectors: each yields (start, end, normalised value) ----------------------------

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

# Phone numbers are found by libphonenumber's PhoneNumberMatcher. Numbers written without
# "+" or "00" are read as Chinese (so "(021) 6234 5678" is Shanghai, and "(415) 555-2671"
# without "+1" is read as Dandong's 0415 area: still replaced, under another E.164 value).
# Leniency VALID: the number must be valid in libphonenumber's numbering plan for its
# country (real prefixes and lengths), carry the trunk prefix where it is usually written
# ("010-...", not "10-..."), and not be glued to Latin letters ("abc8005001234").
# - POSSIBLE checks the length only: dates ("2026-11-30" as +86 20 2611 30), receipt
#   numbers ("000123"), IPv4 addresses and long decimals come out as phone numbers.
# - STRICT_GROUPING / EXACT_GROUPING also require the digits to be grouped as the country
#   formats them; libphonenumber warns that this loses coverage outside +1, and numbers
#   as people and OCR group them ("1380 013 8000", "+86 13800 138000") would leak.
_PHONE_REGION = "CN"
_PHONE_LENIENCY = phonenumbers.Leniency.VALID

Found = Iterator[tuple[int, int, str]]


def _regex_finder(
    pattern: re.Pattern[str], normalise: Callable[[str], str | None]
) -> Callable[[str], Found]:
    def find(text: str) -> Found:
        for match in pattern.finditer(text):
            value = normalise(match.group())
            if value is not None:
                yield match.start(), match.end(), value

    return find


def _norm_email(text: str) -> str | None:
    return text.lower()


def _norm_cn_id(text: str) -> str | None:
    return text.upper() if valid_cn_id(text) else None


def _norm_card(text: str) -> str | None:
    digits = _digits(text)
    return digits if plausible_card_number(digits) else None


def _norm_ip(text: str) -> str | None:
    try:
        return ipaddress.ip_address(text).compressed
    except ValueError:
        return None


def _norm_ipv6(text: str) -> str | None:
    return _norm_ip(text) if re.search(r"[0-9A-Fa-f]", text) else None


def _find_phones(text: str) -> Found:
    matcher = phonenumbers.PhoneNumberMatcher(text, _PHONE_REGION, leniency=_PHONE_LENIENCY)
    for match in matcher:
        e164 = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
        yield match.start, match.end, e164


_DETECTORS: tuple[tuple[str, Callable[[str], Found]], ...] = (
    ("EMAIL", _regex_finder(_EMAIL, _norm_email)),
    ("CN_ID", _regex_finder(_CN_ID, _norm_cn_id)),
    ("BANK_CARD", _regex_finder(_CARD, _norm_card)),
    ("IP", _regex_finder(_IPV6, _norm_ipv6)),
    ("IP", _regex_finder(_IPV4, _norm_ip)),
    ("PHONE", _find_phones),
)

# Claimed spans are overwritten with this before the next detector runs (same length, so
# offsets hold): not a digit, a letter or phone punctuation, so nothing matches across it.
_MASK = "\N{OBJECT REPLACEMENT CHARACTER}"
_PLACEHOLDER = re.compile(r"\[(?:EMAIL|PHONE|CN_ID|BANK_CARD|IP)_\d+\]")


class Anonymizer:
    """Anonymises several texts with shared placeholders: one value, one placeholder.

    The originals are kept in memory only, for ``restore``; ``repr`` shows counts only.
    """

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
        """Replace every detected value in ``text`` by its typed placeholder.

        Args:
            text: Any text, e.g. OCR output or a question.

        Returns:
            The text with placeholders such as ``[PHONE_1]`` and the kind and span (in
            ``text``) of each replacement, in text order.
        """
        found: list[tuple[int, int, str, str]] = []  # start, end, kind, normalised value
        masked = text
        for kind, find in _DETECTORS:
            spans = [(s, e, v) for s, e, v in find(masked) if _MASK not in masked[s:e]]
            for start, end, value in spans:
                found.append((start, end, kind, value))
                masked = masked[:start] + _MASK * (end - start) + masked[end:]
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
        """Anonymise the text of an OpenAI-style chat message.

        Args:
            message: A message whose ``content`` is a string or a list of parts.

        Returns:
            A copy with string content and ``{"type": "text"}`` parts anonymised; image
            parts and every other key are kept as they are.
        """
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
        """Put this anonymiser's placeholders in ``text`` back to the original values.

        For local use only (e.g. the spoken answer): what was sent stays anonymised.

        Args:
            text: Text that may hold placeholders this anonymiser made, e.g. the answer.

        Returns:
            The text with each known placeholder replaced by the first original it stood
            for; unknown placeholders are left as they are.
        """
        return _PLACEHOLDER.sub(lambda m: self._originals.get(m.group(), m.group()), text)

    @property
    def counts(self) -> dict[str, int]:
        """How many distinct values of each kind were replaced so far."""
        return dict(self._per_kind)


def anonymize(text: str) -> AnonymizedText:
    """Replace e-mails, resident IDs, card numbers, IPs and phone numbers in ``text``.

    Args:
        text: Any text.

    Returns:
        The anonymised text and its replacements (see ``Anonymizer.anonymize``).
    """
    return Anonymizer().anonymize(text)


def anonymize_messages(messages: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Anonymise OpenAI-style messages with placeholders shared across them.

    Args:
        messages: Chat messages; they are not modified.

    Returns:
        Copies in which string content and ``{"type": "text"}`` parts are rewritten; image
        parts and every other key are kept as they are.
    """
    anonymizer = Anonymizer()
    return [anonymizer.anonymize_message(m) for m in messages]
