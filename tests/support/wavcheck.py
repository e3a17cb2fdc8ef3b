"""Small WAV checks shared by tests: a valid file with real sound in it."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np


def wav_stats(path: Path) -> tuple[float, float]:
    """(duration in seconds, RMS of the samples in 0-1) of a 16-bit PCM WAV file."""
    with wave.open(str(path), "rb") as wav:
        assert wav.getsampwidth() == 2, "expected 16-bit PCM"
        frames = wav.readframes(wav.getnframes())
        duration = wav.getnframes() / wav.getframerate()
    samples = np.frombuffer(frames, dtype="<i2").astype(np.float64) / 32768.0
    rms = float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0
    return duration, rms
