"""Tasks: thin wrappers called with ``task.fn``; the retry policy and the content cache key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from prefect.logging import disable_run_logger

from adapters.errors import InputError, TransientError
from adapters.files import source_digest
from assets import SAMPLES_DIR
from narrate.config.settings import LLMSettings, OCRSettings, TTSSettings
from narrate.pipeline.steps import code_version
from tasks._policy import file_digest
from tasks.features import features_task
from tasks.llm import llm_task
from tasks.ocr import ocr_task
from tasks.tts import tts_task
from tests.support.wavcheck import wav_stats

RECEIPT = SAMPLES_DIR / "receipt_en.png"


def test_tasks_chain_with_fn_on_real_parts(tmp_path: Path) -> None:
    with disable_run_logger():
        ocr = ocr_task.fn(RECEIPT, "auto", OCRSettings())
        features = features_task.fn(RECEIPT, ocr.boxes)
        description = llm_task.fn(ocr, features, LLMSettings(backend="offline"))
        speech = tts_task.fn(
            description.text, tmp_path / "r.wav", description.language, TTSSettings()
        )
    assert "TOTAL" in ocr.text and "CAFE" in ocr.text
    assert ocr.language == "en"
    assert 0 < features.text_coverage < 1
    assert description.backend == "offline" and description.offline
    assert "7.20" in description.text or "CORNER" in description.text
    duration, rms = wav_stats(speech.path)
    assert duration > 1.0 and rms > 0.01


def test_bad_image_raises_input_error_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "notes.png"
    bad.write_text("this is not a picture")
    with disable_run_logger(), pytest.raises(InputError, match=r"notes\.png.*not an image"):
        ocr_task.fn(bad, "auto", OCRSettings())


def test_file_digest_follows_content_not_path(tmp_path: Path) -> None:
    copy = tmp_path / "renamed.png"
    shutil.copy(RECEIPT, copy)
    assert file_digest(copy) == file_digest(RECEIPT)
    copy.write_bytes(copy.read_bytes() + b"\0")
    assert file_digest(copy) != file_digest(RECEIPT)


def test_step_cache_keys_change_with_the_code(tmp_path: Path) -> None:
    tree = tmp_path / "adapters"
    (tree / "ocr").mkdir(parents=True)
    (tree / "ocr" / "tesseract.py").write_text("THRESHOLD = 0.5\n")
    (tree / "notes.txt").write_text("not code")
    before = source_digest(tree)
    (tree / "notes.txt").write_text("changed, still not code")
    assert source_digest(tree) == before
    (tree / "ocr" / "tesseract.py").write_text("THRESHOLD = 0.6\n")  # an OCR fix
    assert source_digest(tree) != before
    (tree / "ocr" / "tesseract.py").write_text("THRESHOLD = 0.5\n")
    assert source_digest(tree) == before
    (tree / "ocr" / "tesseract.py").rename(tree / "ocr" / "rapidocr.py")  # names count too
    assert source_digest(tree) != before

    import adapters

    assert code_version() == source_digest(Path(adapters.__file__).parent)


def test_retry_policy_retries_transient_only(prefect_harness: None) -> None:
    from prefect import flow, task

    from tasks._policy import retry_on_transient

    calls = {"transient": 0, "input": 0}

    @task(retries=3, retry_delay_seconds=0, retry_condition_fn=retry_on_transient)
    def flaky() -> str:
        calls["transient"] += 1
        if calls["transient"] < 3:
            raise TransientError("try again")
        return "done"

    @task(retries=3, retry_delay_seconds=0, retry_condition_fn=retry_on_transient)
    def bad_input() -> str:
        calls["input"] += 1
        raise InputError("x.png", "file is empty (0 bytes)")

    @flow
    def run() -> tuple[str, bool]:
        state = bad_input(return_state=True)
        return flaky(), state.is_failed()

    assert run() == ("done", True)
    assert calls == {"transient": 3, "input": 1}


def test_ocr_task_is_cached_by_content(
    prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect import flow

    copy = tmp_path / "same-bytes-other-name.png"
    shutil.copy(RECEIPT, copy)

    @flow
    def twice() -> tuple[str, str, str]:
        first = ocr_task(RECEIPT, "en", OCRSettings(), return_state=True)
        second = ocr_task(copy, "en", OCRSettings(), return_state=True)
        third = ocr_task(copy, "zh", OCRSettings(), return_state=True)
        return first.name, second.name, third.name

    first, second, third = twice()
    assert second == "Cached"  # same bytes under another path: no tesseract call
    assert third != "Cached"  # another language is another result
    assert first in ("Completed", "Cached")

    code_version.cache_clear()  # as after an upgrade: the OCR code changed
    monkeypatch.setattr("narrate.pipeline.steps.source_digest", lambda root: "other-code")
    try:

        @flow
        def after_upgrade() -> str:
            return ocr_task(copy, "en", OCRSettings(), return_state=True).name

        assert after_upgrade() != "Cached"  # read again, not served from the old code's cache
    finally:
        code_version.cache_clear()
