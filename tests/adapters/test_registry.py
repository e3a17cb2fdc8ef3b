"""adapters/registry.py: names to implementations, imported on first use, clear refusals."""

from __future__ import annotations

import pytest

from adapters import registry
from adapters.errors import ConfigError


def test_every_registered_implementation_imports() -> None:
    for capability, choices in registry.KNOWN_IMPLEMENTATIONS.items():
        for name in choices:
            assert isinstance(registry.get_class(capability, name), type), (capability, name)


def test_unknown_names_list_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown capability 'vision'; known: .*asr.*ocr"):
        registry.get_class("vision", "x")
    with pytest.raises(ConfigError, match=r"unknown ocr implementation 'abbyy'.*tesseract"):
        registry.get_class("ocr", "abbyy")


def test_a_missing_library_names_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        registry.KNOWN_IMPLEMENTATIONS["ocr"],
        "ghost",
        registry.Implementation("adapters.ocr.no_such_module:Ghost", "pip install ghost-ocr"),
    )
    with pytest.raises(ConfigError, match=r"'ghost' is unavailable.*pip install ghost-ocr"):
        registry.get_class("ocr", "ghost")
