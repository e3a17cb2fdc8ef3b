"""The image -> speech sequence, written once for both engines.

``describe_one`` runs OCR, then features and the description, then speech, given the four
step callables. The Prefect flow passes its tasks (so every step is a retryable task run in
the UI); the CLI's direct engine passes the plain functions of ``narrate.pipeline.steps`` and skips
Prefect's start-up. The order and the data handed between steps are therefore identical.
"""

from __future__ import annotations

import _imp
import contextlib
import functools
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from adapters.asr.base import Transcript
from adapters.errors import InputError
from adapters.features.base import ImageFeatures
from adapters.files import set_file_mode, write_json_atomic
from adapters.imaging import check_file
from adapters.llm.base import Description
from adapters.ocr.base import OcrResult, WordBox
from adapters.tts.base import SpeechResult
from adapters.tts.streaming import StreamedSpeech
from narrate.config.settings import (
    ASRSettings,
    CacheSettings,
    LLMSettings,
    OCRSettings,
    Settings,
    TTSSettings,
)
from narrate.pipeline.results import AnswerResult, DescribeResult, readable, to_jsonable

T = TypeVar("T")


class Pending(Protocol):
    """A step started in the background: a ``concurrent.futures.Future`` or a PrefectFuture."""

    def result(self) -> Any:
        """The step's return value, waiting for it; re-raises the step's exception."""
        ...


def _submit_in_thread(step: Callable[..., Any], *args: Any, **kwargs: Any) -> Pending:
    """Run ``step`` in a background thread (the direct engine's ``submit``)."""
    return _background().submit(step, *args, **kwargs)


@functools.cache
def _background() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="narrate-step")


class OcrStep(Protocol):
    """``narrate.pipeline.steps.run_ocr`` or a task made from it."""

    def __call__(
        self, image_path: Path, language: str, ocr: OCRSettings, *, max_pixels: int = ...
    ) -> OcrResult:
        """Run the step; see ``narrate.pipeline.steps.run_ocr`` for arguments and errors."""
        ...


class FeaturesStep(Protocol):
    """``narrate.pipeline.steps.run_features`` or a task made from it."""

    def __call__(
        self, image_path: Path, boxes: Sequence[WordBox] = ..., *, max_pixels: int = ...
    ) -> ImageFeatures:
        """Run the step; see ``narrate.pipeline.steps.run_features`` for arguments and errors."""
        ...


class LlmStep(Protocol):
    """``narrate.pipeline.steps.run_llm`` or a task made from it."""

    def __call__(
        self,
        ocr: OcrResult,
        features: ImageFeatures,
        llm: LLMSettings,
        *,
        question: str | None = ...,
        image_path: Path | None = ...,
    ) -> Description:
        """Run the step; see ``narrate.pipeline.steps.run_llm`` for arguments and errors."""
        ...


class TtsStep(Protocol):
    """``narrate.pipeline.steps.run_tts`` or a task made from it."""

    def __call__(self, text: str, out_path: Path, language: str, tts: TTSSettings) -> SpeechResult:
        """Run the step; see ``narrate.pipeline.steps.run_tts`` for arguments and errors."""
        ...


class AsrStep(Protocol):
    """``narrate.pipeline.steps.run_asr`` or a task made from it."""

    def __call__(self, audio_path: Path, asr: ASRSettings) -> Transcript:
        """Run the step; see ``narrate.pipeline.steps.run_asr`` for arguments and errors."""
        ...


class LlmTtsStep(Protocol):
    """``narrate.pipeline.steps.run_llm_tts`` or a task made from it."""

    def __call__(
        self,
        ocr: OcrResult,
        features: ImageFeatures,
        llm: LLMSettings,
        tts: TTSSettings,
        out_path: Path,
        *,
        question: str | None = ...,
        image_path: Path | None = ...,
    ) -> tuple[Description, StreamedSpeech]:
        """Run the step; see ``narrate.pipeline.steps.run_llm_tts`` for arguments and errors."""
        ...


class ReadyOcrStep(Protocol):
    """``narrate.pipeline.steps.ready_ocr`` (bound to the step cache's settings)."""

    def __call__(self, ocr: OCRSettings, *, max_pixels: int = ...) -> None:
        """Import what OCR needs on this thread; see ``narrate.pipeline.steps.ready_ocr``."""
        ...


class WarmUpStep(Protocol):
    """``narrate.pipeline.steps.warm_up``."""

    def __call__(
        self, image_path: Path, llm: LLMSettings, tts: TTSSettings, *, max_pixels: int = ...
    ) -> Callable[[], None]:
        """Ready the later steps; see ``narrate.pipeline.steps.warm_up``."""
        ...


