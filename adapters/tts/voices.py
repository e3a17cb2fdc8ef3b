"""One WAV from text in several scripts: each run spoken by a voice of its own script.

``ScriptVoices`` is the ``SpeechSynthesizer`` the pipeline uses. It hands the text to
``adapters.tts.speakable.prepare`` (cleaning, script runs, numbers in words), speaks every
run with the engine for its language (Han -> Mandarin, Latin -> English, whatever language
the image was in) and joins the pieces into one WAV, written atomically. The result carries
the cleaned text and each run's voice, so a test or a person can see what was said by whom.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import wave
from pathlib import Path

import numpy as np

from adapters import registry
from adapters.tts.base import SpeechResult, SpeechSynthesizer, SpokenRun
from adapters.tts.speakable import clean_text, prepare, said
from adapters.tts.wav import concatenate_wavs, read_samples, speech_result, writable_wav_path


def _match_rate(path: Path, rate: int) -> None:
    """Resample the 16-bit mono/stereo WAV at ``path`` to ``rate`` Hz in place (linear)."""
    samples, info = read_samples(path)
    if info.sample_rate == rate:
        return
    frames = samples.shape[0]
    target = max(1, round(frames * rate / info.sample_rate))
    positions = np.linspace(0, frames - 1, target)
    columns = [np.interp(positions, np.arange(frames), samples[:, c]) for c in range(info.channels)]
    data = np.clip(np.stack(columns, axis=1), -1, 1)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(info.channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((data * 32767).astype("<i2").tobytes())


class ScriptVoices:
    """A ``SpeechSynthesizer`` that speaks each script run with the engine for its language."""

    def __init__(self, *, english: SpeechSynthesizer, mandarin: SpeechSynthesizer) -> None:
        """Remember the two engines.

        Args:
            english: Speaks Latin-script runs (``language="en"``).
            mandarin: Speaks Han runs (``language="zh"``).
        """
        self.english = english
        self.mandarin = mandarin

    def warm_up(self) -> None:
        """Start both engines and load the text-cleaning tables now (e.g. while OCR runs).

        Raises:
            ConfigError: An engine or voice is missing.
        """
        prepare("Ready.", "en")
        for engine in (self.english, self.mandarin):
            warm = getattr(engine, "warm_up", None)
            if warm is not None:
                warm()

    def synthesize(self, text: str, out_path: Path, language: str = "en") -> SpeechResult:
        """Speak ``text`` into ``out_path``, each run in the voice of its own script.

        Args:
            text: The text of the result; it is cleaned first (see ``speakable``).
            out_path: The WAV file to write.
            language: Used only for runs with no letters (e.g. a bare number).

        Returns:
            The WAV, the words it says (``text``: cleaned, prices and times in words, as
            the engines were given them) and each run's voice and length.

        Raises:
            InputError: Nothing speakable is left, or ``out_path`` is unusable.
            ConfigError: An engine or voice is missing.
            TransientError: An engine failed (``RetriesExhaustedError`` when it retried).
        """
        out_path = Path(out_path)
        runs = prepare(text, language)
        writable_wav_path(out_path)
        workdir = Path(tempfile.mkdtemp(prefix=".runs-", dir=out_path.parent))
        try:
            results: list[SpeechResult] = []
            for index, run in enumerate(runs):
                engine = self.mandarin if run.language == "zh" else self.english
                part = workdir / f"run{index:03d}.wav"
                results.append(engine.synthesize(run.spoken, part, language=run.language))
            rate = results[0].sample_rate
            for result in results[1:]:
                _match_rate(result.path, rate)
            if len(results) == 1:
                os.replace(results[0].path, out_path)
            else:
                concatenate_wavs([r.path for r in results], out_path)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        first = results[0]
        return speech_result(
            out_path,
            voice=first.voice,
            language=first.language,
            engine=first.engine,
            text=said(clean_text(text), runs),  # the words the WAV says: $3.50 in words
            runs=tuple(
                SpokenRun(run.text, run.spoken, run.language, r.voice, r.engine, r.duration_s)
                for run, r in zip(runs, results, strict=True)
            ),
        )


@functools.cache
def build_script_voices(engine: str, rate_wpm: int, voice_en: str, voice_zh: str) -> ScriptVoices:
    """The pipeline's speaker, built once per process and settings.

    Args:
        engine: The English engine's registry name: ``pyttsx3`` (espeak-ng) or ``piper``.
        rate_wpm: Words per minute.
        voice_en: espeak-ng's English voice (used when ``engine`` is ``pyttsx3``).
        voice_zh: espeak-ng's Mandarin voice (always: no other Mandarin voice is installable).

    Returns:
        A ``ScriptVoices`` over the two engines.

    Raises:
        ConfigError: ``engine`` is unknown or not installed.
    """
    espeak = registry.load(
        "tts", "pyttsx3", rate_wpm=rate_wpm, voice_en=voice_en, voice_zh=voice_zh
    )
    english = espeak if engine == "pyttsx3" else registry.load("tts", engine, rate_wpm=rate_wpm)
    return ScriptVoices(english=english, mandarin=espeak)
