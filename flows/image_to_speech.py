"""Flow ``image_to_speech``: OCR -> features -> description -> speech for one image.

Run it from Python (``image_to_speech("assets/samples/receipt_en.png")``), from the Prefect UI
(a deployment in prefect.yaml), or as a script: ``python -m flows.image_to_speech IMAGE``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

from prefect import flow

from flows._setup import flow_settings
from flows.artifacts import publish_describe_artifacts
from narrate.pipeline.results import DescribeResult
from narrate.pipeline.sequence import Steps, describe_one
from tasks.features import features_task
from tasks.llm import llm_task
from tasks.ocr import ocr_task
from tasks.tts import tts_task

PREFECT_STEPS = Steps(ocr=ocr_task, features=features_task, llm=llm_task, tts=tts_task)


@flow(name="image-to-speech", flow_run_name="describe {image_path}", timeout_seconds=1800)
def image_to_speech(
    image_path: Path,
    out_dir: Path | None = None,
    lang: Literal["auto", "en", "zh"] = "auto",
    stem: str | None = None,
) -> DescribeResult:
    """Describe one image aloud: writes ``<out_dir>/<stem>.wav`` and ``<stem>.json``.

    Args:
        image_path: the image (PNG, JPEG, WebP, TIFF, BMP or GIF).
        out_dir: where the WAV and JSON go; default ``NARRATE_OUT_DIR`` or ``./narrate-out``.
        lang: the language of the text in the image; ``auto`` detects English or Chinese.
        stem: the output files' name; default the image's own (``receipt`` for receipt.png).
    """
    settings = flow_settings()
    result = describe_one(
        Path(image_path),
        out_dir=Path(out_dir) if out_dir else settings.out_dir,
        lang=lang,
        settings=settings,
        steps=PREFECT_STEPS,
        stem=stem,
    )
    publish_describe_artifacts(result)
    return result


if __name__ == "__main__":
    for argument in sys.argv[1:] or ["assets/samples/receipt_en.png"]:
        print(image_to_speech(Path(argument)).to_json(indent=2))
