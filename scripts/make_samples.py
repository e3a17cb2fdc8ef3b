"""Generate the sample images in ``assets/samples/`` deterministically (fixed seeds).

Run ``python scripts/make_samples.py`` to (re)write them. Tests import ``SAMPLE_TEXTS`` (the
ground truth) and the ``render_*`` functions (to know where each line was drawn) from here;
``assets/samples/expected.json`` holds the same facts for code that does not import scripts.

- ``receipt_en.png``: an English café receipt, clean print.
- ``notice_zh.png``: a Simplified Chinese car-park notice.
- ``photo_sunset.jpg``: a photo-like landscape with no text at all.
- ``page_uneven_light.jpg``: a page of English text photographed under uneven light (lighting
  gradient, a shadow, vignette, blur, noise, JPEG); raw tesseract misses many of its words.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "assets" / "samples"
FONT_DIR = Path("/usr/share/fonts/truetype")
FONT_SANS = FONT_DIR / "dejavu" / "DejaVuSans.ttf"
FONT_SANS_BOLD = FONT_DIR / "dejavu" / "DejaVuSans-Bold.ttf"
FONT_MONO = FONT_DIR / "dejavu" / "DejaVuSansMono.ttf"
FONT_SERIF = FONT_DIR / "dejavu" / "DejaVuSerif.ttf"
FONT_CJK = FONT_DIR / "wqy" / "wqy-zenhei.ttc"

Box = tuple[int, int, int, int]  # left, top, width, height

RECEIPT_LINES = (
    "CORNER CAFE",
    "12 High Street",
    "Flat white 3.50",
    "Croissant 2.20",
    "Orange juice 1.50",
    "TOTAL 7.20",
    "Thank you",
)

NOTICE_LINES = (
    "停车场通知",
    "本周六上午九点至十二点",
    "停车场将进行清洁",
    "请提前移走车辆",
)

PAGE_LINES = (
    "The museum opens at nine in the morning and closes at five in the evening.",
    "Visitors are asked to leave large bags at the cloakroom near the main entrance.",
    "Photography is allowed in most rooms, but please do not use a flash.",
    "Guided tours start every hour from the information desk on the ground floor.",
    "Children under twelve must be accompanied by an adult at all times.",
    "The cafe on the second floor serves hot drinks, sandwiches and cakes.",
    "Lifts are available for visitors who cannot use the stairs.",
    "Please keep your ticket with you until you leave the building.",
    "We hope you enjoy your visit and look forward to seeing you again.",
    "Thank you for supporting the museum and its work.",
)

SAMPLE_TEXTS: dict[str, str] = {
    "receipt_en.png": "\n".join(RECEIPT_LINES),
    "notice_zh.png": "\n".join(NOTICE_LINES),
    "photo_sunset.jpg": "",
    "page_uneven_light.jpg": "\n".join(PAGE_LINES),
}
"""Ground truth: the text drawn in each sample, one line per line of text."""

SAMPLE_LANGUAGES: dict[str, str] = {
    "receipt_en.png": "en",
    "notice_zh.png": "zh",
    "photo_sunset.jpg": "en",
    "page_uneven_light.jpg": "en",
}


def _draw_lines(
    draw: ImageDraw.ImageDraw,
    lines: tuple[str, ...],
    fonts: list[ImageFont.FreeTypeFont],
    *,
    left: int,
    top: int,
    spacing: int,
    fill: int | tuple[int, int, int],
) -> dict[str, Box]:
    """Draw ``lines`` one under the other; return each line's ink box."""
    boxes: dict[str, Box] = {}
    y = top
    for line, font in zip(lines, fonts, strict=True):
        draw.text((left, y), line, font=font, fill=fill)
        x0, y0, x1, y1 = (round(v) for v in draw.textbbox((left, y), line, font=font))
        boxes[line] = (x0, y0, x1 - x0, y1 - y0)
        y += round(font.size) + spacing
    return boxes


def render_receipt() -> tuple[Image.Image, dict[str, Box]]:
    """The English receipt, and the ink box of each line and of the word ``TOTAL``."""
    image = Image.new("RGB", (560, 620), (250, 248, 240))
    draw = ImageDraw.Draw(image)
    title = ImageFont.truetype(str(FONT_SANS_BOLD), 44)
    body = ImageFont.truetype(str(FONT_MONO), 32)
    fonts = [title] + [body] * (len(RECEIPT_LINES) - 1)
    boxes = _draw_lines(draw, RECEIPT_LINES, fonts, left=50, top=40, spacing=38, fill=(25, 25, 30))
    pen_y = 40 + (title.size + 38) + (body.size + 38) * (RECEIPT_LINES.index("TOTAL 7.20") - 1)
    x0, y0, x1, y1 = (round(v) for v in draw.textbbox((50, pen_y), "TOTAL", font=body))
    boxes["TOTAL"] = (x0, y0, x1 - x0, y1 - y0)
    draw.line((40, pen_y - 18, 520, pen_y - 18), fill=(120, 120, 120), width=2)
    return image, boxes


