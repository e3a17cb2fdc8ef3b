"""Refusing audio that holds no question: noise, hum, music, reversed or garbled speech.

whisper transcribes almost anything into *some* text: reversed speech came back as "See you
soon." and white noise as ". . . .". The decision uses whisper's own per-segment signals
(as its ``transcribe`` uses them to drop silent windows and retry failed decodings, see
openai-whisper ``transcribe.py``: ``no_speech_threshold``, ``logprob_threshold``,
``compression_ratio_threshold``) plus the transcript itself:

- no words at all (only dots, dashes, "[Music]" style tags) -> refused;
- speech-weighted mean ``avg_logprob`` below ``min_avg_logprob`` -> refused (unintelligible:
  the decoder was guessing);
- the most confident-of-silence segment says "no speech" (``no_speech_prob`` above
  ``max_no_speech_prob``) while the decoding is also weak -> refused;
- ``compression_ratio`` above ``max_compression_ratio`` (a hallucination loop) -> refused.

The thresholds were chosen on a labelled set of clips (``bench/voice.py --refusal``; the
confusion table is in bench/README.md) so that every clear question at normal volume passes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from adapters.asr.base import NotSpeechError, Transcript

ADVICE = "record it again closer to the microphone, in a quiet room, and speak the question"
# Tags whisper writes for non-speech sounds, and bare punctuation.
_NON_SPEECH_TAG = re.compile(r"[\[(][^\])]*[\])]|♪+")


@dataclass(frozen=True)
class Thresholds:
    """Limits on whisper's signals; a transcript outside any of them is refused.

    Attributes:
        min_avg_logprob: Lowest acceptable speech-weighted mean token log-probability.
        max_no_speech_prob: Highest acceptable no-speech probability when ``avg_logprob``
            is also below ``weak_avg_logprob``.
        weak_avg_logprob: Below this, a high no-speech probability refuses.
        max_compression_ratio: Highest acceptable gzip compression ratio of a segment.
        min_words: Fewest words a question may have.
    """

    min_avg_logprob: float = -0.8
    max_no_speech_prob: float = 0.6
    weak_avg_logprob: float = -0.5
    max_compression_ratio: float = 2.4
    min_words: int = 1


DEFAULT_THRESHOLDS = Thresholds()


def spoken_words(text: str) -> list[str]:
    """The words in ``text`` without non-speech tags; each Han character counts as a word.

    Args:
        text: A transcript.

    Returns:
        Words (Latin letters/digits runs, or single CJK characters).
    """
    cleaned = _NON_SPEECH_TAG.sub(" ", text)
    return re.findall(r"[^\W_]+", cleaned.replace("'", ""), flags=re.UNICODE)


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
    words = spoken_words(transcript.text)
    if len(words) < thresholds.min_words or not transcript.segments:
        return "no words were heard"
    segments = transcript.segments
    weights = [max(s.end - s.start, 0.01) for s in segments]
    logprob = sum(w * s.avg_logprob for w, s in zip(weights, segments, strict=True)) / sum(weights)
    no_speech = max(s.no_speech_prob for s in segments)
    ratio = max(s.compression_ratio for s in segments)
    if ratio > thresholds.max_compression_ratio:
        return f"the transcript repeats itself: compression ratio {ratio:.1f}"
    if logprob < thresholds.min_avg_logprob:
        return f"the speech is unintelligible: mean log-probability {logprob:.2f}"
    if no_speech > thresholds.max_no_speech_prob and logprob < thresholds.weak_avg_logprob:
        return f"it does not sound like speech: no-speech probability {no_speech:.2f}"
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
