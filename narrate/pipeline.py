"""The image -> speech sequence, written once for both engines.

``describe_one`` runs OCR, then features and the description, then speech, given the four
step callables. The Prefect flow passes its tasks (so every step is a retryable task run in
the UI); the CLI's direct engine passes the plain functions of ``narrate.stages`` and skips
Prefect's start-up. The order and the data handed between steps are therefore identical.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from narrate.errors import InputError
from narrate.results import AnswerResult, DescribeResult, to_jsonable, write_json_atomic
from narrate.settings import CacheSettings, Settings


class Pending(Protocol):
    """A step started in the background: a ``concurrent.futures.Future`` or a PrefectFuture."""

    def result(self) -> Any: ...


def _submit_in_thread(step: Callable[..., Any], *args: Any, **kwargs: Any) -> Pending:
    """Run ``step`` in a background thread (the direct engine's ``submit``)."""
    return _background().submit(step, *args, **kwargs)


@functools.cache
def _background() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="narrate-step")


@dataclass(frozen=True)
class Steps:
    """The step callables, with the signatures of ``narrate.stages``.

    ``submit(step, *args)`` starts a step in the background and returns something with
    ``.result()``: a thread pool for plain functions, ``task.submit`` for Prefect tasks.
    """

    ocr: Callable[..., Any]
    features: Callable[..., Any]
    describe: Callable[..., Any]
    speak: Callable[..., Any]
    transcribe: Callable[..., Any] | None = None
    answer_aloud: Callable[..., Any] | None = None  # stream the answer, speaking as it comes
    submit: Callable[..., Pending] = _submit_in_thread


def plain_steps(cache: CacheSettings | None = None) -> Steps:
    """The steps as plain functions (no Prefect); with ``cache``, OCR and features are
    cached by the image's bytes, as the Prefect tasks are."""
    from narrate import stages

    ocr, features = stages.run_ocr, stages.run_features
    if cache is not None and cache.resolved_backend != "off":
        ocr = stages.content_cached("ocr", ocr, stages.ocr_result_from_dict, cache)
        features = stages.content_cached("features", features, stages.features_from_dict, cache)
    return Steps(
        ocr=ocr,
        features=features,
        describe=stages.run_describe,
        speak=stages.run_speech,
        transcribe=stages.run_transcribe,
        answer_aloud=stages.run_answer_aloud,
    )


def output_paths(image_path: Path, out_dir: Path, stem: str | None = None) -> tuple[Path, Path]:
    """Where the WAV and the JSON for ``image_path`` go: ``<out>/<stem>.wav|.json``.

    ``stem`` overrides the image's own stem (the batch flow uses it to keep two images
    with the same name apart).
    """
    stem = stem or Path(image_path).stem
    return out_dir / f"{stem}.wav", out_dir / f"{stem}.json"


def describe_one(
    image_path: Path,
    *,
    out_dir: Path,
    lang: str,
    settings: Settings,
    steps: Steps,
    stem: str | None = None,
) -> DescribeResult:
    """Turn one image into a description and a WAV file; write ``<stem>.json`` beside it.

    ``stem`` names the outputs (default: the image's stem).
    """
    image_path = Path(image_path)
    wav_path, json_path = output_paths(image_path, out_dir, stem)
    timings: dict[str, float] = {}

    start = time.perf_counter()
    ocr = steps.ocr(image_path, lang, settings.ocr, max_pixels=settings.max_image_pixels)
    timings["ocr"] = time.perf_counter() - start

    start = time.perf_counter()
    features = steps.features(image_path, ocr.boxes, max_pixels=settings.max_image_pixels)
    timings["features"] = time.perf_counter() - start

    start = time.perf_counter()
    description = steps.describe(ocr, features, settings.llm, image_path=image_path)
    timings["describe"] = time.perf_counter() - start

    start = time.perf_counter()
    speech = steps.speak(description.text, wav_path, description.language, settings.tts)
    timings["speech"] = time.perf_counter() - start

    result = DescribeResult(
        **_result_fields(image_path, ocr, features, description, speech, timings)
    )
    write_json_atomic(json_path, result.to_dict())
    return result


