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


def test_every_registered_class_is_in_the_mypy_conformance_table() -> None:
    """The table only exists for mypy: a registration it lacks would go unchecked."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(registry))
    checked = {
        node.id
        for assign in ast.walk(tree)
        if isinstance(assign, ast.AnnAssign)
        and isinstance(assign.target, ast.Name)
        and assign.target.id == "_CONFORMANCE"
        and assign.value is not None
        for node in ast.walk(assign.value)
        if isinstance(node, ast.Name)
    }
    registered = {
        impl.target.partition(":")[2]
        for choices in registry.KNOWN_IMPLEMENTATIONS.values()
        for impl in choices.values()
    }
    assert registered <= checked, f"add to _CONFORMANCE: {sorted(registered - checked)}"
