"""The OCR engines under test, shared by the contract and real-world modules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapters import registry
from adapters.ocr.base import OcrEngine

ENGINES = ("tesseract", "rapidocr", "auto")


@pytest.fixture(scope="module", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Iterator[OcrEngine]:
    """Each engine once per module (RapidOCR loads its models once)."""
    built = registry.load("ocr", request.param)
    if hasattr(built, "warm_up"):
        built.warm_up()
    yield built
