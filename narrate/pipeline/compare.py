"""A/B comparison measures: how a description relates to the text read from the image."""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Mapping
from typing import Any

from adapters.text import HAN_RANGES

_WORD = re.compile(f"[a-z0-9]{{2,}}|[{HAN_RANGES}]")


def mention_words(text: str) -> set[str]:
    """Lower-case words of two or more letters/digits, and single CJK characters."""
    return set(_WORD.findall(text.lower()))


def ocr_mention_share(ocr_text: str, description: str) -> float | None:
    """The share of the OCR text's distinct words the description mentions.

    Returns:
        A share in [0, 1], or None when the image has no text.
    """
    words = mention_words(ocr_text)
    if not words:
        return None
    return len(words & mention_words(description)) / len(words)


def variant_label(variant: Mapping[str, Any]) -> str:
    """A variant's ``name``, else its settings as ``key=value`` pairs."""
    if variant.get("name"):
        return str(variant["name"])
    return ",".join(f"{k}={v}" for k, v in sorted(variant.items())) or "baseline"


def summarise_variant(label: str, rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """One variant's row of the comparison from its per-image rows."""
    rows = list(rows)
    ok = [r for r in rows if r["status"] == "ok"]
    shares = [r["ocr_mention"] for r in ok if r["ocr_mention"] is not None]

    def mean(values: list[float]) -> float | None:
        return round(statistics.fmean(values), 3) if values else None

    return {
        "variant": label,
        "images": len(rows),
        "failed": len(rows) - len(ok),
        "latency_mean_s": mean([r["latency_s"] for r in ok]),
        "latency_max_s": round(max((r["latency_s"] for r in ok), default=0.0), 3),
        "tokens_mean": mean([r["tokens"] for r in ok]),
        "length_mean_chars": mean([r["length"] for r in ok]),
        "ocr_mention_mean": mean(shares),
    }
