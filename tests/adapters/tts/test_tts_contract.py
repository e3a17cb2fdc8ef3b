"""The contract every TTS engine passes: espeak-ng (pyttsx3), piper and the script voices.

Real engines, no mocks: a sentence becomes a mono 16-bit WAV at the path asked for, of
audible speech (RMS) and a length that fits the words; the result's path, duration, sample
rate and text describe that file. Text with nothing speakable raises ``InputError`` with the
'no words' message and writes nothing; an unusable output path raises ``InputError`` naming
it. mypy proves the classes conform (``adapters/registry.py``); these prove they behave.
What the WAV says is checked by ear (whisper) in ``test_round_trip.py``.
"""

from __future__ import annotations

import wave
from pathlib import Path

import pytest

from adapters import registry
from adapters.errors import InputError
from adapters.tts.base import SpeechResult, SpeechSynthesizer
from adapters.tts.speakable import NOTHING_SPEAKABLE
from adapters.tts.voices import ScriptVoices
from adapters.tts.wav import problem_with_wav, rms

RATE_WPM = 170
RMS_FLOOR = 0.02  # speech measures ~0.05-0.1 on both engines; silence is 0
SENTENCE = "The total on this receipt is seven pounds twenty."
ENGINES = ("pyttsx3", "piper", "script-voices")


def make(name: str) -> SpeechSynthesizer:
    """The engine ``name`` at ``RATE_WPM`` words per minute, built as the pipeline builds it."""
    if name in ("piper", "script-voices"):
        pytest.importorskip("piper", reason="needs piper-tts (scripts/install_asr.sh)")
    if name == "script-voices":
        english = registry.load("tts", "piper", rate_wpm=RATE_WPM)
        mandarin = registry.load("tts", "pyttsx3", rate_wpm=RATE_WPM)
        return ScriptVoices(english=english, mandarin=mandarin)
    return registry.load("tts", name, rate_wpm=RATE_WPM)


@pytest.fixture(scope="module", params=ENGINES)
def synth(request: pytest.FixtureRequest) -> SpeechSynthesizer:
    """Each engine once per module (piper loads its voice once)."""
    return make(str(request.param))


def assert_speech(result: SpeechResult, out: Path, words: int) -> None:
    """``result`` describes ``out``: a mono 16-bit WAV of audible speech of ``words`` words."""
    assert result.path == out and out.is_file()
    assert problem_with_wav(out) is None
    with wave.open(str(out), "rb") as wav:
        assert wav.getnchannels() == 1 and wav.getsampwidth() == 2
        assert result.sample_rate == wav.getframerate()
        assert 8000 <= result.sample_rate <= 48000
        assert result.duration_s == pytest.approx(wav.getnframes() / wav.getframerate(), abs=0.01)
    expected_s = words * 60.0 / RATE_WPM
    assert 0.5 * expected_s <= result.duration_s <= 2.0 * expected_s, result.duration_s
    assert rms(out) > RMS_FLOOR
    assert result.language == "en"
    assert result.voice and result.engine


def test_sentence_becomes_audible_wav_the_result_describes(
    synth: SpeechSynthesizer, tmp_path: Path
) -> None:
    out = tmp_path / "answer.wav"
    result = synth.synthesize(SENTENCE, out, "en")
    assert_speech(result, out, len(SENTENCE.split()))
    assert result.text == SENTENCE  # the result says what the WAV says
    assert list(tmp_path.iterdir()) == [out]  # no temporary file left behind


def test_longer_text_takes_longer(synth: SpeechSynthesizer, tmp_path: Path) -> None:
    short = synth.synthesize("Seven pounds.", tmp_path / "short.wav", "en")
    long = synth.synthesize(SENTENCE + " " + SENTENCE, tmp_path / "long.wav", "en")
    assert long.duration_s > 3 * short.duration_s


def test_existing_file_is_replaced(synth: SpeechSynthesizer, tmp_path: Path) -> None:
    out = tmp_path / "answer.wav"
    out.write_bytes(b"old contents, not a wav")
    result = synth.synthesize(SENTENCE, out, "en")
    assert_speech(result, out, len(SENTENCE.split()))


@pytest.mark.parametrize("text", ["", "   \n", "🙂🎉 👍", "*** --- ###", "<br/> **"])
def test_nothing_speakable_is_an_input_error_and_writes_nothing(
    synth: SpeechSynthesizer, tmp_path: Path, text: str
) -> None:
    out = tmp_path / "answer.wav"
    with pytest.raises(InputError) as caught:
        synth.synthesize(text, out, "en")
    assert str(caught.value) == NOTHING_SPEAKABLE
    assert "no words" in str(caught.value)
    assert not out.exists()


def test_output_path_that_is_a_directory_is_an_input_error_naming_it(
    synth: SpeechSynthesizer, tmp_path: Path
) -> None:
    target = tmp_path / "answers.wav"
    target.mkdir()
    with pytest.raises(InputError) as caught:
        synth.synthesize(SENTENCE, target, "en")
    assert str(target) in str(caught.value)
    assert "\n" not in str(caught.value)