@dataclass(frozen=True)
class Steps:
    """The step callables, one per step of the vocabulary (ocr, features, llm, tts, asr).

    ``llm_tts`` streams the answer and speaks each sentence as it comes (optional);
    ``warm_up`` readies the steps after OCR and returns work to run on a second thread while
    OCR runs (optional: a one-image run gains from it, a batch that already overlaps images
    does not);
    ``ready_ocr`` imports what OCR needs; given with ``warm_up``, OCR then runs on a worker
    thread while ``warm_up`` runs on the caller's;
    ``submit(step, *args)`` starts a step in the background and returns something with
    ``.result()``: a thread pool for plain functions, ``task.submit`` for Prefect tasks;
    ``cpu_slot`` (optional) is held around OCR and around features, so that only so many
    images use the cores at once (``narrate.pipeline.batch.cpu_slots``); the step timings
    leave the wait for it out (it is ``timings["cpu_wait_s"]``).
    """

    ocr: OcrStep
    features: FeaturesStep
    llm: LlmStep
    tts: TtsStep
    asr: AsrStep | None = None
    llm_tts: LlmTtsStep | None = None
    submit: Callable[..., Pending] = _submit_in_thread
    warm_up: WarmUpStep | None = None
    ready_ocr: ReadyOcrStep | None = None
    cpu_slot: contextlib.AbstractContextManager[Any] | None = None


def plain_steps(cache: CacheSettings | None = None, *, warm_up: bool = False) -> Steps:
    """The steps as plain functions (no Prefect).

    Args:
        cache: when given (and not ``off``), OCR and features are cached by the image's
            bytes in the response cache's store, as the Prefect tasks are.
        warm_up: read the image on a worker thread and meanwhile ready the later steps (for
            images described one at a time).

    Returns:
        The ``Steps`` of the direct engine.
    """
    from narrate.pipeline import steps

    ocr: OcrStep = steps.run_ocr
    features: FeaturesStep = steps.run_features
    if cache is not None and cache.resolved_backend != "off":
        ocr = steps.content_cached("ocr", steps.run_ocr, steps.ocr_result_from_dict, cache)
        features = steps.content_cached(
            "features", steps.run_features, steps.features_from_dict, cache
        )
    return Steps(
        ocr=ocr,
        features=features,
        llm=steps.run_llm,
        tts=steps.run_tts,
        asr=steps.run_asr,
        llm_tts=steps.run_llm_tts,
        warm_up=steps.warm_up if warm_up else None,
        ready_ocr=functools.partial(steps.ready_ocr, cache=cache) if warm_up else None,
    )


def output_paths(image_path: Path, out_dir: Path, stem: str | None = None) -> tuple[Path, Path]:
    """Where the WAV and the JSON for ``image_path`` go: ``<out>/<stem>.wav|.json``.

    ``stem`` overrides the image's own stem (the batch flow uses it to keep two images
    with the same name apart).
    """
    stem = readable(stem or Path(image_path).stem)  # a non-UTF-8 name gets a UTF-8 one
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
    check_file(image_path, max_bytes=settings.max_file_bytes)  # NARRATE_MAX_FILE_BYTES
    wav_path, json_path = output_paths(image_path, out_dir, stem)
    timings: dict[str, float] = {}

    warming = reading = None
    if steps.warm_up is not None:
        ocr_start = time.perf_counter()
        if steps.ready_ocr is not None:
            steps.ready_ocr(settings.ocr, max_pixels=settings.max_image_pixels)
        with _imports_held_back():
            if steps.ready_ocr is not None:
                reading = steps.submit(
                    steps.ocr, image_path, lang, settings.ocr, max_pixels=settings.max_image_pixels
                )
            start = time.perf_counter()
            beside_ocr = steps.warm_up(
                image_path, settings.llm, settings.tts, max_pixels=settings.max_image_pixels
            )
            warming = steps.submit(beside_ocr)
            timings["warm_up_s"] = time.perf_counter() - start

    if reading is not None:
        ocr = reading.result()  # re-raises OCR's own error, as the call below would
        timings["ocr_s"] = time.perf_counter() - ocr_start  # from its start, beside the warm-up
    else:
        ocr = _cpu_step(
            steps, timings, "ocr_s",
            lambda: steps.ocr(image_path, lang, settings.ocr, max_pixels=settings.max_image_pixels),
        )  # fmt: skip

    start = time.perf_counter()
    if warming is not None:
        warming.result()  # the features step finishes from it (it never raises)
    warm_s = time.perf_counter() - start
    features = _cpu_step(
        steps, timings, "features_s",
        lambda: steps.features(image_path, ocr.boxes, max_pixels=settings.max_image_pixels),
    )  # fmt: skip
    timings["features_s"] += warm_s

    start = time.perf_counter()
    description = steps.llm(ocr, features, settings.llm, image_path=image_path)
    timings["llm_s"] = time.perf_counter() - start

    start = time.perf_counter()
    speech = steps.tts(description.text, wav_path, description.language, settings.tts)
    timings["tts_s"] = time.perf_counter() - start

    result = DescribeResult(
        **_result_fields(image_path, ocr, features, description, speech, timings)
    )
    set_file_mode(result.audio_path, settings.output.file_mode)  # one mode for WAV + JSON
    write_json_atomic(json_path, result.to_dict(), mode=settings.output.file_mode)
    return result


