"""Tests of the pyttsx3/espeak-ng synthesizer and the WAV helpers, on the real espeak-ng."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path

import pytest

from adapters.errors import ConfigError, InputError, RetriesExhaustedError, is_transient
from adapters.tts.base import SpeechResult
from adapters.tts.pyttsx3_engine import (
    _LOCK,
    _WARM_UP_TEXT,
    MAX_CHUNK_CHARS,
    Pyttsx3Synthesizer,
    _EspeakEngine,
    _get_engine,
    _save_in_subprocess,
    _synthesize_chunk,
    split_text,
)
from adapters.tts.wav import concatenate_wavs, problem_with_wav, read_wav_info, rms

PROJECT_ROOT = Path(__file__).resolve().parents[3]
RATE = 170
RMS_FLOOR = 0.02  # espeak-ng speech measures ~0.09; silence is 0
LONG_EN = (
    "The photograph shows a quiet harbour at dawn, with three small fishing boats tied to a "
    "wooden pier, gulls circling overhead, and a lighthouse on the rocky point beyond."
)
ZH = "这张照片显示黎明时分一个安静的港口，三条小渔船系在木码头上。"


def expected_seconds(words: int, rate_wpm: int = RATE) -> float:
    """Speaking time of ``words`` words (or Mandarin syllables) at ``rate_wpm`` words per minute."""
    return words * 60.0 / rate_wpm


def assert_speech_wav(result: SpeechResult, expected_s: float) -> None:
    """The result's file is a mono 16-bit WAV of audible speech of plausible length."""
    with wave.open(str(result.path), "rb") as wav:
        assert wav.getnchannels() == 1
        assert wav.getsampwidth() == 2
        assert 8000 <= wav.getframerate() <= 48000
        frames = wav.getnframes()
        assert result.sample_rate == wav.getframerate()
        assert result.duration_s == pytest.approx(frames / wav.getframerate())
    assert rms(result.path) > RMS_FLOOR
    assert 0.5 * expected_s <= result.duration_s <= 2.0 * expected_s


