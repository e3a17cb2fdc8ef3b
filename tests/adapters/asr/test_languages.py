"""The language asked for, as each whisper engine names it (adapters/asr/languages.py)."""

from __future__ import annotations

import pytest

from adapters.asr.languages import language_code
from adapters.errors import ConfigError

CODES = ("en", "zh", "de", "pt")
NAMES = {"english": "en", "chinese": "zh", "mandarin": "zh"}


@pytest.mark.parametrize(
    ("language", "code"),
    [
        (None, None),
        ("", None),
        ("auto", None),
        ("en", "en"),
        ("EN", "en"),
        (" zh-CN ", "zh"),
        ("pt_BR", "pt"),
        ("Chinese", "zh"),
        ("mandarin", "zh"),
    ],
)
def test_codes_regions_and_names_give_the_engines_code(language: str | None, code: str) -> None:
    assert language_code(language, CODES, NAMES) == code


def test_an_unknown_language_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="unknown language 'klingon'"):
        language_code("klingon", CODES, NAMES)


def test_faster_whisper_knows_the_names_it_is_given() -> None:
    pytest.importorskip("faster_whisper")
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    from adapters.asr.faster_whisper_engine import _NAMES

    assert language_code("german", _LANGUAGE_CODES, _NAMES) == "de"
    assert language_code("zh-TW", _LANGUAGE_CODES, _NAMES) == "zh"


def test_whisper_knows_every_name_it_lists() -> None:
    pytest.importorskip("whisper")
    from whisper.tokenizer import LANGUAGES, TO_LANGUAGE_CODE

    assert language_code("chinese", LANGUAGES, TO_LANGUAGE_CODE) == "zh"
    assert language_code("yue", LANGUAGES, TO_LANGUAGE_CODE) == "yue"
