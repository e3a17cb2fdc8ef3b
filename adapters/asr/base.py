"""The speech-recognition interface, its result types and its refusal error.

Every engine reports whisper's own per-segment signals (``avg_logprob``, ``no_speech_prob``,
``compression_ratio``; see openai-whisper's ``transcribe`` result and faster-whisper's
``Segment``), so ``adapters.asr.refusal`` can tell a question from noise whatever the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from adapters.errors import InputError


@dataclass(frozen=True)
class Segment:
    """A stretch of recognised speech and whisper's confidence signals for it.

    Attributes:
        start: Start of the segment in seconds from the beginning of the audio.
        end: End of the segment in seconds.
        text: The words recognised, stripped.
        avg_logprob: Mean log-probability of the decoded tokens (0 is certain; below -1
            whisper itself treats the decoding as failed).
        no_speech_prob: Probability 0-1 of the no-speech token at the segment's start.
        compression_ratio: gzip compression ratio of the text; above 2.4 the text repeats
            itself (a hallucination loop).
    """

    start: float
    end: float
    text: str
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    compression_ratio: float = 1.0


@dataclass(frozen=True)
class Transcript:
    """What was said in an audio file.

    Attributes:
        text: The whole transcript.
        language: The language code whisper used (``en``, ``zh``, ...).
        segments: The segments with their signals.
        confidence: 0-1, the mean of ``exp(avg_logprob)`` over the segments.
        model: Short model name (``whisper-tiny.en``).
        engine: The engine that made it (``whisper`` or ``faster-whisper``).
        duration_s: Length of the audio in seconds.
        reversed_avg_logprob: The speech-weighted ``avg_logprob`` of the same audio played
            backwards, measured only when the decoding was weak (see ``adapters.asr.refusal``);
            ``None`` when not measured.
    """

    text: str
    language: str
    segments: tuple[Segment, ...] = ()
    confidence: float = 0.0
    model: str = ""
    engine: str = ""
    duration_s: float = 0.0
    reversed_avg_logprob: float | None = None


class NotSpeechError(InputError):
    """The audio holds no question that can be made out (noise, music, reversed, garbled).

    The message names the file and says what to do, e.g. "could not make out a question in
    q.wav (...); record it again closer to the microphone".
    """

    def __init__(self, path: str | Path | None, why: str, advice: str) -> None:
        """Build the message from the file, the reason found and the advice.

        Args:
            path: The audio file.
            why: What the signals showed, e.g. "no-speech probability 0.93".
            advice: What the person should do next.
        """
        name = Path(path).name if path is not None else "the audio"
        super().__init__(path, f"could not make out a question ({why}); {advice}")
        self.why = why
        self.advice = advice
        self.args = (f"could not make out a question in {name} ({why}); {advice}",)


@runtime_checkable
class Transcriber(Protocol):
    """Turns speech into text."""

    def transcribe(self, audio_path: Path, language: str | None = None) -> Transcript:
        """Transcribe an audio file.

        Args:
            audio_path: WAV, FLAC, OGG or MP3 file.
            language: A language code or name; ``None`` uses the engine's setting or detects.

        Returns:
            The transcript with per-segment signals.

        Raises:
            InputError: The file is missing, not audio, silent or too long.
            ConfigError: The model is missing or cannot do the language.
            PermanentError: The engine failed on the audio.
        """
        ...
