"""narrate/pipeline/sequence.py: the step order, the data handed on, the outputs written.

The steps are real (tesseract, the offline describer, espeak-ng) except where a test swaps
one to watch what the sequence hands it.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from adapters.errors import InputError
from assets import SAMPLES_DIR
from narrate.config.settings import LLMSettings, Settings
from narrate.pipeline.sequence import answer_one, describe_one, output_paths, plain_steps
from tests.support.fake_llm import FakeLLMServer
from tests.support.word_images import use_fake_llm

RECEIPT = SAMPLES_DIR / "receipt_en.png"


@pytest.fixture
def settings() -> Settings:
    return Settings(llm=LLMSettings(backend="offline"))


def test_describe_one_runs_the_steps_in_order_and_writes_json(
    settings: Settings, tmp_path: Path
) -> None:
    calls: list[str] = []
    steps = plain_steps()

    def spy(name: str, step: Any) -> Any:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return step(*args, **kwargs)

        return wrapped

    watched = dataclasses.replace(
        steps,
        ocr=spy("ocr", steps.ocr),
        features=spy("features", steps.features),
        llm=spy("llm", steps.llm),
        tts=spy("tts", steps.tts),
    )
    result = describe_one(RECEIPT, out_dir=tmp_path, lang="auto", settings=settings, steps=watched)
    assert calls == ["ocr", "features", "llm", "tts"]
    assert "TOTAL" in result.ocr_text and result.audio_path == tmp_path / "receipt_en.wav"
    saved = json.loads((tmp_path / "receipt_en.json").read_text())
    assert saved["description"] == result.description
    assert set(saved["timings"]) == {"ocr_s", "features_s", "llm_s", "tts_s"}


def test_warm_up_runs_beside_ocr_and_changes_nothing_in_the_result(
    settings: Settings, tmp_path: Path
) -> None:
    warmed: list[Path] = []
    steps = plain_steps()
    warm = plain_steps(warm_up=True)
    assert steps.warm_up is None and warm.warm_up is not None
    inner = warm.warm_up

    def watched_warm_up(image_path: Path, *args: Any, **kwargs: Any) -> Any:
        warmed.append(image_path)
        return inner(image_path, *args, **kwargs)

    warm = dataclasses.replace(warm, warm_up=watched_warm_up)
    plain = describe_one(
        RECEIPT, out_dir=tmp_path / "a", lang="auto", settings=settings, steps=steps
    )
    fast = describe_one(RECEIPT, out_dir=tmp_path / "b", lang="auto", settings=settings, steps=warm)
    assert warmed == [RECEIPT]
    assert set(fast.timings) == {"warm_up_s", "ocr_s", "features_s", "llm_s", "tts_s"}
    assert fast.ocr_text == plain.ocr_text and "TOTAL" in fast.ocr_text
    assert fast.features == plain.features
    assert fast.description == plain.description


def test_ocr_reads_on_a_worker_thread_while_the_warm_up_imports_on_the_callers(
    settings: Settings, tmp_path: Path
) -> None:
    threads: dict[str, str] = {}
    warm = plain_steps(warm_up=True)

    def watch(name: str, step: Any) -> Any:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            threads[name] = threading.current_thread().name
            return step(*args, **kwargs)

        return wrapped

    watched = dataclasses.replace(
        warm, ocr=watch("ocr", warm.ocr), warm_up=watch("warm_up", warm.warm_up)
    )
    result = describe_one(RECEIPT, out_dir=tmp_path, lang="auto", settings=settings, steps=watched)
    assert "TOTAL" in result.ocr_text
    assert threads["warm_up"] == threading.current_thread().name != threads["ocr"]


def test_a_failing_warm_up_leaves_the_error_to_the_step(settings: Settings, tmp_path: Path) -> None:
    missing = tmp_path / "missing.png"
    with pytest.raises(InputError, match=r"missing\.png"):
        describe_one(
            missing, out_dir=tmp_path, lang="auto", settings=settings,
            steps=plain_steps(warm_up=True),
        )  # fmt: skip


def test_answer_one_needs_exactly_one_question(settings: Settings, tmp_path: Path) -> None:
    kwargs: dict[str, Any] = {"out_dir": tmp_path, "lang": "auto", "settings": settings}
    with pytest.raises(InputError, match="exactly one question"):
        answer_one(RECEIPT, steps=plain_steps(), **kwargs)
    with pytest.raises(InputError, match="the question is empty"):
        answer_one(RECEIPT, question_text="  ", steps=plain_steps(), **kwargs)


def test_answer_one_with_a_typed_question(settings: Settings, tmp_path: Path) -> None:
    result = answer_one(
        RECEIPT,
        question_text="What is the total?",
        out_dir=tmp_path,
        lang="auto",
        settings=settings,
        steps=plain_steps(),
    )
    assert result.question == "What is the total?" and result.answer == result.description
    assert "7.20" in result.answer
    assert (tmp_path / "receipt_en.answer.json").exists()
    assert result.audio_path == tmp_path / "receipt_en.answer.wav"


def test_output_paths_use_the_stem_or_the_given_one(tmp_path: Path) -> None:
    assert output_paths(Path("a/x.png"), tmp_path) == (tmp_path / "x.wav", tmp_path / "x.json")
    assert output_paths(Path("a/x.png"), tmp_path, "x-2")[1] == tmp_path / "x-2.json"


def test_waiting_for_a_cpu_slot_is_not_counted_as_ocr_time(
    settings: Settings, tmp_path: Path
) -> None:
    """Under load an image waits for a core; ``ocr_s`` still says how long OCR took."""
    slot = threading.BoundedSemaphore(1)
    slot.acquire()  # another image holds the only core
    threading.Timer(1.0, slot.release).start()
    steps = dataclasses.replace(plain_steps(), cpu_slot=slot)

    result = describe_one(RECEIPT, out_dir=tmp_path, lang="auto", settings=settings, steps=steps)
    assert "TOTAL" in result.ocr_text
    # the second it waited for the core is counted apart, not in OCR's time
    assert result.timings["cpu_wait_s"] >= 0.9
    assert result.timings["ocr_s"] > 0 and result.timings["features_s"] > 0
    assert slot.acquire(blocking=False)  # both steps gave the slot back


def test_max_file_bytes_refuses_a_bigger_image_naming_it(tmp_path: Path) -> None:
    small = Settings(llm=LLMSettings(backend="offline"), max_file_bytes=1000)
    size_kib = f"{RECEIPT.stat().st_size / 1024:.0f}"
    with pytest.raises(
        InputError, match=rf"receipt_en\.png: file is {size_kib} KiB, over the 1000 bytes limit"
    ):
        describe_one(RECEIPT, out_dir=tmp_path, lang="auto", settings=small, steps=plain_steps())
    with pytest.raises(InputError, match="over the 1000 bytes limit"):
        answer_one(RECEIPT, question_text="What is the total?", out_dir=tmp_path, lang="auto",
                   settings=small, steps=plain_steps())  # fmt: skip
    assert not list(tmp_path.iterdir())  # nothing written


MARKED_UP = "**TOTAL** is $7.20 🧾. Paid by card at 14:05."


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "sentence-by-sentence"])
def test_the_json_says_what_the_wav_says(
    fake_llm: FakeLLMServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, stream: bool
) -> None:
    """``spoken_text`` is the text espeak-ng was given (cleaned, prices and times in words),
    for describe and ask, also when a streamed answer is spoken sentence by sentence."""
    from narrate.config.settings import load_settings
    from narrate.ops.llm import forget_describers

    fake_llm.reply = MARKED_UP  # Markdown and an emoji: the WAV says neither
    use_fake_llm(monkeypatch, fake_llm)
    monkeypatch.setenv("NARRATE_LLM_STREAM", str(stream).lower())
    forget_describers()
    settings = load_settings()
    spoken: list[str] = []
    steps = plain_steps()

    def heard_tts(*args: Any, **kwargs: Any) -> Any:
        speech = steps.tts(*args, **kwargs)
        spoken.append(speech.text)
        return speech

    def heard_llm_tts(*args: Any, **kwargs: Any) -> Any:
        answer, streamed = steps.llm_tts(*args, **kwargs)  # type: ignore[misc]
        spoken.append(streamed.speech.text)
        return answer, streamed

    heard = dataclasses.replace(steps, tts=heard_tts, llm_tts=heard_llm_tts)
    kwargs: dict[str, Any] = {"out_dir": tmp_path, "lang": "auto", "settings": settings}
    described = describe_one(RECEIPT, steps=heard, **kwargs)
    answered = answer_one(RECEIPT, question_text="What is the total?", steps=heard, **kwargs)
    forget_describers()

    assert len(spoken) == 2 and spoken[0] == spoken[1]
    # what the engines were handed: no markup or emoji, the price and the time in words
    assert spoken[0] == "TOTAL is seven dollars and twenty cents. Paid by card at fourteen oh five."
    assert described.description == answered.answer == MARKED_UP  # the text as written
    for name, result in [("receipt_en.json", described), ("receipt_en.answer.json", answered)]:
        saved = json.loads((tmp_path / name).read_text(encoding="utf-8"))
        assert saved["spoken_text"] == result.spoken_text == spoken[0]
        # the voice that said it (English only here: one); the trial found none named
        assert saved["voices"] == list(result.voices) == [settings.tts.voice_en], saved["voices"]
    assert ("llm_tts_s" in answered.timings) is stream  # the streamed path was taken
