"""The image -> speech sequence, written once for both engines.

``describe_one`` runs OCR, then features and the description, then speech, given the four
step callables. The Prefect flow passes its tasks (so every step is a retryable task run in
the UI); the CLI's direct engine passes the plain functions of ``narrate.stages`` and skips
Prefect's start-up. The order and the data handed between steps are therefore identical.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from narrate.results import DescribeResult, to_jsonable, write_json_atomic
from narrate.settings import Settings


@dataclass(frozen=True)
class Steps:
    """The four step callables, with the signatures of ``narrate.stages``."""

    ocr: Callable[..., Any]
    features: Callable[..., Any]
    describe: Callable[..., Any]
    speak: Callable[..., Any]


def plain_steps() -> Steps:
    """The steps as plain functions (no Prefect)."""
    from narrate import stages

    return Steps(stages.run_ocr, stages.run_features, stages.run_describe, stages.run_speech)


def output_paths(image_path: Path, out_dir: Path) -> tuple[Path, Path]:
    """Where the WAV and the JSON for ``image_path`` go: ``<out>/<stem>.wav|.json``."""
    stem = Path(image_path).stem
    return out_dir / f"{stem}.wav", out_dir / f"{stem}.json"


def describe_one(
    image_path: Path,
    *,
    out_dir: Path,
    lang: str,
    settings: Settings,
    steps: Steps,
) -> DescribeResult:
    """Turn one image into a description and a WAV file; write ``<stem>.json`` beside it."""
    from narrate.stages import features_facts

    image_path = Path(image_path)
    wav_path, json_path = output_paths(image_path, out_dir)
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
        image_path=image_path,
        description=description.text,
        ocr_text=ocr.text,
        ocr_confidence=ocr.confidence,
        language=description.language,
        features=features_facts(features),
        audio_path=speech.path,
        backend=description.backend,
        model=description.model,
        endpoint=description.endpoint,
        usage=to_jsonable(description.usage),
        timings=timings,
        audio_duration_s=speech.duration_s,
        attempts=description.attempts,
        truncated=description.truncated,
    )
    write_json_atomic(json_path, result.to_dict())
    return result
