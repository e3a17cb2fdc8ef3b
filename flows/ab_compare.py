"""Flow ``ab_compare``: the same images described under several LLM setting variants.

Each image is read once (OCR and features are shared), then described once per variant,
e.g. ``[{"temperature": 0.3}, {"temperature": 0.7}]`` or ``[{"model": "qwen3-max"},
{"model": "qwen-plus"}]``. Per variant: latency, tokens, description length and the share
of the OCR text's words the description mentions. Writes ``<out>/ab_compare.csv`` (one row
per variant) and ``<out>/ab_compare_items.csv`` (one per image and variant, with the text),
and publishes the variant table as an artifact.

Script: ``python -m flows.ab_compare IMAGE... [--variants JSON]``.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path
from typing import Annotated, Any

from prefect import flow
from prefect.artifacts import create_table_artifact
from pydantic import TypeAdapter

from adapters.errors import InputError, NarrateError
from flows._outcome import BAD_INPUT, ab_compare_run_name, bad_input, batch_state
from flows._setup import flow_settings
from narrate.config.settings import LLMSettings, Settings
from narrate.pipeline.compare import ocr_mention_share, summarise_variant, variant_label
from narrate.pipeline.results import on_disk, readable
from tasks.features import features_task
from tasks.llm import llm_task
from tasks.ocr import ocr_task

DEFAULT_VARIANTS: list[dict[str, Any]] = [{"temperature": 0.3}, {"temperature": 0.7}]
ITEM_FIELDS = ("variant", "image", "status", "latency_s", "tokens", "length", "ocr_mention")


def variant_settings(settings: Settings, variant: dict[str, Any]) -> LLMSettings:
    """The LLM settings with ``variant`` applied; an unknown or invalid key is an InputError.

    Keys are ``LLMSettings`` field names; the names before the fields carried their unit
    (``timeout``, ``deadline``, ...) still work, as the deployments' variants may use them.
    """
    renamed = LLMSettings.renamed
    changes = {renamed.get(k, k): v for k, v in variant.items() if k != "name"}
    unknown = sorted(set(changes) - set(LLMSettings.model_fields))
    if unknown:
        valid = ", ".join(sorted(LLMSettings.model_fields))
        raise InputError(None, f"unknown LLM setting(s) {unknown} in variant; valid: {valid}")
    checked: dict[str, Any] = {}
    for key, value in changes.items():
        field = LLMSettings.model_fields[key]
        kind: Any = field.annotation
        if field.metadata:  # constraints such as ge=0, le=2
            kind = Annotated[(kind, *field.metadata)]  # type: ignore[valid-type]
        try:
            checked[key] = TypeAdapter(kind).validate_python(value)
        except ValueError as exc:
            reason = exc.errors()[0]["msg"] if hasattr(exc, "errors") else str(exc)
            raise InputError(None, f"variant {variant}: {key}={value!r}: {reason}") from None
    return settings.llm.model_copy(update=checked)


def _write_csv(path: Path, rows: list[dict[str, Any]], fields: tuple[str, ...]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


@flow(name="ab-compare", flow_run_name=ab_compare_run_name, timeout_seconds=6 * 3600)
def ab_compare(
    images: list[str],
    variants: list[dict[str, Any]] = DEFAULT_VARIANTS,
    out_dir: Path | None = None,
    lang: str = "auto",
) -> list[dict[str, Any]]:
    """Describe ``images`` under each of ``variants`` and compare them.

    Returns one row per variant (latency, tokens, length, OCR-mention share).

    Args:
        images: image paths; a non-UTF-8 file name may be given as ``readable`` shows it
            (Latin-1 bytes read as Latin-1), as the flow's JSON parameters must be.
        variants: LLM setting overrides, one dict per variant; an optional ``name`` labels it.
        out_dir: where the CSVs go; default ``NARRATE_OUT_DIR`` or ``./narrate-out``.
        lang: the language of the text in the images (``auto``, ``en``, ``zh``).
    """
    try:
        settings = flow_settings()
        out = Path(out_dir) if out_dir else settings.out_dir
        out.mkdir(parents=True, exist_ok=True)
        if not variants:
            raise InputError(None, "give at least one variant")
        plans = [(variant_label(v), variant_settings(settings, v)) for v in variants]
    except BAD_INPUT as exc:
        return bad_input(exc)
    items: list[dict[str, Any]] = []
    for name in images:
        image, shown = on_disk(name), readable(name)  # any file name (see ``on_disk``)
        try:
            ocr = ocr_task(image, lang, settings.ocr, max_pixels=settings.max_image_pixels)
            features = features_task(image, ocr.boxes, max_pixels=settings.max_image_pixels)
        except NarrateError as exc:
            items += [{"variant": label, "image": shown, "status": "failed",
                       "reason": readable(str(exc))} for label, _ in plans]  # fmt: skip
            continue
        for label, llm in plans:
            row: dict[str, Any] = {"variant": label, "image": shown}
            started = time.perf_counter()
            try:
                description = llm_task(ocr, features, llm, image_path=image)
            except NarrateError as exc:
                items.append({**row, "status": "failed", "reason": readable(str(exc))})
                continue
            share = ocr_mention_share(ocr.text, description.text)
            items.append(
                {
                    **row,
                    "status": "ok",
                    "latency_s": round(time.perf_counter() - started, 3),
                    "tokens": description.usage.total_tokens if description.usage else None,
                    "length": len(description.text),
                    "ocr_mention": None if share is None else round(share, 3),
                    "description": description.text,
                }
            )
    table = [
        summarise_variant(label, (r for r in items if r["variant"] == label)) for label, _ in plans
    ]
    _write_csv(out / "ab_compare.csv", table, tuple(table[0]))
    _write_csv(out / "ab_compare_items.csv", items, (*ITEM_FIELDS, "reason", "description"))
    create_table_artifact(
        table=table, key="ab-compare", description=f"narrate A/B: {len(images)} image(s)"
    )
    failures = [r for r in items if r["status"] == "failed"]
    return batch_state(
        table,
        ok=len(items) - len(failures),
        skipped=0,
        failed=len(failures),
        first=f"{failures[0]['variant']}: {failures[0]['reason']}" if failures else None,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Compare LLM setting variants on images.")
    parser.add_argument("images", nargs="+")
    parser.add_argument("--variants", default=json.dumps(DEFAULT_VARIANTS), help="JSON list")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    names = [readable(image) for image in args.images]  # flow parameters travel as JSON
    for variant_row in ab_compare(names, json.loads(args.variants), args.out):
        print(variant_row)
