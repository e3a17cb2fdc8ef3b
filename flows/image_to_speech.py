"""Flow ``image_to_speech``: OCR -> features -> description -> speech for one image.

Run it from Python (``image_to_speech("assets/samples/receipt_en.png")``), from the Prefect UI
(a deployment in prefect.yaml), or as a script: ``python -m flows.image_to_speech IMAGE``.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

from prefect import flow

from flows._outcome import BAD_INPUT, bad_input, completed, describe_run_name, opening
from flows._setup import flow_settings
from flows.artifacts import publish_artifacts
from narrate.pipeline.results import DescribeResult, on_disk
from narrate.pipeline.sequence import Steps, describe_one
from tasks.features import features_task
from tasks.llm import llm_task
from tasks.ocr import ocr_task
from tasks.tts import tts_task

PREFECT_STEPS = Steps(ocr=ocr_task, features=features_task, llm=llm_task, tts=tts_task)


class TaskCacheWatch:
    """Calls a task and notes whether Prefect's task cache answered it (state ``Cached``)."""

    def __init__(self, task: Any) -> None:
        """Wrap ``task`` (a Prefect task with a cache policy)."""
        self.task = task
        self.hit = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the task; its result, or its exception raised."""
        state = self.task(*args, return_state=True, **kwargs)
        self.hit = state.name == "Cached"
        return state.result()


def watched(steps: Steps) -> tuple[Steps, dict[str, TaskCacheWatch]]:
    """``steps`` with OCR and features watched for task-cache hits (one set per flow run)."""
    watches = {"ocr": TaskCacheWatch(steps.ocr), "features": TaskCacheWatch(steps.features)}
    return dataclasses.replace(steps, ocr=watches["ocr"], features=watches["features"]), watches


def spoken_opening(result: DescribeResult, text: str) -> str:
    """The state message: the opening of what was spoken, marked when it was cut or withheld."""
    mark = "(withheld in part) " if result.filtered else "(cut short) " if result.truncated else ""
    return mark + opening(text)


ResultT = TypeVar("ResultT", bound=DescribeResult)


def run_watched(
    run: Callable[..., ResultT],
    steps: Steps,
    image_path: Path,
    out_dir: Path | None,
    lang: str,
    spoken: Callable[[ResultT], str],
    **options: Any,
) -> ResultT:
    """The body both flows share: run one image through the steps, publish, end the run.

    Args:
        run: the pipeline call (``describe_one`` or ``answer_one``).
        steps: the flow's Prefect steps; OCR and features are watched for task-cache hits.
        image_path: the image, as the flow received it (a non-UTF-8 file name may come as
            ``readable`` shows it: flow parameters travel as JSON; see ``on_disk``).
        out_dir: where the WAV and JSON go; ``None`` for the settings' ``out_dir``.
        lang: ``auto``, ``en`` or ``zh``.
        spoken: the text the WAV says (description or answer), for the state message.
        **options: the rest of ``run``'s keywords (``stem``; ``question_text``...).

    Returns:
        A ``Completed`` state carrying the result, or a ``Failed`` one with the one-line
        reason when the input or a setting cannot be used (``InputError``, ``ConfigError``).
    """
    watched_steps, watches = watched(steps)
    try:
        settings = flow_settings()
        result = run(
            on_disk(image_path),
            out_dir=Path(out_dir) if out_dir else settings.out_dir,
            lang=lang,
            settings=settings,
            steps=watched_steps,
            **options,
        )
    except BAD_INPUT as exc:
        return bad_input(exc)
    publish_artifacts(result, settings, {k: w.hit for k, w in watches.items()})
    return completed(result, spoken_opening(result, spoken(result)))


@flow(name="image-to-speech", flow_run_name=describe_run_name, timeout_seconds=1800)
def image_to_speech(
    image_path: Path,
    out_dir: Path | None = None,
    lang: Literal["auto", "en", "zh"] = "auto",
    stem: str | None = None,
) -> DescribeResult:
    """Describe one image aloud: writes ``<out_dir>/<stem>.wav`` and ``<stem>.json``.

    The run ends ``Completed`` with the description's opening as its state message, or
    ``Failed`` with the one-line reason when the image or a setting cannot be used.

    Args:
        image_path: the image (PNG, JPEG, WebP, TIFF, BMP or GIF).
        out_dir: where the WAV and JSON go; default ``NARRATE_OUT_DIR`` or ``./narrate-out``.
        lang: the language of the text in the image; ``auto`` detects English or Chinese.
        stem: the output files' name; default the image's own (``receipt`` for receipt.png).

    Returns:
        The result (description, OCR text, timings, the WAV's path).

    Raises:
        InputError: the image cannot be used (missing, empty, not an image, too large).
        ConfigError: a setting is invalid.
    """
    return run_watched(
        describe_one,
        PREFECT_STEPS,
        image_path,
        out_dir,
        lang,
        spoken=lambda result: result.description,
        stem=stem,
    )


if __name__ == "__main__":
    for argument in sys.argv[1:] or ["assets/samples/receipt_en.png"]:
        print(image_to_speech(Path(argument)).to_json(indent=2))