def render_notice() -> tuple[Image.Image, dict[str, Box]]:
    """The Chinese notice, and the ink box of each line."""
    image = Image.new("RGB", (720, 420), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw.rectangle((12, 12, 707, 407), outline=(200, 30, 30), width=4)
    title = ImageFont.truetype(str(FONT_CJK), 56)
    body = ImageFont.truetype(str(FONT_CJK), 42)
    fonts = [title] + [body] * (len(NOTICE_LINES) - 1)
    boxes = _draw_lines(draw, NOTICE_LINES, fonts, left=60, top=50, spacing=40, fill=(20, 20, 20))
    return image, boxes


def render_sunset(seed: int = 7) -> Image.Image:
    """A photo-like sunset: gradient sky, sun disc with glow, layered hills, sensor noise."""
    rng = np.random.default_rng(seed)
    width, height = 640, 427
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    t = ys / height
    top = np.array([70.0, 60.0, 140.0])
    horizon = np.array([250.0, 150.0, 70.0])
    sky = top * (1 - t[..., None]) ** 1.5 + horizon * (1 - (1 - t[..., None]) ** 1.5)
    sun_x, sun_y, radius = 400.0, 250.0, 38.0
    dist = np.hypot(xs - sun_x, ys - sun_y)
    glow = np.exp(-((dist / 140.0) ** 2))[..., None] * np.array([60.0, 45.0, 10.0])
    sky = sky + glow
    disc = dist < radius
    sky[disc] = (255.0, 232.0, 170.0)
    for base, amp, freq, phase, colour in (
        (300, 28, 0.011, 0.4, (70, 40, 60)),
        (340, 22, 0.017, 2.1, (45, 28, 40)),
        (380, 15, 0.023, 4.0, (25, 18, 25)),
    ):
        ridge = base + amp * np.sin(xs[0] * freq + phase) + 8 * np.sin(xs[0] * freq * 3.7)
        below = ys > ridge[None, :]
        sky[below] = colour
    sky += rng.normal(0, 6, sky.shape)
    image = Image.fromarray(np.clip(sky, 0, 255).astype(np.uint8), "RGB")
    return image.filter(ImageFilter.GaussianBlur(1.2))


def render_page_clean() -> tuple[Image.Image, dict[str, Box]]:
    """The page of text before the camera: black serif text on white paper."""
    image = Image.new("L", (900, 560), 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(FONT_SERIF), 19)
    boxes = _draw_lines(
        draw, PAGE_LINES, [font] * len(PAGE_LINES), left=40, top=50, spacing=26, fill=0
    )
    return image.convert("RGB"), boxes


def render_page_uneven_light(seed: int = 11) -> Image.Image:
    """The page as a phone photographs it: low contrast, light falling off, a shadow, noise."""
    rng = np.random.default_rng(seed)
    clean, _ = render_page_clean()
    ink = 1.0 - np.asarray(clean.convert("L"), dtype=np.float64) / 255.0  # 1 where text
    height, width = ink.shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    paper = 210.0 - 120.0 * ink  # grey ink on off-white paper
    light = 1.0 - 0.6 * (xs / width) ** 1.2 - 0.15 * (ys / height)  # lamp at the top left
    cx, cy = width * 0.3, height * 0.4
    vignette = 1.0 - 0.5 * (((xs - cx) / width) ** 2 + ((ys - cy) / height) ** 2)
    shadow_edge = 0.55 * width + 0.15 * width * (ys / height)  # the photographer's arm
    shadow = 1.0 - 0.4 / (1.0 + np.exp(-(xs - shadow_edge) / 20.0))
    lit = paper * light * vignette * shadow
    tint = np.stack([lit * 1.0, lit * 0.96, lit * 0.85], axis=-1)  # warm tungsten cast
    image = Image.fromarray(np.clip(tint, 0, 255).astype(np.uint8), "RGB")
    image = image.filter(ImageFilter.GaussianBlur(0.9))
    noisy = np.asarray(image, dtype=np.float64) + rng.normal(0, 7, (height, width, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")


def expected_facts() -> dict[str, dict[str, object]]:
    """What each sample contains: text, language and line boxes (JSON-ready)."""
    _, receipt_boxes = render_receipt()
    _, notice_boxes = render_notice()
    _, page_boxes = render_page_clean()
    boxes = {
        "receipt_en.png": receipt_boxes,
        "notice_zh.png": notice_boxes,
        "photo_sunset.jpg": {},
        "page_uneven_light.jpg": page_boxes,
    }
    return {
        name: {
            "text": SAMPLE_TEXTS[name],
            "language": SAMPLE_LANGUAGES[name],
            "boxes": {key: list(value) for key, value in boxes[name].items()},
        }
        for name in SAMPLE_TEXTS
    }


def write_samples(out_dir: Path = SAMPLES_DIR) -> list[Path]:
    """Write every sample image and ``expected.json`` into ``out_dir``; return the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [
        out_dir / "receipt_en.png",
        out_dir / "notice_zh.png",
        out_dir / "photo_sunset.jpg",
        out_dir / "page_uneven_light.jpg",
    ]
    render_receipt()[0].save(written[0], optimize=True)
    render_notice()[0].save(written[1], optimize=True)
    render_sunset().save(written[2], quality=88)
    render_page_uneven_light().save(written[3], quality=70)
    expected = out_dir / "expected.json"
    expected.write_text(
        json.dumps(expected_facts(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return [*written, expected]


def main() -> None:
    """Command line: write the samples (default ``assets/samples``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=SAMPLES_DIR, help="output directory")
    args = parser.parse_args()
    for path in write_samples(args.out):
        print(f"{path}  {path.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
