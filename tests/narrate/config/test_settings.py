"""narrate/config/settings.py: one tree from the environment, bad values named."""

from __future__ import annotations

import pytest

from adapters.errors import ConfigError
from narrate.config.secrets import REDACTED, redact
from narrate.config.settings import CacheSettings, load_settings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    import os

    for name in list(os.environ):
        if name.startswith("NARRATE_") or name in {"DASHSCOPE_API_KEY", "REDIS_URL"}:
            monkeypatch.delenv(name)
    return monkeypatch


def test_sections_read_their_own_prefix(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("NARRATE_LLM_MODEL", "qwen-plus")
    clean_env.setenv("NARRATE_OCR_LANG", "zh")
    clean_env.setenv("NARRATE_TTS_RATE", "150")
    settings = load_settings()
    assert settings.llm.model == "qwen-plus"
    assert settings.ocr.lang == "zh"
    assert settings.tts.rate == 150


def test_a_bad_value_is_one_line_naming_the_variable(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("NARRATE_TTS_RATE", "fast")
    with pytest.raises(ConfigError, match=r"NARRATE_TTS_RATE: .*'fast'"):
        load_settings()


def test_the_key_is_secret_and_registered_for_redaction(clean_env: pytest.MonkeyPatch) -> None:
    key = "sk-settings-canary-0123456789abcdef"
    clean_env.setenv("DASHSCOPE_API_KEY", key)
    settings = load_settings()
    assert key not in repr(settings) and key not in str(settings.llm)
    assert redact(f"Authorization: Bearer {key}") == f"Authorization: Bearer {REDACTED}"


def test_cache_backend_auto_follows_redis_url(clean_env: pytest.MonkeyPatch) -> None:
    assert CacheSettings().resolved_backend == "sqlite"
    clean_env.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    assert CacheSettings().resolved_backend == "redis"


def test_redaction_is_idempotent() -> None:
    line = "Authorization: Bearer abcdefghijklmnop0123456789 api_key=sk-abcdefghijklmnop0123"
    once = redact(line)
    assert "abcdefghijklmnop" not in once and redact(once) == once
