"""Choosing the OCR garbage threshold on a labelled set: real words vs words read in no text.

Each engine (filter off: ``min_confidence=0``) reads generated images with known text and
text-free photos. Every word (tesseract) or line (RapidOCR) it returns is labelled:

* real: it is (or, for a line, most of its words are) in the image's known text;
* garbage: it was read in a text-free photo, or it is in no known text.

Words that fail the word-shape test (``adapters.ocr.filtering.looks_like_text``) are counted
apart: the shape test drops them whatever the threshold. For thresholds 0.0-0.95 the script
prints the share of real words kept, the share of garbage kept, and how many text-free photos
would still report text; pick the threshold that keeps nearly all real words and reports no
text on text-free photos.

    flock /tmp/bench.lock .venv/bin/python bench/ocr_threshold.py [--engines tesseract,rapidocr]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from adapters.ocr.filtering import looks_like_text  # noqa: E402
from tests import images as gen  # noqa: E402
from tests.images import SAMPLE_TEXTS, sample_path, words  # noqa: E402

TEXT_IMAGES = {
    "sign": lambda: gen.render_sign_photo(size=(2016, 1512)),
    "sign_dark": lambda: gen.render_sign_photo(dark=True, size=(2016, 1512), seed=4),
    "dark_screen": gen.render_dark_screenshot,
    "mixed": gen.render_mixed_page,
    "transparent": gen.render_transparent_text,
    "rotated": gen.render_rotated_page,
    "vertical_zh": gen.render_vertical_chinese,
}
SAMPLES = ("receipt_en.png", "notice_zh.png", "page_uneven_light.jpg")
TEXTFREE_SEEDS = (1, 2, 3, 4, 5, 6, 7, 8)


def label(text: str, expected: str) -> bool:
    """True when ``text`` (a word or a line) belongs to ``expected``."""
    found = words(text)
    cjk = [ch for ch in text if "\u4e00" <= ch <= "\u9fff"]
    if cjk:
        return sum(ch in expected for ch in cjk) >= 0.7 * len(cjk)
    if not found:
        return False
    want = words(expected)
    return sum((found & want).values()) >= 0.7 * sum(found.values())


def collect(engine: Any, folder: Path) -> tuple[list[tuple[float, bool, bool]], list[list[float]]]:
    """``(confidence, real, word-shaped)`` per word on text images; confidences per photo."""
    labelled: list[tuple[float, bool, bool]] = []
    inputs: list[tuple[Path, str]] = []
    for name, render in TEXT_IMAGES.items():
        image, text = render()
        path = folder / f"{name}.png"
        image.save(path)
        inputs.append((path, text))
    inputs += [(sample_path(name), SAMPLE_TEXTS[name]) for name in SAMPLES]
    for path, text in inputs:
        result = engine.recognize(path, "auto")
        for box in (*result.boxes, *result.dropped):
            labelled.append((box.confidence, label(box.text, text), looks_like_text(box.text)))
    photos: list[list[float]] = []
    free = [sample_path("photo_sunset.jpg")]
    for seed in TEXTFREE_SEEDS:
        path = folder / f"textfree_{seed}.jpg"
        gen.render_textfree_photo(seed=seed, size=(1200, 900)).save(path, quality=85)
        free.append(path)
    for path in free:
        result = engine.recognize(path, "auto")
        confs = []
        for box in (*result.boxes, *result.dropped):
            labelled.append((box.confidence, False, looks_like_text(box.text)))
            if looks_like_text(box.text):
                confs.append(box.confidence)
        photos.append(confs)
    return labelled, photos


def report(name: str, labelled: list[tuple[float, bool, bool]], photos: list[list[float]]) -> None:
    """Print the table for one engine."""
    real = [c for c, is_real, shaped in labelled if is_real and shaped]
    junk = [c for c, is_real, shaped in labelled if not is_real and shaped]
    misshaped_real = sum(1 for _, is_real, shaped in labelled if is_real and not shaped)
    misshaped_junk = sum(1 for _, is_real, shaped in labelled if not is_real and not shaped)
    print(
        f"# {name}: {len(real)} real and {len(junk)} garbage word-shaped items; the shape test "
        f"alone dropped {misshaped_junk} garbage and {misshaped_real} real items; "
        f"{len(photos)} text-free photos"
    )
    print(f"{'threshold':>9} {'real kept':>9} {'junk kept':>9} {'photos w/ text':>14}")
    for step in range(20):
        t = step / 20
        kept_real = sum(c >= t for c in real) / max(1, len(real))
        kept_junk = sum(c >= t for c in junk) / max(1, len(junk))
        noisy = sum(any(c >= t for c in confs) for confs in photos)
        print(f"{t:9.2f} {kept_real:9.3f} {kept_junk:9.3f} {noisy:>9d}/{len(photos)}")


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="tesseract,rapidocr")
    args = parser.parse_args()
    from adapters import registry

    with tempfile.TemporaryDirectory(prefix="bench-ocr-threshold-") as tmp:
        for name in args.engines.split(","):
            engine = registry.load("ocr", name, min_confidence=0.0, timeout_s=600)
            labelled, photos = collect(engine, Path(tmp))
            report(name, labelled, photos)


if __name__ == "__main__":
    main()