def _result_fields(
    image_path: Path, ocr: Any, features: Any, description: Any, speech: Any, timings: dict
) -> dict[str, Any]:
    """The ``DescribeResult`` fields from the steps' results."""
    from narrate.stages import features_facts

    return {
        "image_path": image_path,
        "description": description.text,
        "ocr_text": ocr.text,
        "ocr_confidence": ocr.confidence,
        "language": description.language,
        "features": features_facts(features),
        "audio_path": speech.path,
        "backend": description.backend,
        "model": description.model,
        "endpoint": description.endpoint,
        "usage": to_jsonable(description.usage),
        "timings": timings,
        "audio_duration_s": speech.duration_s,
        "attempts": description.attempts,
        "truncated": description.truncated,
        "ttft_s": description.ttft_s,
        "endpoints_tried": description.endpoints_tried,
        "fallback_from": description.fallback_from,
        "cached": description.cached,
    }


def answer_one(
    image_path: Path,
    *,
    question_text: str | None = None,
    question_audio: Path | None = None,
    out_dir: Path,
    lang: str,
    settings: Settings,
    steps: Steps,
) -> AnswerResult:
    """Answer a question about an image aloud: ``<out>/<stem>.answer.wav`` and ``.answer.json``.

    A spoken question is transcribed in the background while OCR and then the features
    (which need OCR's word boxes) run; the answer is written, then spoken.
    """

    if (question_text is None) == (question_audio is None):
        raise InputError(None, "give exactly one question: as text or as an audio file")
    if question_text is not None and not question_text.strip():
        raise InputError(None, "the question is empty")
    image_path = Path(image_path)
    stem = image_path.stem
    wav_path, json_path = out_dir / f"{stem}.answer.wav", out_dir / f"{stem}.answer.json"
    timings: dict[str, float] = {}

    start = time.perf_counter()
    pending = None
    if question_audio is not None:
        if steps.transcribe is None:
            raise InputError(question_audio, "this engine cannot transcribe audio")
        pending = steps.submit(steps.transcribe, Path(question_audio), settings.asr)

    ocr = steps.ocr(image_path, lang, settings.ocr, max_pixels=settings.max_image_pixels)
    timings["ocr"] = time.perf_counter() - start
    mark = time.perf_counter()
    features = steps.features(image_path, ocr.boxes, max_pixels=settings.max_image_pixels)
    timings["features"] = time.perf_counter() - mark

    transcript = None
    if pending is not None:
        transcript = pending.result()
        timings["transcribe"] = time.perf_counter() - start  # ran beside OCR and features
        question = transcript.text.strip()
        if not question:
            raise InputError(question_audio, "no speech was recognised in the question audio")
    else:
        question = str(question_text).strip()

    first_audio_s = None
    mark = time.perf_counter()
    if settings.llm.stream and steps.answer_aloud is not None:
        answer, streamed = steps.answer_aloud(
            ocr, features, settings.llm, settings.tts, wav_path,
            question=question, image_path=image_path,
        )  # fmt: skip
        speech, first_audio_s = streamed.speech, streamed.first_audio_s
        timings["answer+speech"] = time.perf_counter() - mark
    else:
        answer = steps.describe(
            ocr, features, settings.llm, question=question, image_path=image_path
        )
        timings["answer"] = time.perf_counter() - mark
        mark = time.perf_counter()
        speech = steps.speak(answer.text, wav_path, answer.language, settings.tts)
        timings["speech"] = time.perf_counter() - mark
        first_audio_s = timings["answer"] + timings["speech"]

    result = AnswerResult(
        **_result_fields(image_path, ocr, features, answer, speech, timings),
        question=question,
        answer=answer.text,
        question_source="audio" if question_audio is not None else "text",
        question_audio=Path(question_audio) if question_audio is not None else None,
        transcript_confidence=transcript.confidence if transcript is not None else None,
        first_audio_s=first_audio_s,
    )
    write_json_atomic(json_path, result.to_dict())
    return result
