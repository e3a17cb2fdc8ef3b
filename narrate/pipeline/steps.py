"""The pipeline's steps as plain functions: each builds its adapter from settings and calls it.

Prefect tasks (``tasks/``) wrap these one-to-one; the CLI's direct engine calls them without
Prefect. Adapters are built once per process and settings (they may hold loaded models), also when
several threads ask at once; a Dask worker process builds each once for all its tasks.
Nothing here imports Prefect, so a one-image CLI run does not pay for it.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from adapters import registry
from adapters.asr.base import Transcriber, Transcript
from adapters.features.base import DominantColour, FeatureExtractor, ImageFeatures
from adapters.files import file_sha256, source_digest
from adapters.llm.base import Describer, Description, DescriptionRequest
from adapters.ocr.base import OcrEngine, OcrResult, WordBox
from adapters.tts.base import SpeechResult
from adapters.tts.streaming import StreamedSpeech
from narrate.config.settings import (
    ASRSettings,
    CacheSettings,
    LLMSettings,
    OCRSettings,
    Settings,
    TTSSettings,
    load_settings,
)
from narrate.ops import metrics
from narrate.ops.cache import NullCache, ResponseCache, canonical_json, open_cache
from narrate.ops.metrics import time_stage
from narrate.pipeline.results import to_jsonable

if TYPE_CHECKING:
    from adapters.tts.voices import ScriptVoices

log = logging.getLogger("narrate.pipeline.steps")
T = TypeVar("T")
STEP_CACHE_TTL_S = 7 * 24 * 3600.0  # OCR and features of an image's bytes, kept a week


def _built_once(build: Callable[..., T]) -> Callable[..., T]:
    """``build`` cached per process and arguments, and never run twice for the same ones.

    ``functools.cache`` alone lets two threads that ask at the same moment (the first images
    of a batch) both build: two OCR engines, each loading its models.
    """
    cached = functools.cache(build)
    lock = threading.Lock()

    @functools.wraps(build)
    def get(*args: Any) -> T:
        with lock:
            return cached(*args)

    get.cache_info = cached.cache_info  # type: ignore[attr-defined]
    return get


def cpu_share() -> int:
    """The cores this process's CPU-bound steps may use: ``NARRATE_CPU_SLOTS``, else all.

    Read from this process's own environment (``Settings.cpu_slots``): the Dask worker
    processes of a local cluster are started with their share of the cores. The settings
    are read (and a bad value named) only when the variable is set: a single ``describe``
    builds its OCR engine on its critical path, and reading them all again costs ~20 ms.
    """
    if any(name.upper() == "NARRATE_CPU_SLOTS" for name in os.environ):
        return load_settings().cpu_slots or os.cpu_count() or 1
    return os.cpu_count() or 1


@_built_once
def _ocr_engine(
    name: str,
    threads: int,
    deskew: bool,
    timeout_s: float,
    max_pixels: int,
    min_confidence: float | None,
) -> OcrEngine:
    kwargs: dict[str, Any] = {"timeout_s": timeout_s, "max_pixels": max_pixels}
    if name != "rapidocr":  # the tesseract knobs
        kwargs.update(threads=threads, deskew=deskew)
    # RapidOCR reads one image at a time per engine, on this process's share of the cores:
    # two Dask worker processes each spinning a pool over every core cost CPU for nothing.
    if name == "rapidocr":
        kwargs["threads"] = cpu_share()
    elif name == "auto":
        kwargs["rapidocr_threads"] = cpu_share()
    if min_confidence is not None:
        kwargs["min_confidence"] = min_confidence
    return registry.load("ocr", name, **kwargs)


@_built_once
def _feature_extractor(max_pixels: int) -> FeatureExtractor:
    return registry.load("features", "numpy", max_pixels=max_pixels)


def _synthesizer(tts: TTSSettings) -> ScriptVoices:
    """The speaker for ``tts``: each script run in a voice of its own (see adapters.tts.voices)."""
    return _script_voices(tts.engine, tts.rate_wpm, tts.voice_en, tts.voice_zh)


@_built_once
def _script_voices(engine: str, rate_wpm: int, voice_en: str, voice_zh: str) -> ScriptVoices:
    from adapters.tts.voices import build_script_voices

    return build_script_voices(engine, rate_wpm, voice_en, voice_zh)


def check_voices(tts: TTSSettings) -> None:
    """Start the speech engines and check the configured voices now, before any image is read.

    A wrong voice otherwise surfaces at the last step, after OCR and the LLM ran (and were
    paid for). The engines are built once per process, so the TTS step reuses them: ~30 ms
    for espeak-ng here, which the step would spend anyway.

    Raises:
        ConfigError: a speech engine or a configured voice (``NARRATE_TTS_VOICE_EN`` /
            ``_ZH``) is missing; the message lists voices that exist.
    """
    _synthesizer(tts).warm_up()


def build_describer(llm: LLMSettings) -> Describer:
    """The describer the LLM settings ask for (see ``narrate.ops.llm``), built once."""
    from narrate.ops.llm import build_describer as build

    return build(llm)


def warm_up(
    image_path: Path, llm: LLMSettings, tts: TTSSettings, *, max_pixels: int = 120_000_000
) -> Callable[[], None]:
    """Ready the steps after OCR; return the part to run beside OCR, on a second thread.

    For one image in a fresh process (``narrate describe``). Here, in the caller's thread:
    build the describer, start the speech engines and the metrics, decode the image for the
    features: everything that imports modules, since importing on two threads at once can
    hand one of them a half-initialised module (Python 3.11). The returned function
    measures the features that do not need the text (numpy only) while OCR runs, mostly
    waiting for the tesseract process; the features step finishes from it. A failure here
    is left for the step itself to report.
    """
    background: Callable[[], None] = _nothing
    extractor = _feature_extractor(max_pixels)
    prefetch = getattr(extractor, "prefetch", None)
    jobs: list[tuple[str, Callable[[], object]]] = [
        ("llm", lambda: build_describer(llm)),
        ("tts", lambda: _synthesizer(tts).warm_up()),
        ("metrics", metrics.enabled),  # prometheus_client, imported on first use
    ]
    for step, job in jobs:
        try:
            job()
        except Exception as exc:  # the step itself will fail with the proper error
            log.debug("warming up the %s step failed: %s", step, exc)
    if prefetch is not None:
        background = prefetch(Path(image_path))
    return background


def _nothing() -> None:
    return None


def ready_ocr(
    ocr: OCRSettings, *, max_pixels: int = 120_000_000, cache: CacheSettings | None = None
) -> None:
    """Import, here in the caller's thread, what ``run_ocr`` needs, so it can run on another.

    Builds the OCR engine (its module imports numpy, OpenCV, Pillow, pytesseract), loads
    Pillow's common file-format plugins (``Image.open`` would on first use), builds the
    metrics (``time_stage`` does on first use, under a lock) and opens the step cache's
    store when ``cache`` is given and not ``off``. An engine that loads more on
    first use (RapidOCR's models, when ``auto`` is unsure) still imports on the OCR thread;
    ``narrate.pipeline.sequence`` holds other threads' imports back while it imports.
    A failure here is left for ``run_ocr`` to report.
    """
    from PIL import Image

    try:
        _ocr_engine(
            ocr.engine, ocr.threads, ocr.deskew, ocr.timeout_s, max_pixels, ocr.min_confidence
        )
        Image.preinit()
        metrics.enabled()  # built under a lock that the warm-up takes too: built here first
        if cache is not None and cache.resolved_backend != "off":
            _step_store(cache.resolved_backend, str(cache.path), cache.redis_url)
    except Exception as exc:  # the step itself will fail with the proper error
        log.debug("readying the ocr step failed: %s", exc)


def ready_process(settings: Settings) -> list[str]:
    """Build every step's adapter for ``settings`` now and load the OCR engine's models.

    For a process that will run many images, started ahead of them (a long-lived Dask
    worker, ``flows.dask_preload``): what the first image would otherwise pay (imports,
    RapidOCR's ONNX sessions, the speech engines, the describer's HTTP client) is paid here.
    Adapters are cached per process and settings, so the tasks reuse these only when they
    carry the same settings (the flow's process and the worker read the same environment).

    Returns:
        One line per step that could not be readied (``"tts: <reason>"``); the step itself
        reports the error when a task runs it. Empty when all are ready.
    """
    failed: list[str] = []
    ocr = settings.ocr
    pixels = settings.max_image_pixels

    def ocr_models() -> None:
        engine = _ocr_engine(
            ocr.engine, ocr.threads, ocr.deskew, ocr.timeout_s, pixels, ocr.min_confidence
        )
        warm = getattr(engine, "warm_up", None)  # engines with models (RapidOCR, auto)
        if warm is not None:
            warm()

    jobs: list[tuple[str, Callable[[], object]]] = [
        ("ocr", lambda: ready_ocr(ocr, max_pixels=pixels)),
        ("ocr", ocr_models),
        ("features", lambda: _feature_extractor(pixels)),
        ("llm", lambda: build_describer(settings.llm)),
        ("tts", lambda: _synthesizer(settings.tts).warm_up()),
    ]
    for step, job in jobs:
        try:
            job()
        except Exception as exc:
            failed.append(f"{step}: {exc}")
    return failed


def run_ocr(
    image_path: Path, language: str, ocr: OCRSettings, *, max_pixels: int = 120_000_000
) -> OcrResult:
    """Read the text in ``image_path`` (language ``auto``, ``en`` or ``zh``)."""
    engine = _ocr_engine(
        ocr.engine, ocr.threads, ocr.deskew, ocr.timeout_s, max_pixels, ocr.min_confidence
    )
    with time_stage("ocr"):
        return engine.recognize(Path(image_path), language=language)  # type: ignore[arg-type]


def run_features(
    image_path: Path, boxes: Sequence[WordBox] = (), *, max_pixels: int = 120_000_000
) -> ImageFeatures:
    """Measure the image; the OCR word boxes give its text coverage."""
    with time_stage("features"):
        return _feature_extractor(max_pixels).extract(Path(image_path), tuple(boxes))


def features_facts(features: ImageFeatures) -> dict[str, Any]:
    """The features as a plain dict for prompts and JSON, without the long vector."""
    facts = dataclasses.asdict(features)
    facts.pop("vector", None)
    return facts


def description_request(
    ocr: OcrResult,
    features: ImageFeatures,
    *,
    question: str | None = None,
    image_path: Path | None = None,
) -> DescriptionRequest:
    """What the describer gets: the image's text, its language and its features."""
    return DescriptionRequest(
        ocr_text=ocr.text,
        language=ocr.language,
        features_summary=features.summary,
        question=question,
        image_path=image_path,
        facts=features_facts(features),
    )


def run_llm(
    ocr: OcrResult,
    features: ImageFeatures,
    llm: LLMSettings,
    *,
    question: str | None = None,
    image_path: Path | None = None,
) -> Description:
    """Describe the image (or answer ``question`` about it) from its text and features."""
    request = description_request(ocr, features, question=question, image_path=image_path)
    with time_stage("llm"):
        return build_describer(llm).describe(request)


def run_tts(text: str, out_path: Path, language: str, tts: TTSSettings) -> SpeechResult:
    """Speak ``text`` into the WAV file ``out_path``."""
    with time_stage("tts"):
        return _synthesizer(tts).synthesize(text, Path(out_path), language=language)


@_built_once
def _transcriber(engine: str, model: str, language: str | None) -> Transcriber:
    return registry.load("asr", engine, model=model, language=language)


def run_asr(audio_path: Path, asr: ASRSettings) -> Transcript:
    """Transcribe a spoken question with whisper."""
    with time_stage("asr"):
        return _transcriber(asr.engine, asr.model, asr.language).transcribe(Path(audio_path))


def run_llm_tts(
    ocr: OcrResult,
    features: ImageFeatures,
    llm: LLMSettings,
    tts: TTSSettings,
    out_path: Path,
    *,
    question: str | None = None,
    image_path: Path | None = None,
) -> tuple[Description, StreamedSpeech]:
    """Write the answer and speak each sentence as soon as it is complete (one WAV at the end).

    With ``NARRATE_LLM_STREAM=1`` the model's deltas arrive as it writes, so the first
    sentence is being spoken while the rest is still coming.
    """
    from adapters.tts.streaming import StreamingSpeaker

    synthesizer = _synthesizer(tts)
    speaker = StreamingSpeaker(
        lambda text, path, language: synthesizer.synthesize(text, path, language=language),
        Path(out_path),
        ocr.language,
    )
    request = description_request(ocr, features, question=question, image_path=image_path)
    with time_stage("llm"):  # sentences are being spoken meanwhile
        description = build_describer(llm).describe(request, speaker.on_delta)
    with time_stage("tts"):  # the speech still to make once the text is complete
        spoken = speaker.finish(description.text)
    return description, spoken


# -- content cache for the deterministic steps (the direct engine; Prefect tasks have theirs)


@functools.cache
def _step_store(backend: str, path: str, redis_url: str | None) -> ResponseCache:
    return open_cache(CacheSettings(backend=backend, path=Path(path), redis_url=redis_url))


def _fingerprint(value: Any) -> Any:
    """``value`` as JSON types; settings objects as their fields."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [_fingerprint(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _fingerprint(v) for k, v in value.items()}
    return to_jsonable(value)


@functools.cache
def code_version() -> str:
    """The adapters' code: ``source_digest`` of the ``adapters`` package, once per process.

    Part of every step cache key (this module's and the Prefect tasks'): a result cached by
    older code (before an OCR fix, say) is not served for the week the cache keeps it.
    ~1.5 ms to read the package's ~50 files.
    """
    import adapters

    return source_digest(Path(adapters.__file__).parent)


def content_cached(
    kind: str, step: Callable[..., T], decode: Callable[[dict[str, Any]], T], cache: CacheSettings
) -> Callable[..., T]:
    """``step`` (whose first argument is a file) with its results cached by content.

    The key is the file's bytes, the other arguments and the adapters' code
    (``code_version``); entries live in the response cache's store for a week. A renamed
    copy of an image is a hit; a changed image, setting or OCR code is a miss.
    ``NARRATE_CACHE_BACKEND=off`` turns it off.
    """

    def cached(path: Path, *args: Any, **kwargs: Any) -> T:
        store = _step_store(cache.resolved_backend, str(cache.path), cache.redis_url)
        digest = file_sha256(path)
        if digest is None or isinstance(store, NullCache):
            return step(path, *args, **kwargs)
        others = canonical_json([_fingerprint(args), _fingerprint(kwargs)])
        arguments = hashlib.sha256(others).hexdigest()[:32]
        key = f"narrate:step:{kind}:{code_version()}:{digest}:{arguments}"
        stored = store.get(key)
        if stored is not None:
            try:
                return decode(stored)
            except (KeyError, TypeError, ValueError) as exc:  # written by another version
                log.info("ignoring a stale %s cache entry (%s)", kind, exc)
        value = step(path, *args, **kwargs)
        store.set(key, dataclasses.asdict(value), STEP_CACHE_TTL_S)  # type: ignore[call-overload]
        return value

    return cached


def ocr_result_from_dict(data: dict[str, Any]) -> OcrResult:
    """An ``OcrResult`` back from its JSON form."""
    return OcrResult(
        **{
            **data,
            "boxes": tuple(WordBox(**box) for box in data["boxes"]),
            "dropped": tuple(WordBox(**box) for box in data.get("dropped", ())),
            "image_size": tuple(data["image_size"]),
        }
    )


def features_from_dict(data: dict[str, Any]) -> ImageFeatures:
    """``ImageFeatures`` back from their JSON form."""
    return ImageFeatures(
        **{
            **data,
            "dominant_colours": tuple(DominantColour(**c) for c in data["dominant_colours"]),
            "vector": tuple(data["vector"]),
        }
    )