def _cpu_step(steps: Steps, timings: dict[str, float], key: str, call: Callable[[], T]) -> T:
    """``call()`` in one of ``steps.cpu_slot`` when there is one; ``timings[key]`` its seconds.

    The wait for the slot is added to ``timings["cpu_wait_s"]`` instead: under load an image
    may wait seconds for a core, and its OCR time should still say how long OCR took.
    """
    if steps.cpu_slot is None:
        start = time.perf_counter()
        value = call()
        timings[key] = time.perf_counter() - start
        return value
    queued = time.perf_counter()
    with steps.cpu_slot:
        start = time.perf_counter()
        timings["cpu_wait_s"] = timings.get("cpu_wait_s", 0.0) + start - queued
        value = call()
        timings[key] = time.perf_counter() - start
    return value


@contextlib.contextmanager
def _imports_held_back() -> Iterator[None]:
    """Hold Python's global import lock: until the block ends, other threads cannot start an import.

    The warm-up imports the describer's, the voices' and the metrics' modules on this thread
    while OCR runs on a worker. Python 3.11's imports are not safe on two threads at once: a
    module being imported by one can reach the other half-initialised (cpython#83065; it
    happened here once). ``ready_ocr`` has imported what OCR uses, so the worker normally
    imports nothing; when it does (RapidOCR's models loaded on first use, a rare image
    format's Pillow plugin), the import waits for the block's end here instead of racing.
    Taking a lock every import takes briefly cannot deadlock the worker: a thread that holds
    it may import (the lock is reentrant) and the worker cannot be inside an import when the
    block starts, since it has not been started yet. Modules already imported are looked up
    without the lock.
    """
    _imp.acquire_lock()
    try:
        yield
    finally:
        _imp.release_lock()


def _result_fields(
    image_path: Path, ocr: Any, features: Any, description: Any, speech: Any, timings: dict
) -> dict[str, Any]:
    """The ``DescribeResult`` fields from the steps' results."""
    from narrate.pipeline.steps import features_facts

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
        "spoken_text": speech.text,  # the words the WAV says ($3.50 in words), also streamed
        "voices": tuple(
            dict.fromkeys(v for v in [r.voice for r in speech.runs] or [speech.voice] if v)
        ),
        "attempts": description.attempts,
        "truncated": description.truncated,
        "ttft_s": description.ttft_s,
        "endpoints_tried": description.endpoints_tried,
        "fallback_from": description.fallback_from,
        "cached": description.cached,
        "finish_reason": description.finish_reason,
        "filtered": description.filtered,
        "notice": description.notice,
        "requested_model": description.requested_model,
        "http_version": description.http_version,
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
    check_file(image_path, max_bytes=settings.max_file_bytes)  # NARRATE_MAX_FILE_BYTES
    stem = readable(image_path.stem)  # a non-UTF-8 name gets a UTF-8 one, as in describe_one
    wav_path, json_path = out_dir / f"{stem}.answer.wav", out_dir / f"{stem}.answer.json"
    timings: dict[str, float] = {}

    start = time.perf_counter()
    pending = None
    if question_audio is not None:
        if steps.asr is None:
            raise InputError(question_audio, "this engine cannot transcribe audio")
        pending = steps.submit(steps.asr, Path(question_audio), settings.asr)

    ocr = _cpu_step(
        steps, timings, "ocr_s",
        lambda: steps.ocr(image_path, lang, settings.ocr, max_pixels=settings.max_image_pixels),
    )  # fmt: skip
    features = _cpu_step(
        steps, timings, "features_s",
        lambda: steps.features(image_path, ocr.boxes, max_pixels=settings.max_image_pixels),
    )  # fmt: skip

    transcript = None
    if pending is not None:
        transcript = pending.result()
        timings["asr_s"] = time.perf_counter() - start  # ran beside OCR and features
        from adapters.asr.refusal import ensure_question  # numpy: not on describe's path

        question = ensure_question(transcript, question_audio)  # never answer noise
    else:
        question = str(question_text).strip()

    first_audio_s = None
    mark = time.perf_counter()
    if settings.llm.stream and steps.llm_tts is not None:
        answer, streamed = steps.llm_tts(
            ocr, features, settings.llm, settings.tts, wav_path,
            question=question, image_path=image_path,
        )  # fmt: skip
        speech, first_audio_s = streamed.speech, streamed.first_audio_s
        timings["llm_tts_s"] = time.perf_counter() - mark
    else:
        answer = steps.llm(ocr, features, settings.llm, question=question, image_path=image_path)
        timings["llm_s"] = time.perf_counter() - mark
        mark = time.perf_counter()
        speech = steps.tts(answer.text, wav_path, answer.language, settings.tts)
        timings["tts_s"] = time.perf_counter() - mark
        first_audio_s = timings["llm_s"] + timings["tts_s"]

    result = AnswerResult(
        **_result_fields(image_path, ocr, features, answer, speech, timings),
        question=question,
        answer=answer.text,
        question_source="audio" if question_audio is not None else "text",
        question_audio=Path(question_audio) if question_audio is not None else None,
        transcript_confidence=transcript.confidence if transcript is not None else None,
        first_audio_s=first_audio_s,
    )
    set_file_mode(result.audio_path, settings.output.file_mode)  # one mode for WAV + JSON
    write_json_atomic(json_path, result.to_dict(), mode=settings.output.file_mode)
    return result
