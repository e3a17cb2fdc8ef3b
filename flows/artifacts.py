"""Prefect UI artifacts for a run: what a person wants to see after a flow finishes.

Files are shown as links when ``NARRATE_OUTPUT_BASE_URL`` says where the outputs folder
(``NARRATE_OUTPUT_PUBLIC_DIR``, default ``NARRATE_OUT_DIR``) is served, so the WAV is one
click away; otherwise as absolute paths on the worker that wrote them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from narrate.config.settings import Settings
from narrate.pipeline.results import AnswerResult, DescribeResult, readable


def artifact_key(prefix: str, name: str) -> str:
    """A valid artifact key (lowercase letters, digits, dashes) from a prefix and a file name."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "image"
    return f"{prefix}-{slug}"[:100]


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" for line in text.splitlines()) or "> (none)"


def public_url(path: Path, settings: Settings) -> str | None:
    """The URL of ``path`` under ``NARRATE_OUTPUT_BASE_URL``, or None when it has none.

    Args:
        path: a file on this machine (relative paths are taken from the working folder).
        settings: ``output.base_url`` and ``output.public_dir`` (default ``out_dir``).

    Returns:
        ``<base_url>/<path relative to public_dir>``, percent-encoded; None when no base URL
        is set or ``path`` lies outside the served folder.
    """
    base = settings.output.base_url
    if not base:
        return None
    served = (settings.output.public_dir or settings.out_dir).resolve()
    try:
        relative = Path(path).resolve().relative_to(served)
    except ValueError:
        return None
    return f"{base.rstrip('/')}/{quote(relative.as_posix())}"


def file_markdown(path: Path, settings: Settings) -> str:
    """A link to ``path`` when it is served, else its absolute path as code."""
    url = public_url(path, settings)
    if url is not None:
        return f"[{Path(path).name}]({url})"
    return f"`{Path(path).resolve()}` (on the worker)"


def _files_block(result: DescribeResult, settings: Settings) -> list[str]:
    """Audio and image lines, and the image itself when it is served."""
    audio = file_markdown(result.audio_path, settings)
    lines = [
        f"**Audio** ({result.audio_duration_s:.1f} s): {audio}",
        "",
        f"**Image:** {file_markdown(result.image_path, settings)}",
    ]
    image_url = public_url(result.image_path, settings)
    if image_url is not None:
        lines += ["", f"![{result.image_path.name}]({image_url})"]
    return lines


def _ocr_text_block(result: DescribeResult) -> list[str]:
    """The OCR text in a code block, or a note that none was found."""
    return ["```", result.ocr_text.strip() or "(no text found)", "```"]


def publish_artifacts(
    result: DescribeResult, settings: Settings, task_cache: Mapping[str, bool] | None = None
) -> None:
    """The run's markdown artifact and its timings table, keyed by the image's name.

    A description shows the description, audio, image, OCR text and features; an answer
    (``AnswerResult``) the question, the answer, audio, image and OCR text.

    Args:
        result: the run's result.
        settings: where outputs are served (``output``), for the links.
        task_cache: per step (``ocr``, ``features``), whether Prefect's task cache answered.
    """
    name = readable(result.image_path.name)  # artifacts are UTF-8: any file name is shown
    if isinstance(result, AnswerResult):
        markdown = _answer_markdown(result, settings)
        markdown_key, timings_key, title = "answer", "answer-timings", f"narrate Q&A: {name}"
    else:
        markdown = _describe_markdown(result, settings)
        markdown_key, timings_key, title = "description", "timings", f"narrate: {name}"
    create_markdown_artifact(
        markdown=readable(markdown), key=artifact_key(markdown_key, name), description=title
    )
    create_table_artifact(
        table=_timing_rows(result, task_cache),
        key=artifact_key(timings_key, name),
        description=f"narrate stages: {name}",
    )


def _describe_markdown(result: DescribeResult, settings: Settings) -> str:
    """Description, audio, image, OCR text (language, mean confidence) and features."""
    name = result.image_path.name
    return "\n".join(
        [
            f"# {name}",
            "",
            "## Description",
            _quote(result.description),
            "",
            *_files_block(result, settings),
            "",
            f"## OCR text (language {result.language}, "
            f"mean confidence {result.ocr_confidence:.0%})",
            *_ocr_text_block(result),
            "",
            f"## Features\n{result.features.get('summary', '')}",
        ]
    )


def _answer_markdown(result: AnswerResult, settings: Settings) -> str:
    """Question (and the recording it was heard in), answer, audio, image and OCR text."""
    name = result.image_path.name
    heard = (
        f" (heard in {file_markdown(result.question_audio, settings)}, "
        f"confidence {result.transcript_confidence:.2f})"
        if result.question_audio is not None and result.transcript_confidence is not None
        else ""
    )
    return "\n".join(
        [
            f"# Question about {name}",
            "",
            f"**Question**{heard}:",
            _quote(result.question),
            "",
            "**Answer:**",
            _quote(result.answer),
            "",
            *_files_block(result, settings),
            "",
            "## OCR text",
            *_ocr_text_block(result),
        ]
    )


def _timing_rows(
    result: DescribeResult, task_cache: Mapping[str, bool] | None = None
) -> list[dict[str, object]]:
    """Rows of one table (``what``, ``value``, ``unit``).

    Seconds per stage, then which step came from which cache (Prefect's task cache for OCR
    and features, the LLM response cache for the text), then how the text was written:
    backend and model, endpoint, attempts, fallbacks, tokens.
    """

    def row(what: str, value: object, unit: str = "") -> dict[str, object]:
        return {"what": what, "value": value, "unit": unit}

    rows = [
        row(f"{stage.removesuffix('_s')} time", round(seconds, 3), "s")
        for stage, seconds in result.timings.items()
    ]
    rows += [
        row(f"{step} from Prefect's task cache", "yes" if hit else "no")
        for step, hit in (task_cache or {}).items()
    ]
    rows += [
        row("llm answer from the LLM response cache", "yes" if result.cached else "no"),
        row("backend", f"{result.backend} ({result.model})"),
        row("endpoint", result.endpoint),
        row("attempts", result.attempts),
    ]
    if result.fallback_from:
        row_text = ", ".join(result.fallback_from)
        rows.append(row("failed before it", row_text))
    if result.ttft_s is not None:
        rows.append(row("time to first token", round(result.ttft_s, 3), "s"))
    rows += [
        row(name.replace("_", " "), count, "tokens") for name, count in (result.usage or {}).items()
    ]
    return rows
