"""The result objects flows return and the CLI writes as JSON."""

from __future__ import annotations

import codecs
import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _latin1_fallback(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return exc.object[exc.start : exc.end].decode("latin-1"), exc.end


codecs.register_error("narrate-latin1", _latin1_fallback)


def readable(text: str) -> str:
    """``text`` made writable as UTF-8: non-UTF-8 bytes of a file name are read as Latin-1.

    Linux hands Python such bytes as lone surrogates (``surrogateescape``), which no UTF-8
    file, JSON or terminal accepts: ``re\udce7u_caf\udce9`` (a Latin-1 name from an old zip)
    becomes ``reçu_café``. Valid UTF-8 is left as it is.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(text).decode("utf-8", errors="narrate-latin1")
    return text


def on_disk(path: str | Path) -> Path:
    r"""The file ``path`` names, also when it is given by its ``readable`` name.

    A Prefect flow's parameters travel as JSON, so a non-UTF-8 file name reaches a flow as
    ``readable`` made it (``reçu_café.png`` for the Latin-1 bytes ``re\xe7u_caf\xe9.png``).
    Each part of ``path`` that does not exist is looked up among its folder's entries by
    readable name. Returns ``path`` unchanged when it exists or nothing matches (the loader
    then says "file not found").
    """
    path = Path(path)
    if os.path.lexists(path):
        return path
    found = Path(path.anchor)
    for part in path.parts[1:] if path.anchor else path.parts:
        candidate = found / part
        if not os.path.lexists(candidate):
            try:
                names = [n for n in os.listdir(found) if readable(n) == part]
            except OSError:
                return path
            if len(names) != 1:
                return path
            candidate = found / names[0]
        found = candidate
    return found


def to_jsonable(value: Any) -> Any:
    """Turn dataclasses, paths and tuples into plain JSON types, recursively.

    Paths and strings that came from non-UTF-8 file names are made readable (``readable``).
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Path):
        return readable(str(value))
    if isinstance(value, str):
        return readable(value)
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, float):
        return round(value, 6)
    return value


@dataclass(frozen=True)
class DescribeResult:
    """What ``image_to_speech`` produced for one image."""

    image_path: Path
    description: str
    ocr_text: str
    ocr_confidence: float
    language: str
    features: dict[str, Any]
    audio_path: Path
    backend: str  # "openai" | "offline"
    model: str
    endpoint: str
    usage: dict[str, int] | None = field(default_factory=dict)  # None: the server sent none
    timings: dict[str, float] = field(default_factory=dict)  # stage -> seconds
    audio_duration_s: float = 0.0
    # What the WAV says: the TTS adapter's text (``SpeechResult.text``), which may differ
    # from ``description`` (Markdown marks, emoji and control characters removed; prices
    # and clock times in words, as spoken: "$3.50" -> "three dollars and fifty cents").
    spoken_text: str = ""
    # The TTS voices that spoke it, in the order first used ("gmw/en-us", "sit/cmn-latn-pinyin"
    # for an English description quoting Chinese text): one per script run's language.
    voices: tuple[str, ...] = ()
    attempts: int = 1  # HTTP attempts the description took (retries, failovers, fallbacks)
    truncated: bool = False
    ttft_s: float | None = None  # time to the first token, when the answer was streamed
    endpoints_tried: tuple[str, ...] = ()
    fallback_from: tuple[str, ...] = ()  # models that failed before the one that answered
    cached: bool = False  # the LLM answer came from the response cache
    # What the LLM server said (issue 13): a withheld or cut answer is marked and announced.
    finish_reason: str = "stop"
    filtered: bool = False  # the server withheld the rest (finish_reason says why)
    notice: str | None = None  # the sentence ending ``description`` for a cut/withheld answer
    requested_model: str = ""  # the model asked for; ``model`` is the one that answered
    http_version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON types."""
        return to_jsonable(self)

    def to_json(self, **kwargs: Any) -> str:
        """The result as a JSON string."""
        return json.dumps(self.to_dict(), ensure_ascii=False, **kwargs)


@dataclass(frozen=True)
class AnswerResult(DescribeResult):
    """What ``voice_qa`` produced: the question, the spoken answer, and the image's facts.

    ``description`` holds the answer too, so code written for ``DescribeResult`` still works.
    """

    question: str = ""
    answer: str = ""
    question_source: str = "text"  # "text" | "audio"
    question_audio: Path | None = None
    transcript_confidence: float | None = None
    first_audio_s: float | None = None  # seconds from the answer's start to its first audio
