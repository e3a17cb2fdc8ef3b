"""Keep secrets out of logs and audit files.

A process-wide registry holds the secret values narrate knows about (API keys, passwords in
URLs). ``redact`` replaces every registered value, and anything that looks like a bearer
token or an ``sk-...`` key, with ``[REDACTED]``. ``install_redaction`` puts a
``RedactingFilter`` on the handlers of the root, ``prefect``, ``httpx``, ``httpcore`` and
``narrate`` loggers (and their configured descendants), so Prefect's console and API log
handlers only ever see redacted records::

    register_secret(settings.llm.api_key)   # str or SecretStr
    install_redaction()                     # after Prefect has configured logging
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import SecretStr

REDACTED = "[REDACTED]"
MIN_SECRET_LENGTH = 8  # shorter values would redact ordinary words; they are ignored

DEFAULT_LOGGERS: tuple[str | None, ...] = (None, "prefect", "httpx", "httpcore", "narrate")

# Things that look like credentials even when nobody registered them.
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9\-._~+/]{16,}=*"), r"\1 " + REDACTED),
    (
        re.compile(
            r"(?i)\b(authorization|x-api-key|api[_-]?key)([\"']?\s*[:=]\s*[\"']?)(bearer\s+)?+"
            r"(?!\[REDACTED\])[^\s\"',;}\]]+"  # ?+ : possessive, no backtracking into Bearer
        ),
        r"\1\2\3" + REDACTED,
    ),
    (re.compile(r"(?<![A-Za-z0-9])sk-(?:[A-Za-z0-9]{1,12}-)*[A-Za-z0-9]{16,}"), REDACTED),
)

_lock = threading.Lock()
_secrets: set[str] = set()
_secrets_re: re.Pattern[str] | None = None


def _reveal(value: str | SecretStr | None) -> str:
    # pydantic is imported here, not at the top: ``install_redaction`` runs at every CLI start,
    # before ``narrate describe`` starts tesseract beside the imports (adapters.ocr.ahead).
    from pydantic import SecretStr

    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return value or ""


def _rebuild() -> None:
    global _secrets_re
    ordered = sorted(_secrets, key=len, reverse=True)  # longest first: no partial leftovers
    _secrets_re = re.compile("|".join(map(re.escape, ordered))) if ordered else None


def register_secret(value: str | SecretStr | None) -> bool:
    """Remember ``value`` as a secret; False (and nothing stored) when it is empty or short."""
    raw = _reveal(value).strip()
    if len(raw) < MIN_SECRET_LENGTH:
        return False
    with _lock:
        if raw not in _secrets:
            _secrets.add(raw)
            _rebuild()
    return True


def forget_secret(value: str | SecretStr | None) -> None:
    """Drop ``value`` from the registry (tests, key rotation)."""
    raw = _reveal(value).strip()
    with _lock:
        if raw in _secrets:
            _secrets.discard(raw)
            _rebuild()


def clear_secrets() -> None:
    """Forget every registered secret."""
    with _lock:
        _secrets.clear()
        _rebuild()


def redact(text: str) -> str:
    """``text`` with every registered secret and every key-like token replaced by [REDACTED].

    Idempotent: redacting redacted text changes nothing.
    """
    if not text:
        return text
    pattern = _secrets_re
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    for token_re, replacement in _PATTERNS:
        text = token_re.sub(replacement, text)
    return text


def contains_secret(text: str) -> bool:
    """True when ``redact`` would change ``text``."""
    return redact(text) != text


def redact_data(value: Any) -> Any:
    """A copy of a JSON-like value (dicts, lists, strings) with every string redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {
            redact_data(k) if isinstance(k, str) else k: redact_data(v) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_data(item) for item in value]
    return value


class RedactingFilter(logging.Filter):
    """Rewrite log records so that no handler sees a secret; never drops a record.

    The message is formatted with its arguments and redacted (the arguments are then
    cleared). An exception is rendered into ``exc_text`` and redacted; when the traceback
    held a secret, ``exc_info`` is dropped too, so formatters that render it themselves
    (Prefect's JSON formatter) cannot leak it.
    """

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact ``record`` in place; always returns True."""
        try:
            message = record.getMessage()
        except Exception:  # a broken %-format: redact the parts separately
            record.msg = redact(str(record.msg))
            if isinstance(record.args, tuple):
                record.args = tuple(redact(str(a)) for a in record.args)
        else:
            clean = redact(message)
            if clean != message or record.args:
                record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            clean = redact(record.exc_text)
            if clean != record.exc_text:
                record.exc_text, record.exc_info = clean, None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FILTER = RedactingFilter()


def _loggers(names: Iterable[str | None]) -> list[logging.Logger]:
    """The named loggers plus every already-created logger below them."""
    wanted = list(names)
    found: dict[str, logging.Logger] = {}
    for name in wanted:
        logger = logging.getLogger(name)
        found[logger.name] = logger
    prefixes = tuple(f"{n}." for n in wanted if n)
    # Copied under logging's own lock: a thread creating a logger while this iterated made
    # "dictionary changed size during iteration" (seen once at a flow's start in the tests).
    with getattr(logging, "_lock", None) or contextlib.nullcontext():
        registry = dict(logging.Logger.manager.loggerDict)
    for name, known in registry.items():
        if isinstance(known, logging.Logger) and name.startswith(prefixes):
            found[name] = known
    return list(found.values())


def install_redaction(logger_names: Iterable[str | None] = DEFAULT_LOGGERS) -> int:
    """Add the redacting filter to those loggers and all their handlers, once each.

    Call it after logging is configured (Prefect's ``setup_logging`` replaces handlers);
    calling again is harmless and covers handlers added since. Returns how many filters
    were added.
    """
    added = 0
    for logger in _loggers(logger_names):
        for target in (logger, *logger.handlers):
            if not any(isinstance(f, RedactingFilter) for f in target.filters):
                target.addFilter(_FILTER)
                added += 1
    return added
