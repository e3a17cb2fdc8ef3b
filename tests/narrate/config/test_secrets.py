"""Tests for narrate.config.secrets: registered keys and key-like tokens never reach log output."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from narrate.config.secrets import (
    REDACTED,
    RedactingFilter,
    clear_secrets,
    contains_secret,
    install_redaction,
    redact,
    redact_data,
    register_secret,
)

CANARY = "canary-Zq8xW6v5U4tT3s"  # matches no built-in pattern: only the registry catches it


@pytest.fixture(autouse=True)
def _fresh_registry() -> Iterator[None]:
    clear_secrets()
    yield
    clear_secrets()


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A private logger tree whose parent has a StreamHandler writing to a buffer."""
    parent = logging.getLogger("narrate_secrets_test")
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    parent.addHandler(handler)
    parent.setLevel(logging.DEBUG)
    parent.propagate = False
    yield logging.getLogger("narrate_secrets_test.child"), buffer
    parent.removeHandler(handler)
    parent.filters.clear()
    logging.getLogger("narrate_secrets_test.child").filters.clear()


def test_redact_registered_values_and_key_patterns() -> None:
    assert register_secret(SecretStr(CANARY))
    assert not register_secret("short")  # too short to register safely
    assert not register_secret(None)
    text = f"key={CANARY}; Authorization: Bearer abc.DEF-123_x; other sk-0123456789abcdefXYZ"
    clean = redact(text)
    assert CANARY not in clean and "abc.DEF-123_x" not in clean
    assert "sk-0123456789abcdefXYZ" not in clean
    assert clean == f"key={REDACTED}; Authorization: Bearer {REDACTED}; other {REDACTED}"
    assert redact("x-api-key: abc123; {'api_key': 'k1'}") == (
        f"x-api-key: {REDACTED}; {{'api_key': '{REDACTED}'}}"
    )
    prose = "the bearer of this card; task-1, short sk-abc and scikit sk-learn stay"
    assert redact(prose) == prose
    assert contains_secret(CANARY) and not contains_secret("nothing here")
    assert redact_data({"a": [CANARY, 1], "b": {"c": f"x{CANARY}"}}) == {
        "a": [REDACTED, 1],
        "b": {"c": f"x{REDACTED}"},
    }


def test_canary_is_redacted_in_fstring_percent_args_and_traceback(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, buffer = captured
    register_secret(CANARY)
    assert install_redaction(["narrate_secrets_test"]) >= 2  # the loggers and the handler

    logger.info(f"calling with key {CANARY}")
    logger.warning("retrying with key %s after %d s", CANARY, 2)
    logger.info("headers: %(auth)s", {"auth": f"Bearer {CANARY}"})
    try:
        raise RuntimeError(f"401 Unauthorized for key {CANARY}")
    except RuntimeError:
        logger.exception("call failed")

    out = buffer.getvalue()
    assert CANARY not in out
    assert f"INFO calling with key {REDACTED}" in out
    assert f"WARNING retrying with key {REDACTED} after 2 s" in out
    assert f"headers: Bearer {REDACTED}" in out
    assert "ERROR call failed" in out
    assert "Traceback (most recent call last)" in out
    assert f"RuntimeError: 401 Unauthorized for key {REDACTED}" in out


def test_records_without_secrets_are_left_alone(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, buffer = captured
    install_redaction(["narrate_secrets_test"])
    try:
        raise ValueError("plain failure")
    except ValueError:
        logger.exception("%d%% done", 50)
    assert "ERROR 50% done" in buffer.getvalue()
    assert "ValueError: plain failure" in buffer.getvalue()


def test_install_is_idempotent(captured: tuple[logging.Logger, io.StringIO]) -> None:
    parent = logging.getLogger("narrate_secrets_test")
    assert install_redaction(["narrate_secrets_test"]) >= 2
    assert install_redaction(["narrate_secrets_test"]) == 0
    for target in (parent, *parent.handlers):
        assert sum(isinstance(f, RedactingFilter) for f in target.filters) == 1
    # A handler added later is covered by the next call, and only it.
    late = logging.StreamHandler(io.StringIO())
    parent.addHandler(late)
    try:
        assert install_redaction(["narrate_secrets_test"]) == 1
    finally:
        parent.removeHandler(late)


@pytest.mark.slow  # imports prefect, which configures logging (~3 s on its own)
def test_prefect_handlers_get_the_filter() -> None:
    """Prefect's console handler (root) and API log handler (flow/task run loggers)."""
    from prefect.logging.configuration import ensure_logging_setup

    ensure_logging_setup()  # what `from prefect import flow` does; a no-op if done already

    install_redaction()
    register_secret(CANARY)
    api_handlers = [
        h
        for name in ("prefect.flow_runs", "prefect.task_runs")
        for h in logging.getLogger(name).handlers
        if type(h).__name__ == "APILogHandler"
    ]
    console = [
        h for h in logging.getLogger().handlers if type(h).__name__ == "PrefectConsoleHandler"
    ]
    assert api_handlers and console
    for handler in api_handlers + console:
        assert any(isinstance(f, RedactingFilter) for f in handler.filters)
        record = logging.LogRecord(
            "prefect.narrate_test", logging.INFO, __file__, 1, "key=%s", (CANARY,), None
        )
        assert handler.filter(record)
        formatted = handler.format(record)
        assert CANARY not in formatted and f"key={REDACTED}" in formatted
