"""The direct engine caches OCR and features by the image's bytes, as the Prefect tasks do."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytesseract
import pytest

from adapters.errors import ConfigError
from assets import SAMPLES_DIR
from narrate.config.settings import CacheSettings, OCRSettings
from narrate.pipeline.sequence import plain_steps

RECEIPT = SAMPLES_DIR / "receipt_en.png"


def test_a_renamed_copy_costs_no_tesseract_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = plain_steps(CacheSettings(backend="sqlite", path=tmp_path / "cache.sqlite3"))
    first = steps.ocr(RECEIPT, "auto", OCRSettings())
    features = steps.features(RECEIPT, first.boxes)
    copy = tmp_path / "same-bytes.png"
    shutil.copy(RECEIPT, copy)

    # From here on tesseract cannot run at all: only a cache hit can answer.
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", str(tmp_path / "missing"))
    again = steps.ocr(copy, "auto", OCRSettings())
    assert again == first
    assert "TOTAL 7.20" in again.text
    assert steps.features(copy, again.boxes) == features

    with pytest.raises(ConfigError, match="tesseract"):  # another language is another key
        steps.ocr(copy, "zh", OCRSettings())
    copy.write_bytes(copy.read_bytes() + b"\0")  # other bytes, another key
    with pytest.raises(ConfigError, match="tesseract"):
        steps.ocr(copy, "auto", OCRSettings())


def test_off_means_every_call_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    steps = plain_steps(CacheSettings(backend="off", path=tmp_path / "cache.sqlite3"))
    steps.ocr(RECEIPT, "en", OCRSettings())
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="tesseract"):
        steps.ocr(RECEIPT, "en", OCRSettings())
    assert not (tmp_path / "cache.sqlite3").exists()


def test_an_adapter_asked_for_by_many_threads_at_once_is_built_once() -> None:
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from narrate.pipeline.steps import _built_once

    built: list[int] = []
    gate = threading.Barrier(4)

    @_built_once
    def build(size: int) -> object:
        built.append(size)
        time.sleep(0.05)  # a model load: long enough for the other threads to ask too
        return object()

    def ask(size: int) -> object:
        gate.wait()
        return build(size)

    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(ask, [1, 1, 1, 1]))
    assert built == [1] and all(g is got[0] for g in got)
    assert build(2) is not got[0] and built == [1, 2]


def test_the_step_cache_follows_content_and_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A renamed copy is a hit; the same bytes after a code change are read again."""
    from dataclasses import dataclass

    from narrate.config.settings import CacheSettings
    from narrate.pipeline import steps

    @dataclass
    class Read:
        text: str

    reads: list[Path] = []

    def read(path: Path) -> Read:
        reads.append(path)
        return Read(path.read_text())

    cache = CacheSettings(backend="sqlite", path=tmp_path / "steps.sqlite3")
    cached = steps.content_cached("test-read", read, lambda d: Read(**d), cache)
    first, copy = tmp_path / "a.txt", tmp_path / "copy of a.txt"
    first.write_text("TOTAL 7.20")
    copy.write_text("TOTAL 7.20")
    assert cached(first).text == cached(copy).text == "TOTAL 7.20"
    assert reads == [first]  # the copy was a hit
    steps.code_version.cache_clear()  # as after an upgrade of the OCR code
    monkeypatch.setattr(steps, "source_digest", lambda root: "other-code")
    try:
        assert cached(copy).text == "TOTAL 7.20"
        assert reads == [first, copy]  # not served from the old code's entry
    finally:
        steps.code_version.cache_clear()
