"""Prefect UI artifacts for a run: what a person wants to see after a flow finishes."""

from __future__ import annotations

import re

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from narrate.pipeline.results import AnswerResult, DescribeResult


def artifact_key(prefix: str, name: str) -> str:
    """A valid artifact key (lowercase letters, digits, dashes) from a prefix and a file name."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "image"
    return f"{prefix}-{slug}"[:100]


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" for line in text.splitlines()) or "> (none)"


def publish_describe_artifacts(result: DescribeResult) -> None:
    """A markdown artifact (description, OCR text) and a table artifact (timings, tokens)."""
    name = result.image_path.name
    markdown = "\n".join(
        [
            f"# {name}",
            "",
            "## Description",
            _quote(result.description),
            "",
            f"Audio: `{result.audio_path}` ({result.audio_duration_s:.1f} s)",
            "",
            f"## OCR text (language {result.language}, "
            f"mean confidence {result.ocr_confidence:.0%})",
            "```",
            result.ocr_text.strip() or "(no text found)",
            "```",
            "",
            f"## Features\n{result.features.get('summary', '')}",
        ]
    )
    create_markdown_artifact(
        markdown=markdown, key=artifact_key("description", name), description=f"narrate: {name}"
    )
    create_table_artifact(
        table=_timing_rows(result),
        key=artifact_key("timings", name),
        description=f"narrate stages: {name}",
    )


def _timing_rows(result: DescribeResult) -> list[dict[str, object]]:
    """Rows of one table (``what``, ``value``, ``unit``).

    Seconds per stage, then how the text was written: backend and model, endpoint,
    attempts, cache, fallbacks, tokens.
    """

    def row(what: str, value: object, unit: str = "") -> dict[str, object]:
        return {"what": what, "value": value, "unit": unit}

    rows = [
        row(f"{stage.removesuffix('_s')} time", round(seconds, 3), "s")
        for stage, seconds in result.timings.items()
    ]
    rows += [
        row("backend", f"{result.backend} ({result.model})"),
        row("endpoint", result.endpoint),
        row("attempts", result.attempts),
        row("from the response cache", "yes" if result.cached else "no"),
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


def publish_answer_artifacts(result: AnswerResult) -> None:
    """A markdown artifact (question, answer, OCR text) and the timings table."""
    name = result.image_path.name
    heard = (
        f" (heard in `{result.question_audio}`, confidence {result.transcript_confidence:.2f})"
        if result.question_audio is not None and result.transcript_confidence is not None
        else ""
    )
    markdown = "\n".join(
        [
            f"# Question about {name}",
            "",
            f"**Question**{heard}:",
            _quote(result.question),
            "",
            "**Answer:**",
            _quote(result.answer),
            "",
            f"Audio: `{result.audio_path}` ({result.audio_duration_s:.1f} s)",
            "",
            "## OCR text",
            "```",
            result.ocr_text.strip() or "(no text found)",
            "```",
        ]
    )
    create_markdown_artifact(
        markdown=markdown, key=artifact_key("answer", name), description=f"narrate Q&A: {name}"
    )
    create_table_artifact(
        table=_timing_rows(result),
        key=artifact_key("answer-timings", name),
        description=f"narrate stages: {name}",
    )
