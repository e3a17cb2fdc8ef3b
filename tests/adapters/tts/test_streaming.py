"""Speaking an answer while it streams in: sentence cutting, overlap, one WAV at the end."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from adapters.tts.base import SpeechResult
from adapters.tts.pyttsx3_engine import Pyttsx3Synthesizer
from adapters.tts.streaming import SentenceChunker, StreamingSpeaker
from adapters.tts.wav import read_wav_info
from assets import SAMPLES_DIR
from narrate.config.settings import load_settings
from narrate.pipeline.sequence import answer_one, plain_steps
from tests.support.fake_llm import FakeLLMServer
from tests.support.wavcheck import wav_stats

REPLY = (
    "The receipt comes from the Corner Cafe on High Street. "
    "It lists a flat white, a croissant and an orange juice. "
    "The total is 7.20, and the receipt ends with a thank you."
)


def chunks(pieces: list[str], **kwargs: int) -> list[str]:
    chunker = SentenceChunker(**kwargs)
    out = [s for piece in pieces for s in chunker.feed(piece)]
    rest = chunker.flush()
    return [*out, rest] if rest else out


def test_sentences_are_cut_where_they_end_not_inside_numbers() -> None:
    assert chunks(
        ["The total is 7.", "20 dollars. Thank", " you for visiting! Come ", "again"]
    ) == [
        "The total is 7.20 dollars.",
        "Thank you for visiting!",
        "Come again",
    ]


def test_chinese_sentences_need_no_space_and_short_ones_wait() -> None:
    assert chunks(["停车场将进行清洁。请提前", "移走车辆！好。谢谢"]) == [
        "停车场将进行清洁。",
        "请提前移走车辆！",
        "好。谢谢",  # too short alone: waits for more
    ]
    assert chunks(["Yes. It is open until five. "]) == ["Yes. It is open until five."]


class RecordingSynth:
    """The real espeak-ng synthesizer, noting when each part was finished."""

    def __init__(self) -> None:
        self.inner = Pyttsx3Synthesizer()
        self.calls: list[tuple[str, float]] = []

    def __call__(self, text: str, path: Path, language: str) -> SpeechResult:
        result = self.inner.synthesize(text, path, language=language)
        self.calls.append((text, time.monotonic()))
        return result


def test_first_sentence_is_spoken_before_the_text_is_complete(tmp_path: Path) -> None:
    synth = RecordingSynth()
    speaker = StreamingSpeaker(synth, tmp_path / "a.wav", "en")
    words = REPLY.split(" ")
    last_delta = 0.0
    for index, word in enumerate(words):  # about 20 words a second, like a fast model
        speaker.on_delta(word if index == 0 else " " + word)
        last_delta = time.monotonic()
        time.sleep(0.05)
    streamed = speaker.finish(REPLY)

    assert synth.calls[0][1] < last_delta  # overlap: audio existed while text still came
    assert [text for text, _ in synth.calls] == [
        "The receipt comes from the Corner Cafe on High Street.",
        "It lists a flat white, a croissant and an orange juice.",
        "The total is 7.20, and the receipt ends with a thank you.",
    ]
    assert streamed.parts == 3 and not streamed.respoken
    assert streamed.first_audio_s is not None
    duration, rms = wav_stats(streamed.speech.path)
    assert rms > 0.01
    assert abs(duration - streamed.speech.duration_s) < 0.01
    assert duration > 6  # three sentences, not one
    assert not list(tmp_path.glob(".parts-*"))  # part files cleaned up


def test_changed_text_is_respoken_whole(tmp_path: Path) -> None:
    synth = RecordingSynth()
    speaker = StreamingSpeaker(synth, tmp_path / "b.wav", "en")
    speaker.on_delta("A streamed answer that broke off. Then")
    streamed = speaker.finish("An offline description replaced it.")
    assert streamed.respoken
    assert synth.calls[-1][0] == "An offline description replaced it."
    assert read_wav_info(tmp_path / "b.wav").duration_s < 5


@pytest.fixture
def streaming_llm(
    fake_llm_factory: Callable[..., FakeLLMServer], llm_env: Callable[..., None]
) -> Callable[..., list[FakeLLMServer]]:
    """Start fake servers that stream ``REPLY`` and point the LLM step at them, streaming.

    ``streaming_llm({"tokens_per_second": 40}, ...)``: one server per dict of
    ``FakeLLMServer`` options; the first is the primary, the rest its backups.
    """

    def start(*options: dict[str, Any]) -> list[FakeLLMServer]:
        servers = [fake_llm_factory(reply=REPLY, **each) for each in options]
        llm_env(*servers, NARRATE_LLM_STREAM="1", NARRATE_CACHE_BACKEND="off")
        return servers

    return start


@pytest.mark.slow
def test_voice_answer_streams_over_sse(
    streaming_llm: Callable[..., list[FakeLLMServer]], tmp_path: Path
) -> None:
    (server,) = streaming_llm({"tokens_per_second": 40})
    result = answer_one(
        SAMPLES_DIR / "receipt_en.png", question_text="What is on this receipt?",
        out_dir=tmp_path, lang="en", settings=load_settings(), steps=plain_steps(),
    )  # fmt: skip
    assert result.answer == REPLY
    assert server.requests[-1].body["stream"] is True
    assert result.first_audio_s is not None
    assert result.first_audio_s < result.timings["llm_tts_s"]
    assert result.ttft_s is not None
    duration, rms = wav_stats(result.audio_path)
    assert duration > 6 and rms > 0.01


@pytest.mark.slow
def test_cut_stream_fails_over_without_repeating_speech(
    streaming_llm: Callable[..., list[FakeLLMServer]], tmp_path: Path
) -> None:
    _, backup = streaming_llm(
        {"script": ["stream-cut:12"], "tokens_per_second": 200}, {"tokens_per_second": 200}
    )
    synth_calls: list[str] = []
    real = Pyttsx3Synthesizer()

    def synth(text: str, path: Path, language: str) -> SpeechResult:
        synth_calls.append(text)
        return real.synthesize(text, path, language=language)

    from narrate.pipeline.steps import build_describer, description_request, run_features, run_ocr

    settings = load_settings()
    ocr = run_ocr(SAMPLES_DIR / "receipt_en.png", "en", settings.ocr)
    features = run_features(SAMPLES_DIR / "receipt_en.png", ocr.boxes)
    speaker = StreamingSpeaker(synth, tmp_path / "c.wav", "en")
    description = build_describer(settings.llm).describe(
        description_request(ocr, features, question="What is on it?"), speaker.on_delta
    )
    streamed = speaker.finish(description.text)

    assert description.text == REPLY
    assert " ".join(synth_calls) == REPLY  # every sentence spoken once, none twice
    assert not streamed.respoken
    turn, ask = backup.requests[-1].body["messages"][-2:]  # the portable continuation
    assert turn["role"] == "assistant" and ask["role"] == "user"
    assert REPLY.startswith(turn["content"])


def test_streamed_parts_keep_each_runs_voice_and_the_cleaned_text(tmp_path: Path) -> None:
    """Issue 12: streamed sentences go through the script voices; the result says what was said."""
    from adapters.tts.voices import ScriptVoices

    espeak = Pyttsx3Synthesizer(rate_wpm=170)
    voices = ScriptVoices(english=espeak, mandarin=espeak)
    text = "这是 Harbour Bakery 的通知。\x00The bakery opens at <b>nine</b> today."
    speaker = StreamingSpeaker(voices.synthesize, tmp_path / "a.wav", "en")
    for piece in (text[:12], text[12:30], text[30:]):
        speaker.on_delta(piece)
    streamed = speaker.finish(text)
    assert not streamed.respoken and streamed.parts == 2
    speech = streamed.speech
    assert speech.text == "这是 Harbour Bakery 的通知。 The bakery opens at nine today."
    assert [(r.language, r.voice) for r in speech.runs] == [
        ("zh", "sit/cmn-latn-pinyin"), ("en", "gmw/en-us"),
        ("zh", "sit/cmn-latn-pinyin"), ("en", "gmw/en-us"),
    ]  # fmt: skip
    assert speech.duration_s == pytest.approx(read_wav_info(speech.path).duration_s)
    assert speech.duration_s == pytest.approx(sum(r.duration_s for r in speech.runs), abs=0.1)
