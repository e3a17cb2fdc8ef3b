"""narrate/config/settings.py: one tree from the environment, bad values named."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from adapters.errors import ConfigError
from narrate.config.secrets import REDACTED, redact
from narrate.config.settings import (
    CacheSettings,
    LLMSettings,
    OCRSettings,
    Settings,
    load_settings,
)


def _variables(section: type[BaseSettings]) -> list[str]:
    """Every environment variable ``section`` and the sections inside it read."""
    names = []
    for name, field in section.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names += [str(choice) for choice in alias.choices]
        else:
            names.append(f"{section.model_config.get('env_prefix', '')}{name}".upper())
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseSettings):
            names += _variables(field.annotation)
    return names


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
    assert settings.tts.rate_wpm == 150


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


def test_the_llm_wire_settings_become_one_policy(clean_env: pytest.MonkeyPatch) -> None:
    for name, value in {
        "NARRATE_LLM_TIMEOUT": "7", "NARRATE_LLM_DEADLINE": "30", "NARRATE_LLM_MAX_RETRIES": "2",
        "NARRATE_LLM_RETRY_BASE": "0.1", "NARRATE_LLM_RETRY_CAP": "1", "NARRATE_LLM_QPS": "6",
        "NARRATE_LLM_BURST": "3", "NARRATE_LLM_BREAKER_THRESHOLD": "4",
        "NARRATE_LLM_BREAKER_COOLDOWN": "9", "NARRATE_LLM_MAX_CONTINUATIONS": "1",
        "NARRATE_LLM_CONTINUATION": "portable", "NARRATE_LLM_TLS_MIN_VERSION": "1.3",
        "NARRATE_LLM_VISION": "off", "NARRATE_LLM_ENABLE_THINKING": "false",
    }.items():  # fmt: skip
        clean_env.setenv(name, value)
    llm = load_settings().llm
    policy = llm.resilience_policy()

    assert (policy.timeout_s, policy.deadline_s, policy.max_retries) == (7, 30, 2)
    assert (policy.retry_base_s, policy.retry_cap_s, policy.qps, policy.burst) == (0.1, 1, 6, 3)
    assert (policy.breaker_threshold, policy.breaker_cooldown_s) == (4, 9)
    assert (policy.max_continuations, policy.continuation) == (1, "portable")
    assert (llm.tls_min_version, llm.vision, llm.enable_thinking, llm.http2) == (
        "1.3",
        "off",
        False,
        True,
    )


def test_a_bad_tls_version_names_the_variable(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("NARRATE_LLM_TLS_MIN_VERSION", "1.1")
    with pytest.raises(ConfigError, match=r"NARRATE_LLM_TLS_MIN_VERSION: .*'1\.1'"):
        load_settings()


def test_file_mode_setting_reads_octal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NARRATE_OUTPUT_FILE_MODE", "640")
    assert load_settings().output.file_mode == 0o640
    monkeypatch.setenv("NARRATE_OUTPUT_FILE_MODE", "rw-r-----")
    with pytest.raises(ConfigError, match="NARRATE_OUTPUT_FILE_MODE"):
        load_settings()


# Fields renamed to carry their unit (issue 10): the environment keeps its names.
OLD_ENV = {
    "NARRATE_CACHE_TTL": ("llm.cache.ttl_s", "42", 42.0),
    "NARRATE_LLM_TIMEOUT": ("llm.timeout_s", "7", 7.0),
    "NARRATE_LLM_DEADLINE": ("llm.deadline_s", "30", 30.0),
    "NARRATE_LLM_RETRY_BASE": ("llm.retry_base_s", "0.1", 0.1),
    "NARRATE_LLM_RETRY_CAP": ("llm.retry_cap_s", "1.5", 1.5),
    "NARRATE_LLM_BREAKER_COOLDOWN": ("llm.breaker_cooldown_s", "9", 9.0),
    "NARRATE_OCR_TIMEOUT": ("ocr.timeout_s", "12", 12.0),
    "NARRATE_TTS_RATE": ("tts.rate_wpm", "150", 150),
}


def _field(settings: Settings, dotted: str) -> object:
    value: object = settings
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


@pytest.mark.parametrize("variable", sorted(OLD_ENV))
def test_the_old_environment_variable_sets_the_renamed_field(
    clean_env: pytest.MonkeyPatch, variable: str
) -> None:
    field, text, expected = OLD_ENV[variable]
    default = _field(load_settings(), field)
    clean_env.setenv(variable, text)
    assert default != expected and _field(load_settings(), field) == expected


@pytest.mark.parametrize("variable", sorted(OLD_ENV))
def test_the_unit_named_variable_works_too_and_the_old_one_wins(
    clean_env: pytest.MonkeyPatch, variable: str
) -> None:
    field, text, expected = OLD_ENV[variable]
    new = variable + ("_WPM" if field.endswith("_wpm") else "_S")
    clean_env.setenv(new, text)
    assert _field(load_settings(), field) == expected
    clean_env.setenv(variable, "120")
    assert _field(load_settings(), field) == 120


def test_a_bad_value_names_the_variable_that_was_set(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("NARRATE_LLM_TIMEOUT", "soon")
    with pytest.raises(ConfigError, match=r"^invalid setting: NARRATE_LLM_TIMEOUT: .*'soon'"):
        load_settings()
    clean_env.delenv("NARRATE_LLM_TIMEOUT")
    clean_env.setenv("NARRATE_LLM_TIMEOUT_S", "-1")
    with pytest.raises(ConfigError, match=r"^invalid setting: NARRATE_LLM_TIMEOUT_S: .*-1"):
        load_settings()


def test_a_bad_value_says_what_is_allowed(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("NARRATE_TTS_RATE", "abc")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).endswith(
        "(got 'abc'); allowed: a whole number >= 60 and <= 400 (speaking rate, words per minute)"
    )
    clean_env.delenv("NARRATE_TTS_RATE")
    clean_env.setenv("NARRATE_LLM_TOKEN_BUDGET", "0")
    with pytest.raises(ConfigError, match=r"allowed: a whole number >= 1, or unset \(LLM tokens"):
        load_settings()


def test_an_empty_variable_means_the_default_for_every_setting(
    clean_env: pytest.MonkeyPatch,
) -> None:
    variables = _variables(Settings)
    assert {"NARRATE_TTS_RATE", "NARRATE_LLM_TIMEOUT_S", "DASHSCOPE_API_KEY"} <= set(variables)
    assert "NARRATE_API_JWT_SECRET" in variables and "NARRATE_CACHE_REDIS_URL" in variables
    defaults = load_settings().model_dump()
    for variable in variables:
        clean_env.setenv(variable, "")
    assert load_settings().model_dump() == defaults


def test_the_new_field_names_are_keywords(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("NARRATE_LLM_TIMEOUT", "7")
    assert LLMSettings(timeout_s=3, retry_cap_s=2).timeout_s == 3  # the keyword beats the env
    assert Settings(tts={"rate_wpm": 120}).tts.rate_wpm == 120  # type: ignore[arg-type]
    assert (OCRSettings(timeout_s=5).timeout_s, CacheSettings(ttl_s=9).ttl_s) == (5, 9)


@pytest.mark.parametrize(
    ("make", "old", "new"),
    [
        (lambda: LLMSettings(timeout=5), "timeout", "timeout_s"),
        (lambda: LLMSettings(breaker_cooldown=1), "breaker_cooldown", "breaker_cooldown_s"),
        (lambda: Settings(tts={"rate": 120}), "rate", "rate_wpm"),
        (lambda: CacheSettings(ttl=1), "ttl", "ttl_s"),
        (lambda: OCRSettings(timeout=1), "timeout", "timeout_s"),
    ],
)
def test_an_old_keyword_is_refused_not_silently_dropped(
    make: Callable[[], object], old: str, new: str
) -> None:
    # extra="ignore" would drop it and keep the default: say the new name instead
    with pytest.raises(TypeError, match=rf"\b{old} -> {new}\b"):
        make()
