"""The refusal rules on transcripts with known signals (fast; the real clips are in the
contract tests and bench/voice.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from adapters.asr.base import NotSpeechError, Segment, Transcript
from adapters.asr.refusal import (
    ensure_question,
    refusal_reason,
    speech_logprob,
    spoken_words,
    with_reverse_check,
)
from adapters.errors import InputError


def heard(
    text: str,
    *signals: tuple[float, float, float],
    reversed_avg_logprob: float | None = None,
) -> Transcript:
    """A transcript whose segments (1 s each) carry (avg_logprob, no_speech, compression)."""
    segments = tuple(
        Segment(float(i), float(i + 1), text, lp, ns, cr) for i, (lp, ns, cr) in enumerate(signals)
    )
    return Transcript(
        text=text, language="en", segments=segments, reversed_avg_logprob=reversed_avg_logprob
    )


# Signals measured on the labelled clips (faster-whisper tiny.en; bench/README.md).
CLEAR = [
    heard("What is the total on this receipt?", (-0.31, 0.02, 0.87)),  # piper
    heard("What is the total on this receipt?", (-0.67, 0.17, 0.87), reversed_avg_logprob=-1.1),
    heard("when does the bakery open on Sunday morning?", (-0.53, 0.2, 0.86)),  # espeak
    heard("这张收据的总额是多少？", (-0.45, 0.05, 0.9)),
]
NOT_QUESTIONS = [
    heard(
        "",
    ),  # noise: no segment at all
    heard(". . . . . . . . .", (-0.64, 0.91, 1.42)),  # near-silence
    heard("[Music]", (-0.3, 0.5, 0.6)),
    heard("See you soon.", (-0.92, 0.34, 0.6), (-0.65, 0.94, 1.1), (-0.65, 0.94, 1.1)),
    heard("So, it's not a bit of a mess", (-1.16, 0.29, 1.19)),  # reversed, unintelligible
    heard("Yes, you're saying all of us", (-0.7, 0.19, 0.85), reversed_avg_logprob=-0.35),
    heard("la la la la la la la la la la la", (-0.2, 0.1, 3.1)),  # hallucination loop
    heard("Thank you.", (-0.55, 0.8, 0.7)),  # hum: no speech, weak decoding
]


@pytest.mark.parametrize("transcript", CLEAR, ids=lambda t: t.text[:20])
def test_clear_questions_pass(transcript: Transcript) -> None:
    assert refusal_reason(transcript) is None
    assert ensure_question(transcript, "q.wav") == transcript.text


@pytest.mark.parametrize("transcript", NOT_QUESTIONS, ids=lambda t: t.text[:20] or "empty")
def test_non_questions_are_refused(transcript: Transcript) -> None:
    assert refusal_reason(transcript) is not None
    with pytest.raises(NotSpeechError):
        ensure_question(transcript, "q.wav")


def test_message_names_the_file_and_the_signal() -> None:
    with pytest.raises(NotSpeechError) as caught:
        ensure_question(NOT_QUESTIONS[5], Path("/data/in/q.wav"))
    error = caught.value
    assert str(error) == (
        "could not make out a question in q.wav (it sounds like speech played backwards: "
        "log-probability -0.70, -0.35 reversed); record it again closer to the microphone, "
        "in a quiet room, and speak the question"
    )
    assert isinstance(error, InputError)
    assert error.path == "/data/in/q.wav"


def test_spoken_words_ignore_tags_and_punctuation() -> None:
    assert spoken_words(". . . [Music] ♪♪ (applause)") == []
    assert spoken_words("Is it 7.40?") == ["Is", "it", "7", "40"]
    assert spoken_words("总额是多少？") == ["总额是多少"]


def test_reverse_check_runs_only_in_the_grey_zone() -> None:
    calls: list[int] = []

    def decode(samples: np.ndarray) -> Transcript:
        calls.append(samples.size)
        assert samples[0] == 3.0  # played backwards
        return heard("forward speech", (-0.3, 0.01, 0.9))

    audio = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    clear = heard("fine", (-0.3, 0.01, 0.9))
    assert with_reverse_check(clear, audio, decode) is clear
    garbled = heard("garbled", (-1.5, 0.2, 0.9))
    assert with_reverse_check(garbled, audio, decode) is garbled
    assert calls == []
    grey = with_reverse_check(heard("unsure", (-0.8, 0.2, 0.9)), audio, decode)
    assert calls == [3]
    assert grey.reversed_avg_logprob == pytest.approx(-0.3)
    assert "played backwards" in str(refusal_reason(grey))


def test_speech_logprob_weights_by_duration() -> None:
    t = Transcript(
        text="a b",
        language="en",
        segments=(Segment(0, 3, "a", -0.2, 0, 1), Segment(3, 4, "b", -1.0, 0, 1)),
    )
    assert speech_logprob(t) == pytest.approx(-0.4)
    assert speech_logprob(Transcript(text="", language="en")) is None
