"""Speak an answer while it is still being written.

The describer's ``on_delta`` feeds ``StreamingSpeaker``: the text is cut into sentences as
they complete, and a background thread synthesises each one at once into a part WAV, so
the first audio exists long before the model has finished. ``finish`` joins the parts into
one WAV. If the final text is not what was spoken (a stream broke and another describer
answered from the start), the parts are dropped and the final text is spoken whole, so the
WAV always says exactly the answer.
"""

from __future__ import annotations

import queue
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from adapters.tts.base import SpeechResult
from adapters.tts.wav import concatenate_wavs

# A sentence ends at . ! ? ; (not inside a number such as 7.20) followed by a space or the
# end, or at Chinese 。！？； with nothing needed after them.
_BOUNDARY = re.compile(r"(?<!\d)[.!?;](?=\s)|(?<=\d)[.!?;](?=\s+\D)|[。！？；]")
MIN_SENTENCE_CHARS = 12  # shorter pieces wait for the next sentence: less choppy speech

Synthesize = Callable[[str, Path, str], SpeechResult]


class SentenceChunker:
    """Cuts streamed text into whole sentences."""

    def __init__(self, min_chars: int = MIN_SENTENCE_CHARS) -> None:
        self.min_chars = min_chars
        self.buffer = ""

    def feed(self, piece: str) -> list[str]:
        """Add ``piece``; return the sentences it completed (possibly none)."""
        self.buffer += piece
        sentences: list[str] = []
        start = 0
        for match in _BOUNDARY.finditer(self.buffer):
            end = match.end()
            candidate = self.buffer[start:end].strip()
            if _weight(candidate) >= self.min_chars:
                sentences.append(candidate)
                start = end
        self.buffer = self.buffer[start:]
        return sentences

    def flush(self) -> str | None:
        """Whatever is left once the text is complete."""
        rest, self.buffer = self.buffer.strip(), ""
        return rest or None


def _weight(text: str) -> int:
    """Length with each CJK character counted twice (one carries about a word)."""
    return len(text) + sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff")


def _normalise(text: str) -> str:
    return "".join(text.split())


@dataclass(frozen=True)
class StreamedSpeech:
    """The joined WAV and when its first part was ready."""

    speech: SpeechResult
    first_audio_s: float | None  # seconds from start() to the first part WAV
    parts: int
    respoken: bool  # the parts were dropped and the final text spoken whole


class StreamingSpeaker:
    """Synthesises sentences in the background as ``on_delta`` delivers text."""

    def __init__(self, synthesize: Synthesize, out_path: Path, language: str) -> None:
        self.synthesize = synthesize
        self.out_path = Path(out_path)
        self.language = language
        self.chunker = SentenceChunker()
        self.spoken: list[str] = []
        self.parts: list[Path] = []
        self.first_audio_s: float | None = None
        self.error: BaseException | None = None
        self._first_part: SpeechResult | None = None
        self._results: list[SpeechResult] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.out_path.parent.mkdir(parents=True, exist_ok=True)
        self._workdir = Path(tempfile.mkdtemp(prefix=".parts-", dir=self.out_path.parent))
        self._started = time.perf_counter()
        self._thread = threading.Thread(target=self._work, name="narrate-speak", daemon=True)
        self._thread.start()

    def on_delta(self, piece: str) -> None:
        """The describer's callback: queue every sentence the new text completes."""
        for sentence in self.chunker.feed(piece):
            self._queue.put(sentence)

    def _work(self) -> None:
        while (sentence := self._queue.get()) is not None:
            if self.error is not None:
                continue
            part = self._workdir / f"part{len(self.parts):04d}.wav"
            try:
                result = self.synthesize(sentence, part, self.language)
            except BaseException as exc:  # reported by finish(); the answer is respoken
                self.error = exc
                continue
            if self.first_audio_s is None:
                self.first_audio_s = time.perf_counter() - self._started
                self._first_part = result
            self._results.append(result)
            self.parts.append(part)
            self.spoken.append(sentence)

    def finish(self, final_text: str) -> StreamedSpeech:
        """Speak the rest, join the parts into ``out_path``; respeak if the text changed."""
        rest = self.chunker.flush()
        if rest:
            self._queue.put(rest)
        self._queue.put(None)
        self._thread.join()
        try:
            respoken = self.error is not None or _normalise(" ".join(self.spoken)) != _normalise(
                final_text
            )
            if respoken:
                speech = self.synthesize(final_text, self.out_path, self.language)
                if self.first_audio_s is None:
                    self.first_audio_s = time.perf_counter() - self._started
            else:
                info = concatenate_wavs(self.parts, self.out_path)
                assert self._first_part is not None  # parts exist: text was spoken
                speech = replace(
                    self._first_part,
                    path=self.out_path,
                    duration_s=info.duration_s,
                    sample_rate=info.sample_rate,
                    text=" ".join(r.text for r in self._results if r.text),
                    runs=tuple(run for r in self._results for run in r.runs),
                )
        finally:
            shutil.rmtree(self._workdir, ignore_errors=True)
        return StreamedSpeech(speech, self.first_audio_s, len(self.parts), respoken)
