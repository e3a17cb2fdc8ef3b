"""Refusing audio that holds no question: noise, hum, music, reversed or garbled speech.

whisper transcribes almost anything into *some* text: reversed speech came back as "See you
soon." and white noise as ". . . .". The decision uses whisper's own per-segment signals
(the ones its ``transcribe`` uses to drop silent windows and retry failed decodings, see
openai-whisper ``transcribe.py``: ``no_speech_threshold``, ``logprob_threshold``,
``compression_ratio_threshold``) plus the transcript itself:

- no words at all (only dots, "[Music]"-style tags), or the same sentence over and over
  -> refused;
- ``compression_ratio`` above 2.4 (whisper's own limit: a hallucination loop) -> refused;
- speech-weighted mean ``avg_logprob`` below -1.0 (whisper's own "decoding failed" limit)
  -> refused as unintelligible;
- high ``no_speech_prob`` together with a weak decoding -> refused as not speech;
- the grey zone, a mean ``avg_logprob`` between -1.0 and -0.5: clear questions in a robotic
  espeak-ng voice score -0.4 to -0.7 and reversed speech -0.7 to -1.3 (measured on the
  labelled set), so the level alone cannot separate them. There the engine also decodes the
  audio played backwards (``with_reverse_check``): reversed speech played backwards is
  speech and decodes clearly better than the input did; real speech played backwards decodes
  worse. Clear questions of a natural voice (-0.3) never pay for this second decoding.

The thresholds were chosen on the labelled set of ``tests.support.speech.labelled_clips``
(``python -m bench.voice --parts refusal``; the confusion table is in bench/README.md) so
that every clear question at normal volume passes.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from adapters.asr.base import NotSpeechError, Transcript

ADVICE = "record it again closer to the microphone, in a quiet room, and speak the question"
# Tags whisper writes for non-speech sounds.
_NON_SPEECH_TAG = re.compile(r"[\[(][^\])]*[\])]|♪+")


@dataclass(frozen=True)
class Thresholds:
    """Limits on whisper's signals; a transcript outside any of them is refused.

    Attributes:
        min_avg_logprob: Below this speech-weighted mean token log-probability the speech
            is unintelligible (whisper's ``logprob_threshold``).
        grey_avg_logprob: Between ``min_avg_logprob`` and this, the audio is also decoded
            backwards (``with_reverse_check``).
        reversed_margin: Refused when the backwards decoding beats the forward one by more
            than this (log-probability per token).
        max_no_speech_prob: Refused above this no-speech probability when the decoding is
            also below ``grey_avg_logprob`` (whisper's ``no_speech_threshold``).
        max_compression_ratio: Highest acceptable gzip compression ratio of a segment.
        max_repeats: Most times one segment text may recur.
    """

    min_avg_logprob: float = -1.0
    grey_avg_logprob: float = -0.5
    reversed_margin: float = 0.1
    max_no_speech_prob: float = 0.6
    max_compression_ratio: float = 2.4
    max_repeats: int = 2


DEFAULT_THRESHOLDS = Thresholds()


def spoken_words(text: str) -> list[str]:
    """The words in ``text`` without non-speech tags; a run of Han characters is one word.

    Args:
        text: A transcript.

    Returns:
        Runs of letters or digits.
    """
    cleaned = _NON_SPEECH_TAG.sub(" ", text)
    return re.findall(r"[^\W_]+", cleaned.replace("'", ""))


def speech_logprob(transcript: Transcript) -> float | None:
    """The duration-weighted mean ``avg_logprob`` of the segments, or ``None`` without any.

    Args:
        transcript: What an engine heard.

    Returns:
        Mean log-probability per token (0 is certain), or ``None``.
    """
    segments = transcript.segments
    if not segments:
        return None
    weights = [max(s.end - s.start, 0.01) for s in segments]
    total = sum(w * s.avg_logprob for w, s in zip(weights, segments, strict=True))
    return total / sum(weights)


def with_reverse_check(
    transcript: Transcript,
    samples: np.ndarray,
    decode: Callable[[np.ndarray], Transcript],
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> Transcript:
    """``transcript`` with ``reversed_avg_logprob`` measured when its decoding is weak.

    Args:
        transcript: The forward decoding.
        samples: The audio it was decoded from (16 kHz mono float32).
        decode: Decodes samples with the same engine, model and language.
        thresholds: Where the grey zone lies.

    Returns:
        ``transcript`` itself outside the grey zone; else a copy with the backwards
        decoding's mean log-probability (-10 when backwards gave no segment at all).
    """
    logprob = speech_logprob(transcript)
    if logprob is None or not (thresholds.min_avg_logprob <= logprob < thresholds.grey_avg_logprob):
        return transcript
    backwards = decode(np.ascontiguousarray(samples[::-1]))
    reversed_logprob = speech_logprob(backwards)
    return replace(
        transcript, reversed_avg_logprob=-10.0 if reversed_logprob is None else reversed_logprob
    )


def refusal_reason(
    transcript: Transcript, thresholds: Thresholds = DEFAULT_THRESHOLDS
) -> str | None:
    """Why ``transcript`` is not a question that can be answered, or ``None`` when it is.

    Args:
        transcript: What an engine heard, with per-segment signals.
        thresholds: The limits to apply.

    Returns:
        A short reason naming the signal and its value, or ``None``.
    """
    logprob = speech_logprob(transcript)
    if not spoken_words(transcript.text) or logprob is None:
        return "no words were heard"
    segments = transcript.segments
    repeats = Counter(s.text.lower() for s in segments if s.text).most_common(1)
    if repeats and repeats[0][1] > thresholds.max_repeats:
        return f"the transcript repeats {repeats[0][0]!r} {repeats[0][1]} times"
    ratio = max(s.compression_ratio for s in segments)
    if ratio > thresholds.max_compression_ratio:
        return f"the transcript repeats itself: compression ratio {ratio:.1f}"
    if logprob < thresholds.min_avg_logprob:
        return f"the speech is unintelligible: mean log-probability {logprob:.2f}"
    no_speech = max(s.no_speech_prob for s in segments)
    if no_speech > thresholds.max_no_speech_prob and logprob < thresholds.grey_avg_logprob:
        return f"it does not sound like speech: no-speech probability {no_speech:.2f}"
    backwards = transcript.reversed_avg_logprob
    if backwards is not None and backwards > logprob + thresholds.reversed_margin:
        return (
            f"it sounds like speech played backwards: log-probability {logprob:.2f}, "
            f"{backwards:.2f} reversed"
        )
    return None


def ensure_question(
    transcript: Transcript,
    source: str | Path | None,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> str:
    """The question in ``transcript``, or raise when there is none to answer.

    Args:
        transcript: What an engine heard.
        source: The audio file, named in the error.
        thresholds: The limits to apply.

    Returns:
        The question text, stripped.

    Raises:
        NotSpeechError: The audio is noise, music, reversed or unintelligible speech;
            the message names the file and says what to do.
    """
    reason = refusal_reason(transcript, thresholds)
    if reason is not None:
        raise NotSpeechError(source, reason, ADVICE)
    return transcript.text.strip()


def decode_with_reverse_check(
    samples: np.ndarray,
    language: str | None,
    decode: Callable[[np.ndarray, str | None], Transcript],
) -> Transcript:
    """Decode ``samples`` forward, and backwards too when the forward decoding is weak.

    Args:
        samples: 16 kHz mono float32 samples.
        language: the language code to decode in, or ``None`` to let the engine detect it.
        decode: one decoding by the engine, of samples in a language.

    Returns:
        The forward transcript, as ``with_reverse_check`` marks it; the backwards decoding
        uses the language the forward one heard.
    """
    heard = decode(samples, language)
    return with_reverse_check(heard, samples, lambda back: decode(back, heard.language or language))
