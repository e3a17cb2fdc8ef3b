"""Helpers for tests that read images: sample paths, ground truth, word recall, box overlap."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from scripts.make_samples import SAMPLE_TEXTS, SAMPLES_DIR

__all__ = ["SAMPLES_DIR", "SAMPLE_TEXTS", "iou", "sample_path", "word_recall", "words"]


def sample_path(name: str) -> Path:
    """The path of a committed sample image, e.g. ``receipt_en.png``."""
    path = SAMPLES_DIR / name
    assert path.is_file(), f"{path} is missing: run `python scripts/make_samples.py`"
    return path


def words(text: str) -> Counter[str]:
    """The lower-case words and numbers of ``text``, with their counts."""
    return Counter(re.findall(r"[a-z0-9]+(?:\.[0-9]+)?", text.lower()))


def word_recall(expected: str, found: str) -> float:
    """The share of the words of ``expected`` (with repeats) that ``found`` contains."""
    want = words(expected)
    return sum((want & words(found)).values()) / max(1, sum(want.values()))


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two (left, top, width, height) boxes."""
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union else 0.0