def run_python(code: str, *, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    """Run ``code`` in a fresh interpreter with the project importable."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.run(
        [sys.executable, "-c", code], input=stdin, capture_output=True, env=env, timeout=120
    )


@pytest.fixture(scope="module")
def synth() -> Pyttsx3Synthesizer:
    """One synthesizer with the default voices at a fixed rate."""
    return Pyttsx3Synthesizer(rate_wpm=RATE)


# --- interface and construction ---------------------------------------------------------


def test_registry_name_resolves() -> None:
    from adapters.registry import load

    assert isinstance(load("tts", "pyttsx3", rate_wpm=200), Pyttsx3Synthesizer)


@pytest.mark.parametrize("kwargs", [{"rate_wpm": 0}, {"rate_wpm": 5000}, {"timeout_s": 0}])
def test_bad_settings_are_config_errors(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        Pyttsx3Synthesizer(**kwargs)  # type: ignore[arg-type]


def test_constructor_does_not_start_the_engine() -> None:
    done = run_python(
        "import adapters.tts.pyttsx3_engine as m\n"
        "m.Pyttsx3Synthesizer(rate_wpm=200, voice_en='nope', voice_zh='nope')\n"
        "import sys; print(m._engine is None, 'pyttsx3' in sys.modules)"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().split() == ["True", "False"]


# --- speech -------------------------------------------------------------------------------


def test_english_speech_is_a_valid_audible_wav(synth: Pyttsx3Synthesizer, tmp_path: Path) -> None:
    result = synth.synthesize(LONG_EN, tmp_path / "en.wav")
    assert result.path == tmp_path / "en.wav"
    assert result.language == "en"
    assert result.voice == "gmw/en-us"
    assert result.engine.startswith("pyttsx3/espeak-ng 1.")
    assert_speech_wav(result, expected_seconds(len(LONG_EN.split())))


def test_chinese_uses_a_mandarin_voice(synth: Pyttsx3Synthesizer, tmp_path: Path) -> None:
    zh = synth.synthesize(ZH, tmp_path / "zh.wav", language="zh")
    en = synth.synthesize("A quiet harbour at dawn.", tmp_path / "en.wav", language="en")
    assert zh.voice == "sit/cmn-latn-pinyin"
    assert zh.voice != en.voice
    assert zh.language == "zh"
    hanzi = sum("\u4e00" <= ch <= "\u9fff" for ch in ZH)
    assert_speech_wav(zh, expected_seconds(hanzi))  # espeak-ng times one syllable as a word


def test_the_default_mandarin_voice_says_han_in_mandarin() -> None:
    """espeak-ng 1.51's ``sit/cmn`` says Han as English letters and tone numbers.

    Its phonemes for 你好 switch to English (``(en)nI55Tr'i:55``: "nee three"); a new user's
    trial heard a Chinese sign read as "F4 should you want chan 10-2-94". The default voice
    must give Mandarin phonemes with their tones (``n'i35 X'Au214``).
    """
    from narrate.config.settings import TTSSettings

    def phonemes(voice: str) -> str:
        command = ["espeak-ng", "-q", "-x", "-v", voice, "你好，营业时间"]
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout

    said = phonemes(TTSSettings().voice_zh)
    assert "(en)" not in said and "214" in said, said  # 好: tone 3 (2-1-4), in Mandarin
    assert "(en)" in phonemes("sit/cmn")  # why it is not the default


def test_faster_rate_gives_shorter_audio(tmp_path: Path) -> None:
    slow = Pyttsx3Synthesizer(rate_wpm=120).synthesize(LONG_EN, tmp_path / "slow.wav")
    fast = Pyttsx3Synthesizer(rate_wpm=240).synthesize(LONG_EN, tmp_path / "fast.wav")
    assert fast.duration_s < 0.75 * slow.duration_s


def test_voices_can_be_named_by_name_or_language_code(tmp_path: Path) -> None:
    by_name = Pyttsx3Synthesizer(voice_en="English (America)", voice_zh="cmn")
    assert by_name.voice_for("en") == "gmw/en-us"
    assert by_name.voice_for("zh") == "sit/cmn"
    result = Pyttsx3Synthesizer(voice_en="en-gb").synthesize("Good morning.", tmp_path / "gb.wav")
    assert result.voice == "gmw/en"
    assert rms(result.path) > RMS_FLOOR


def test_concurrent_threads_get_their_own_files(synth: Pyttsx3Synthesizer, tmp_path: Path) -> None:
    sentences = [
        "One small boat.",
        "Two gulls circle over the grey water of the bay.",
        "Three fishermen mend their nets on the pier while the sun comes up behind the hills.",
        LONG_EN + " " + LONG_EN,
    ]
    reference = [
        synth.synthesize(text, tmp_path / f"ref{i}.wav").duration_s
        for i, text in enumerate(sentences)
    ]
    results: dict[int, SpeechResult] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(sentences))

    def work(index: int) -> None:
        try:
            barrier.wait()
            results[index] = synth.synthesize(sentences[index], tmp_path / f"t{index}.wav")
        except BaseException as exc:  # collected and re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(sentences))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len({r.path for r in results.values()}) == len(sentences)
    assert len({r.path.read_bytes() for r in results.values()}) == len(sentences)
    for index, result in results.items():
        assert problem_with_wav(result.path) is None
        assert rms(result.path) > RMS_FLOOR
        # espeak-ng's prosody drifts by <1% between utterances; a swapped file is >30% off
        assert result.duration_s == pytest.approx(reference[index], rel=0.05)


def test_long_text_is_chunked_and_joined(synth: Pyttsx3Synthesizer, tmp_path: Path) -> None:
    text = " ".join([LONG_EN] * 15)
    assert len(split_text(text)) >= 3
    result = synth.synthesize(text, tmp_path / "long.wav")
    assert_speech_wav(result, expected_seconds(len(text.split())))
    assert [p.name for p in tmp_path.iterdir()] == ["long.wav"]


def test_first_long_text_in_a_fresh_process(tmp_path: Path) -> None:
    """The case pyttsx3 alone loses: a ~200-character text as the process's first synthesis."""
    out = tmp_path / "first.wav"
    text = LONG_EN + " The tide is low."
    assert 180 <= len(text) <= 220
    done = run_python(
        "import json, sys\n"
        "from adapters.tts.pyttsx3_engine import Pyttsx3Synthesizer\n"
        "r = Pyttsx3Synthesizer(rate_wpm=170).synthesize(sys.stdin.read(), sys.argv[0])\n"
        "print(json.dumps({'path': str(r.path), 'duration_s': r.duration_s}))\n".replace(
            "sys.argv[0]", repr(str(out))
        ),
        stdin=text.encode(),
    )
    assert done.returncode == 0, done.stderr.decode()
    # stdout carries only our JSON: the driver's "Audio saved to ..." went to the log
    reported = json.loads(done.stdout.decode())
    assert reported["path"] == str(out)
    assert out.stat().st_size > 44
    assert problem_with_wav(out) is None
    assert reported["duration_s"] == pytest.approx(read_wav_info(out).duration_s)
    assert rms(out) > RMS_FLOOR
    assert [p.name for p in tmp_path.iterdir()] == ["first.wav"]


# --- files --------------------------------------------------------------------------------


def test_write_is_atomic_and_creates_the_directory(
    synth: Pyttsx3Synthesizer, tmp_path: Path
) -> None:
    out = tmp_path / "a" / "b" / "speech.wav"
    synth.synthesize("First version.", out)
    first = out.read_bytes()
    synth.synthesize("A second, clearly longer version of the speech.", out)
    assert out.read_bytes() != first
    assert problem_with_wav(out) is None
    assert sorted(p.name for p in out.parent.iterdir()) == ["speech.wav"]


def test_output_path_that_is_a_directory_is_an_input_error(
    synth: Pyttsx3Synthesizer, tmp_path: Path
) -> None:
    with pytest.raises(InputError) as caught:
        synth.synthesize("Hello.", tmp_path)
    assert caught.value.path == str(tmp_path)
    assert "directory" in caught.value.reason


# --- bad input and configuration ---------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   \n\t ", "... !?", "\x00 🎉✨ <b></b>"])
def test_text_with_nothing_to_say_is_an_input_error(
    synth: Pyttsx3Synthesizer, tmp_path: Path, text: str
) -> None:
    with pytest.raises(InputError, match="nothing speakable: the answer had no words in it"):
        synth.synthesize(text, tmp_path / "x.wav")
    assert list(tmp_path.iterdir()) == []


def test_unknown_language_is_an_input_error(synth: Pyttsx3Synthesizer, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="'fr'"):
        synth.synthesize("Bonjour.", tmp_path / "x.wav", language="fr")


def test_unknown_voice_is_a_config_error_listing_valid_ones(tmp_path: Path) -> None:
    synth = Pyttsx3Synthesizer(voice_en="xx/no-such-voice")
    with pytest.raises(ConfigError) as caught:
        synth.synthesize("Hello.", tmp_path / "x.wav")
    message = str(caught.value)
    assert "no voice 'xx/no-such-voice' (NARRATE_TTS_VOICE_EN)" in message
    assert "gmw/en-us" in message
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ConfigError, match="sit/cmn-latn-pinyin"):
        Pyttsx3Synthesizer(voice_zh="nope").warm_up()


def test_missing_espeak_is_a_config_error_with_the_install_hint() -> None:
    done = run_python(
        "import sys\n"
        "sys.modules['pyttsx3.drivers._espeak'] = None  # as if libespeak-ng were absent\n"
        "from adapters.tts.pyttsx3_engine import Pyttsx3Synthesizer\n"
        "from adapters.errors import ConfigError\n"
        "try:\n"
        "    Pyttsx3Synthesizer().warm_up()\n"
        "except ConfigError as exc:\n"
        "    print(exc)\n"
    )
    assert done.returncode == 0, done.stderr.decode()
    assert "apt-get install espeak-ng" in done.stdout.decode()


# --- the worker process (last-resort path) ------------------------------------------------


def test_worker_process_writes_a_wav(tmp_path: Path) -> None:
    out = tmp_path / "worker.wav"
    assert _save_in_subprocess(LONG_EN, "gmw/en-us", RATE, out, timeout_s=60) is None
    assert problem_with_wav(out) is None
    assert rms(out) > RMS_FLOOR
    assert read_wav_info(out).duration_s == pytest.approx(
        expected_seconds(len(LONG_EN.split())), rel=0.5
    )


def test_worker_process_failure_is_reported(tmp_path: Path) -> None:
    problem = _save_in_subprocess("Hello.", "xx/none", RATE, tmp_path / "w.wav", timeout_s=60)
    assert problem is not None
    assert "exited with 1" in problem
    assert "xx/none" in problem


class LosesFirstTexts:
    """The real engine, except that its first ``losses`` texts are "lost" like pyttsx3 does."""

    def __init__(self, engine: _EspeakEngine, losses: int) -> None:
        self.engine = engine
        self.losses = losses
        self.warm_ups = 0

    def save(
        self, text: str, voice_id: str, rate_wpm: int, path: Path, timeout_s: float
    ) -> str | None:
        if text == _WARM_UP_TEXT:
            self.warm_ups += 1
            return self.engine.save(text, voice_id, rate_wpm, path, timeout_s)
        if self.losses > 0:
            self.losses -= 1
            return "no file was written"
        return self.engine.save(text, voice_id, rate_wpm, path, timeout_s)


@pytest.mark.parametrize("losses", [1, 2])
def test_lost_file_is_recovered_by_retry_then_worker_process(tmp_path: Path, losses: int) -> None:
    """1 loss: the retry after a warm-up recovers it; 2 losses: the fresh worker process does."""
    with _LOCK:
        engine = LosesFirstTexts(_get_engine(), losses)
        out = tmp_path / "part.wav"
        deadline = time.monotonic() + 60
        _synthesize_chunk(engine, LONG_EN, "gmw/en-us", RATE, out, deadline)  # type: ignore[arg-type]
    assert engine.losses == 0
    assert engine.warm_ups == 1
    assert problem_with_wav(out) is None
    assert rms(out) > RMS_FLOOR
    assert sorted(p.name for p in tmp_path.iterdir()) == ["part.wav"]


def test_out_of_time_raises_retries_exhausted(tmp_path: Path) -> None:
    """The adapter retried internally: the task must not retry it 3 more times (issue 10)."""
    with _LOCK, pytest.raises(RetriesExhaustedError, match="out of time") as caught:
        _synthesize_chunk(_get_engine(), "Hello.", "gmw/en-us", RATE, tmp_path / "x.wav", 0.0)
    assert not is_transient(caught.value)
    assert list(tmp_path.iterdir()) == []


# --- text splitting -----------------------------------------------------------------------


def test_split_text_respects_the_limit_and_keeps_every_word() -> None:
    text = " ".join(f"Sentence number {i} has pi as 3.14 in it." for i in range(200))
    chunks = split_text(text)
    assert len(chunks) > 1
    assert all(len(chunk) <= MAX_CHUNK_CHARS for chunk in chunks)
    assert " ".join(chunks).split() == text.split()
    assert all(chunk.endswith(".") for chunk in chunks)  # cut at sentence ends
    assert "3.14" in chunks[0]


def test_split_text_cuts_chinese_at_sentence_marks_and_overlong_runs() -> None:
    assert split_text("第一句。第二句！第三句", max_chars=4) == ["第一句。", "第二句！", "第三句"]
    chunks = split_text("a" * 25, max_chars=10)
    assert chunks == ["a" * 10, "a" * 10, "a" * 5]


# --- WAV helpers --------------------------------------------------------------------------


def write_wav(path: Path, frames: int, *, value: int = 0, rate: int = 22050) -> Path:
    """A mono 16-bit WAV of ``frames`` samples all equal to ``value``."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(value.to_bytes(2, "little", signed=True) * frames)
    return path


def test_concatenate_wavs_joins_with_a_gap(tmp_path: Path) -> None:
    a = write_wav(tmp_path / "a.wav", 1000, value=8192)
    b = write_wav(tmp_path / "b.wav", 500, value=-8192)
    info = concatenate_wavs([a, b], tmp_path / "out" / "ab.wav", gap_s=0.1)
    assert info.frames == 1000 + 2205 + 500
    assert rms(info.path) == pytest.approx(0.25 * ((1500 / info.frames) ** 0.5))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["ab.wav"]


def test_concatenate_wavs_refuses_mixed_formats(tmp_path: Path) -> None:
    a = write_wav(tmp_path / "a.wav", 100)
    b = write_wav(tmp_path / "b.wav", 100, rate=16000)
    with pytest.raises(ValueError, match="16000 Hz"):
        concatenate_wavs([a, b], tmp_path / "ab.wav")
    assert not (tmp_path / "ab.wav").exists()


def test_problem_with_wav_names_each_failure(tmp_path: Path) -> None:
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "text.wav").write_text("not audio")
    write_wav(tmp_path / "zero.wav", 0)
    assert problem_with_wav(tmp_path / "missing.wav") == "no file was written"
    assert problem_with_wav(tmp_path / "empty.wav") == "the file is empty"
    assert "not a valid WAV" in str(problem_with_wav(tmp_path / "text.wav"))
    assert problem_with_wav(tmp_path / "zero.wav") == "the WAV file has no audio frames"
    assert rms(write_wav(tmp_path / "silence.wav", 100)) == 0.0
