"""The image_to_speech flow end to end on real parts, under the shared Prefect harness."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assets import SAMPLES_DIR
from tests.support.artifacts import artifact_data
from tests.support.wavcheck import wav_stats

pytestmark = pytest.mark.slow


def test_receipt_end_to_end(prefect_harness: None, offline_env: None, tmp_path: Path) -> None:
    from flows.image_to_speech import image_to_speech

    state = image_to_speech(SAMPLES_DIR / "receipt_en.png", out_dir=tmp_path, return_state=True)
    result = state.result()
    run_id = state.state_details.flow_run_id

    assert "TOTAL 7.20" in result.ocr_text
    assert result.language == "en"
    assert result.backend == "offline"
    assert "CORNER CAFE" in result.description
    assert set(result.timings) == {"ocr_s", "features_s", "llm_s", "tts_s"}
    assert result.audio_path == tmp_path / "receipt_en.wav"
    duration, rms = wav_stats(result.audio_path)
    assert duration > 1.0 and rms > 0.01

    saved = json.loads((tmp_path / "receipt_en.json").read_text())
    assert saved["description"] == result.description
    assert saved["audio_path"] == str(result.audio_path)
    # what the WAV says, as the TTS task reported it, reaches the flow's result and the JSON
    assert saved["spoken_text"] == result.spoken_text and "CORNER CAFE" in result.spoken_text
    assert {"description", "ocr_text", "ocr_confidence", "language", "features"} <= set(saved)
    assert json.loads(result.to_json())["backend"] == "offline"

    markdown = artifact_data("description-receipt-en-png", run_id)
    assert result.description.splitlines()[0][:40] in markdown and "TOTAL 7.20" in markdown
    rows = json.loads(artifact_data("timings-receipt-en-png", run_id))
    assert all(set(row) == {"what", "value", "unit"} for row in rows)  # one set of columns
    assert {"what": "backend", "value": "offline (offline)", "unit": ""} in rows
    assert {"what": "llm answer from the LLM response cache", "value": "no", "unit": ""} in rows
    assert {r["what"] for r in rows} >= {
        "ocr from Prefect's task cache",
        "features from Prefect's task cache",
    }
    # no NARRATE_OUTPUT_BASE_URL: the WAV as its absolute path on this machine
    assert f"`{result.audio_path.resolve()}` (on the worker)" in markdown
    assert [r["what"] for r in rows][:4] == ["ocr time", "features time", "llm time", "tts time"]


def test_chinese_notice_end_to_end(
    prefect_harness: None, offline_env: None, tmp_path: Path
) -> None:
    from flows.image_to_speech import image_to_speech

    result = image_to_speech(SAMPLES_DIR / "notice_zh.png", out_dir=tmp_path)

    assert result.language == "zh"
    assert "停车场" in result.ocr_text
    assert "停车场" in result.description
    duration, rms = wav_stats(result.audio_path)
    assert duration > 1.0 and rms > 0.01


def test_bad_image_fails_the_flow_with_the_reason(
    prefect_harness: None, offline_env: None, tmp_path: Path
) -> None:
    from adapters.errors import InputError
    from flows.image_to_speech import image_to_speech

    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match=r"empty\.jpg: file is empty"):
        image_to_speech(empty, out_dir=tmp_path)
    assert not (tmp_path / "empty.wav").exists()


def test_the_final_state_says_what_the_run_produced(
    prefect_harness: None, offline_env: None, tmp_path: Path
) -> None:
    from flows._outcome import opening
    from flows.image_to_speech import image_to_speech

    state = image_to_speech(SAMPLES_DIR / "receipt_en.png", out_dir=tmp_path, return_state=True)
    result = state.result()

    assert state.is_completed() and state.name == "Completed"
    assert state.message == opening(result.description) and "CORNER CAFE" in state.message

    again = image_to_speech(SAMPLES_DIR / "receipt_en.png", out_dir=tmp_path, return_state=True)
    run_id = again.state_details.flow_run_id
    table = json.loads(artifact_data("timings-receipt-en-png", run_id))
    rows = {r["what"]: r["value"] for r in table}
    assert again.is_completed()
    assert rows["ocr from Prefect's task cache"] == "yes"  # same bytes: Prefect's cache answered
    assert rows["features from Prefect's task cache"] == "yes"


def test_bad_input_ends_failed_with_the_reason_as_its_message(
    prefect_harness: None, offline_env: None, tmp_path: Path
) -> None:
    from flows.image_to_speech import image_to_speech

    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("shopping list\n")
    state = image_to_speech(not_an_image, out_dir=tmp_path, return_state=True)

    assert state.is_failed()
    assert state.message.startswith(f"{not_an_image}: not an image file")
    assert "\n" not in state.message and "Traceback" not in state.message


def test_a_latin1_file_name_given_as_the_cli_gives_it(
    prefect_harness: None, offline_env: None, tmp_path: Path
) -> None:
    """Flow parameters travel as JSON: the CLI passes a non-UTF-8 name readably (``readable``)
    and both flows find the file (``on_disk``); outputs and artifacts are UTF-8."""
    import os
    import shutil

    from flows.image_to_speech import image_to_speech
    from flows.voice_qa import voice_qa
    from narrate.pipeline.results import readable

    image = os.fsdecode(os.fsencode(tmp_path) + b"/re\xe7u_caf\xe9.png")  # Latin-1 bytes
    shutil.copy(SAMPLES_DIR / "receipt_en.png", image)
    shown = Path(readable(image))
    assert shown.name == "reçu_café.png" and not shown.exists()

    state = image_to_speech(shown, out_dir=tmp_path / "out", return_state=True)
    result = state.result()
    assert "TOTAL 7.20" in result.ocr_text
    assert result.audio_path == tmp_path / "out" / "reçu_café.wav"
    assert wav_stats(result.audio_path)[0] > 1.0
    saved = json.loads((tmp_path / "out" / "reçu_café.json").read_text(encoding="utf-8"))
    assert saved["image_path"].endswith("reçu_café.png")
    markdown = artifact_data("description-re-u-caf-png", state.state_details.flow_run_id)
    assert "# reçu_café.png" in markdown and "TOTAL 7.20" in markdown

    answer = voice_qa(shown, question_text="What is the total?", out_dir=tmp_path / "out")
    assert "7.20" in answer.answer
    assert (tmp_path / "out" / "reçu_café.answer.wav").stat().st_size > 1000
