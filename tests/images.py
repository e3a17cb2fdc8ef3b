"""Helpers for tests that read images: sample paths, ground truth, recall, box overlap.

Also the generated real-world inputs of issue 11 (``render_*``): phone photos, screenshots,
chat bubbles, vertical Chinese, rotated pages, transparency, text-free photos. Fixed seeds,
known text.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

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


# --- Generated real-world inputs (issue 11): phone photos, screenshots, odd layouts ---------
# Each ``render_*`` is deterministic (fixed seeds) and returns the image with its ground truth;
# tests and bench/ocr.py draw them into temporary folders, nothing large is committed.

FONT_DIR = Path("/usr/share/fonts/truetype")
FONT_SANS = FONT_DIR / "dejavu" / "DejaVuSans.ttf"
FONT_SANS_BOLD = FONT_DIR / "dejavu" / "DejaVuSans-Bold.ttf"
FONT_SERIF = FONT_DIR / "dejavu" / "DejaVuSerif.ttf"
FONT_CJK = FONT_DIR / "wqy" / "wqy-zenhei.ttc"

SIGN_LINES = (
    "PLATFORM 4",
    "Trains to the airport",
    "leave every 15 minutes",
    "Buy tickets at the machine",
    "or at the office opposite",
    "Please mind the gap",
)
LONG_WORDS = ("apple", "river", "stone", "green", "light", "house", "table", "cloud", "paper")
VERTICAL_COLUMNS = ("欢迎光临本店", "营业时间九点", "周一至周日开")  # read right to left
MIXED_LINES = (
    "Welcome to the library",
    "Opening hours 9 to 17",
    "图书馆欢迎您",
    "Please return books on time",
)
PAGE_LINES_SHORT = (
    "The museum opens at nine in the morning.",
    "Visitors leave large bags at the cloakroom.",
    "Photography is allowed in most rooms.",
    "Guided tours start every hour.",
    "Children must be with an adult.",
)
TRANSPARENT_LINES = ("SALE ENDS SUNDAY", "Everything half price")
DARK_LINES = ("Settings", "Wireless network", "Battery saver", "Display brightness")


def cjk_recall(expected: str, found: str) -> float:
    """The share of the CJK characters of ``expected`` (with repeats) that ``found`` contains."""
    want = Counter(ch for ch in expected if "\u4e00" <= ch <= "\u9fff")
    got = Counter(ch for ch in found if "\u4e00" <= ch <= "\u9fff")
    return sum((want & got).values()) / max(1, sum(want.values()))


def recall(expected: str, found: str) -> float:
    """Word recall for Latin text plus character recall for CJK text, weighted by size."""
    n_words = sum(words(expected).values())
    n_cjk = sum(1 for ch in expected if "\u4e00" <= ch <= "\u9fff")
    if n_words + n_cjk == 0:
        return 1.0 if not words(found) else 0.0
    return (word_recall(expected, found) * n_words + cjk_recall(expected, found) * n_cjk) / (
        n_words + n_cjk
    )


def _font(path: Path, size: int) -> Any:
    from PIL import ImageFont

    return ImageFont.truetype(str(path), size)


def _photo_effects(
    image: Any, rng: np.random.Generator, *, tilt_deg: float, falloff: float, noise: float
) -> Any:
    """What a phone adds: tilt, light falling off from one corner, blur, sensor noise."""
    from PIL import Image, ImageFilter

    width, height = image.size
    fill = image.getpixel((5, 5))
    image = image.rotate(tilt_deg, resample=Image.Resampling.BILINEAR, fillcolor=fill)
    image = image.filter(ImageFilter.GaussianBlur(1.5))
    arr = np.asarray(image, dtype=np.float32)
    ys = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    xs = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    light = 1.0 - falloff * ((0.7 * xs + 0.3 * ys) ** 1.3)  # lamp at the top left
    light *= 1.0 - 0.25 * ((xs - 0.4) ** 2 + (ys - 0.45) ** 2)  # vignette
    arr = arr * light[..., None]
    arr += rng.normal(0.0, noise, size=arr.shape).astype(np.float32)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def render_sign_photo(
    *, dark: bool = False, size: tuple[int, int] = (4032, 3024), seed: int = 3
) -> tuple[Any, str]:
    """A phone photo (12 MP by default) of a six-line sign: light fall-off, 3 deg tilt, noise.

    ``dark=True`` is its dark-mode twin: light text on a near-black panel.
    """
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    width, height = size
    wall = (92, 88, 80) if not dark else (20, 20, 24)
    panel, ink = ((238, 236, 228), (22, 24, 30)) if not dark else ((18, 18, 22), (235, 235, 235))
    image = Image.new("RGB", size, wall)
    draw = ImageDraw.Draw(image)
    margin_x, margin_y = width // 10, height // 8
    draw.rectangle((margin_x, margin_y, width - margin_x, height - margin_y), fill=panel)
    title = _font(FONT_SANS_BOLD, height // 14)
    body = _font(FONT_SANS, height // 20)
    y = margin_y + height // 16
    for number, line in enumerate(SIGN_LINES):
        font = title if number == 0 else body
        draw.text((margin_x + width // 16, y), line, font=font, fill=ink)
        y += int(font.size * 1.55)
    photo = _photo_effects(image, rng, tilt_deg=3.0, falloff=0.55, noise=9.0)
    return photo, "\n".join(SIGN_LINES)


def render_dim_tilted_sign(
    *, turn_deg: float = -10.0, light: float = 0.8, size: tuple[int, int] = (2016, 1512)
) -> tuple[Any, str]:
    """The sign photo turned ``turn_deg`` more (-10: 7 degrees clockwise in all) and dimmed.

    ``light`` scales every pixel (0.8: a dim room). Tesseract reads only the first lines of
    such a sign, surely; see ``adapters/ocr/auto.py`` (``TILTED_DEG``).
    """
    from PIL import Image

    photo, text = render_sign_photo(size=size)
    turned = photo.rotate(turn_deg, resample=Image.Resampling.BILINEAR, fillcolor=(92, 88, 80))
    dim = np.clip(np.asarray(turned, np.float32) * light, 0, 255).astype(np.uint8)
    return Image.fromarray(dim), text


def render_long_screenshot(
    *, width: int = 100, height: int = 30000, line_px: int = 40
) -> tuple[Any, str]:
    """A scrolling screenshot: ``height // line_px`` short numbered lines (750 by default)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    font = _font(FONT_SANS, 15)
    lines = []
    for number in range(height // line_px):
        line = f"{number + 1} {LONG_WORDS[number % len(LONG_WORDS)]}"
        draw.text((6, number * line_px + 12), line, font=font, fill=(30, 30, 30))
        lines.append(line)
    return image, "\n".join(lines)


CHAT_TEXTS = (
    "see you at the station",
    "the train is late again",
    "bring the blue umbrella",
    "lunch is on the table",
    "call me after the meeting",
    "the shop closes at six",
)


def render_chat_screenshot(
    *, width: int = 1080, height: int = 9000, line_px: int = 60
) -> tuple[Any, str]:
    """A long chat-style screenshot: lines "Message N: text", label then text on one line.

    The labels line up in a left column and the texts start at varying widths after them;
    tesseract's automatic layout analysis (psm 3) may read them as two columns.
    """
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    font = _font(FONT_SANS, 28)
    lines = []
    for number in range((height - 40) // line_px):
        line = f"Message {number + 1}: {CHAT_TEXTS[number % len(CHAT_TEXTS)]}"
        draw.text((30, 20 + number * line_px), line, font=font, fill=(25, 25, 25))
        lines.append(line)
    return image, "\n".join(lines)


# A phone chat as people screenshot it: (outgoing?, message). Short lines with punctuation.
CHAT_BUBBLES = (
    (True, "Yes, see you at 7"),
    (False, "Great! Where should we meet?"),
    (True, "At the station, by the big clock."),
    (False, "OK. I'll bring the tickets."),
    (True, "Thanks! Don't forget the umbrella, it may rain."),
    (False, "Sure :) Is Sam coming too?"),
    (True, "No, he is working late tonight."),
    (False, "Pity. Next time then."),
    (True, "Running 5 min late, sorry!"),
    (False, "No problem, I'm at the cafe."),
)
CHAT_STATUS_TIME = "9:41"
CHAT_CONTACT = "Alex"
CHAT_STAMPS = ("Today 6:12 PM", "6:40 PM")  # before the first and the ninth message


def render_chat_bubbles(
    *, dark: bool = False, outgoing: tuple[int, int, int] | None = None
) -> tuple[Any, str]:
    """A 1080x2400 phone chat screenshot: rounded bubbles, as a messaging app draws them.

    Outgoing messages are right-aligned blue bubbles ((0, 122, 255), iOS's system blue; in
    dark mode (10, 132, 255)) with white text; incoming ones left-aligned light grey
    (#E9E9EB) with black text, or in dark mode dark grey (#262629) with white text on a black
    screen. A status bar (time, signal, battery), the contact's name and two small grey
    timestamp lines frame them. In grayscale the blue is mid-grey (~100): white text on it
    is light text on a region that is neither dark nor light. Text 42 px (DejaVu Sans), long
    messages wrapped at 70% of the width. ``outgoing`` overrides the outgoing bubbles'
    colour (iOS's green SMS bubble is (52, 199, 89)). Returns the image and all its text,
    in order.
    """
    from PIL import Image, ImageDraw

    width, height = 1080, 2400
    screen, ink = ((0, 0, 0), (255, 255, 255)) if dark else ((255, 255, 255), (0, 0, 0))
    incoming = (38, 38, 41) if dark else (233, 233, 235)
    outgoing = outgoing or ((10, 132, 255) if dark else (0, 122, 255))
    grey = (142, 142, 147)
    image = Image.new("RGB", (width, height), screen)
    draw = ImageDraw.Draw(image)
    body, small = _font(FONT_SANS, 42), _font(FONT_SANS, 30)
    bold = _font(FONT_SANS_BOLD, 36)
    # status bar: time left, signal bars and battery right
    draw.text((60, 30), CHAT_STATUS_TIME, font=bold, fill=ink)
    for bar in range(4):
        x = 840 + bar * 18
        draw.rectangle((x, 66 - 10 * (bar + 1), x + 10, 66), fill=ink)
    draw.rounded_rectangle((930, 38, 1010, 70), radius=8, outline=ink, width=3)
    draw.rectangle((936, 44, 990, 64), fill=ink)
    draw.rectangle((1012, 48, 1018, 60), fill=ink)
    # header: the contact's name over a thin rule
    draw.text((width // 2, 150), CHAT_CONTACT, font=bold, fill=ink, anchor="mm")
    draw.line((0, 210, width, 210), fill=grey, width=1)
    texts = [CHAT_STATUS_TIME, CHAT_CONTACT]
    y = 240
    for number, (outgoing_msg, message) in enumerate(CHAT_BUBBLES):
        if number in (0, 8):
            stamp = CHAT_STAMPS[0 if number == 0 else 1]
            draw.text((width // 2, y + 20), stamp, font=small, fill=grey, anchor="mm")
            texts.append(stamp)
            y += 70
        lines = _wrap(draw, message, body, int(width * 0.7) - 80)
        text_w = max(draw.textlength(line, font=body) for line in lines)
        box_w, box_h = int(text_w) + 76, 54 * len(lines) + 44
        left = width - 40 - box_w if outgoing_msg else 40
        fill = outgoing if outgoing_msg else incoming
        colour = (255, 255, 255) if outgoing_msg or dark else (0, 0, 0)
        draw.rounded_rectangle((left, y, left + box_w, y + box_h), radius=44, fill=fill)
        for row, line in enumerate(lines):
            draw.text((left + 38, y + 22 + row * 54), line, font=body, fill=colour)
        texts.append(message)
        following = CHAT_BUBBLES[number + 1][0] if number + 1 < len(CHAT_BUBBLES) else None
        y += box_h + (14 if following == outgoing_msg else 34)  # a sender's run sits closer
    return image, "\n".join(texts)


def _wrap(draw: Any, text: str, font: Any, max_px: int) -> list[str]:
    """``text`` broken between words into lines no wider than ``max_px``."""
    lines: list[str] = []
    for word in text.split():
        if lines and draw.textlength(f"{lines[-1]} {word}", font=font) <= max_px:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def render_vertical_chinese() -> tuple[Any, str]:
    """Three columns of Simplified Chinese written top to bottom, read right to left."""
    from PIL import Image, ImageDraw

    font = _font(FONT_CJK, 52)
    image = Image.new("RGB", (420, 460), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    for column, text in enumerate(VERTICAL_COLUMNS):
        x = 300 - column * 110
        for row, char in enumerate(text):
            draw.text((x, 40 + row * 64), char, font=font, fill=(20, 20, 20))
    return image, "\n".join(VERTICAL_COLUMNS)


def render_page(lines: tuple[str, ...] = PAGE_LINES_SHORT) -> Any:
    """A clean page of text lines (serif 26 px, CJK lines in the CJK font), 900 px wide."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (900, 90 + 56 * len(lines)), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    latin, cjk = _font(FONT_SERIF, 30), _font(FONT_CJK, 32)
    for number, line in enumerate(lines):
        font = cjk if any("\u4e00" <= ch <= "\u9fff" for ch in line) else latin
        draw.text((50, 45 + 56 * number), line, font=font, fill=(15, 15, 15))
    return image


def render_rotated_page(degrees: int = 90) -> tuple[Any, str]:
    """The page turned by ``degrees`` (90, 180 or 270, counter-clockwise), with no EXIF tag."""
    from PIL import Image

    turns = {
        90: Image.Transpose.ROTATE_90,
        180: Image.Transpose.ROTATE_180,
        270: Image.Transpose.ROTATE_270,
    }
    return render_page().transpose(turns[degrees]), "\n".join(PAGE_LINES_SHORT)


def render_turned_notes() -> tuple[Any, str]:
    """A 1700x2200 page of four short lines turned 90 degrees counter-clockwise, no EXIF.

    As a new user's trial made it: few, long words per line, so the read's word boxes,
    mapped back onto the turned image, run down the page.
    """
    from PIL import Image, ImageDraw

    lines = ("MEETING NOTES", "Budget approved for March", "Hire two engineers",
             "Next review on Friday")  # fmt: skip
    page = Image.new("RGB", (1700, 2200), (255, 255, 255))
    draw = ImageDraw.Draw(page)
    for number, line in enumerate(lines):
        draw.text((150, 160 + 150 * number), line, font=_font(FONT_SANS, 64), fill=(0, 0, 0))
    return page.transpose(Image.Transpose.ROTATE_90), "\n".join(lines)


def render_mixed_page() -> tuple[Any, str]:
    """A mostly English notice with one Simplified Chinese line."""
    return render_page(MIXED_LINES), "\n".join(MIXED_LINES)


def render_transparent_text() -> tuple[Any, str]:
    """White text on a fully transparent background (RGBA), as logos and overlays come."""
    from PIL import Image, ImageDraw

    mask = Image.new("L", (760, 220), 0)
    draw = ImageDraw.Draw(mask)
    for number, line in enumerate(TRANSPARENT_LINES):
        draw.text((40, 40 + 80 * number), line, font=_font(FONT_SANS_BOLD, 52), fill=255)
    image = Image.new("RGBA", mask.size, (255, 255, 255, 0))
    image.putalpha(mask)
    return image, "\n".join(TRANSPARENT_LINES)


def render_big_bold_sign(colour: tuple[int, int, int, int] = (0, 0, 0, 255)) -> tuple[Any, str]:
    """Big bold text on a transparent 1200x400 background (RGBA): a shop sign's cut-out.

    Its letters fill most of the preprocessing's median window, so their bodies look like
    flat grounds with "light strokes" (the paper in their counters): a new user's trial.
    """
    from PIL import Image, ImageDraw

    text = "OPEN 24 HOURS"
    image = Image.new("RGBA", (1200, 400), (0, 0, 0, 0))
    ImageDraw.Draw(image).text((50, 130), text, font=_font(FONT_SANS_BOLD, 120), fill=colour)
    return image, text


def render_sky_gradient(seed: int = 7, size: tuple[int, int] = (4032, 3024)) -> Any:
    """A phone photo of a clear evening sky: orange to blue, top to bottom, sensor noise."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    width, height = size
    t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    top, bottom = np.array([255, 170, 80], np.float32), np.array([40, 40, 190], np.float32)
    sky = np.broadcast_to(top * (1 - t) + bottom * t, (height, width, 3))
    noisy = sky + rng.normal(0.0, 2.5, (height, width, 3)).astype(np.float32)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def render_dark_screenshot() -> tuple[Any, str]:
    """A dark-mode settings screen: light grey text on near-black, 1080x720."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (1080, 720), (18, 18, 20))
    draw = ImageDraw.Draw(image)
    font = _font(FONT_SANS, 40)
    for number, line in enumerate(DARK_LINES):
        draw.rectangle((30, 40 + 160 * number, 1050, 150 + 160 * number), fill=(34, 34, 38))
        draw.text((70, 72 + 160 * number), line, font=font, fill=(225, 225, 228))
    return image, "\n".join(DARK_LINES)


WEB_HEADER = ("Northwind Travel", "Home", "Trips", "Account")
WEB_SIDEBAR = ("Dashboard", "Bookings", "Invoices", "Settings", "Help centre")
WEB_BODY = (
    "Your next trip",
    "Lisbon, Portugal, from 12 to 19 May.",
    "Flight TP 1351 leaves at 08:40 from gate B12.",
    "Hotel check-in opens at 15:00 on arrival.",
    "Bring your passport and the booking code below.",
)
WEB_BUTTONS = (
    ("Confirm", (0, 122, 255)),
    ("Change dates", (52, 168, 83)),
    ("Cancel", (220, 53, 69)),
)


def render_web_page() -> tuple[Any, str]:
    """A 1280x800 web app page: coloured header bar, grey sidebar, body text, buttons.

    The header bar is dark blue (30, 58, 138) with white text (light on dark, ~60 in
    grayscale); the sidebar light grey (#EEF0F3) with dark grey text; the body black on white
    (DejaVu Sans 22-30 px); three buttons (blue, green, red: mid-greys 90-130 in grayscale)
    with white labels. Returns the image and all its text, in reading order.
    """
    from PIL import Image, ImageDraw

    width, height = 1280, 800
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    title, nav = _font(FONT_SANS_BOLD, 28), _font(FONT_SANS, 22)
    body, heading = _font(FONT_SANS, 22), _font(FONT_SANS_BOLD, 30)
    draw.rectangle((0, 0, width, 72), fill=(30, 58, 138))
    draw.text((32, 36), WEB_HEADER[0], font=title, fill=(255, 255, 255), anchor="lm")
    for number, item in enumerate(WEB_HEADER[1:]):
        draw.text((860 + 130 * number, 36), item, font=nav, fill=(255, 255, 255), anchor="lm")
    draw.rectangle((0, 72, 260, height), fill=(238, 240, 243))
    for number, item in enumerate(WEB_SIDEBAR):
        draw.text((32, 120 + 56 * number), item, font=nav, fill=(55, 65, 81))
    draw.text((310, 110), WEB_BODY[0], font=heading, fill=(0, 0, 0))
    for number, line in enumerate(WEB_BODY[1:]):
        draw.text((310, 180 + 44 * number), line, font=body, fill=(0, 0, 0))
    x = 310
    for label, colour in WEB_BUTTONS:
        label_w = int(draw.textlength(label, font=nav))
        draw.rounded_rectangle((x, 400, x + label_w + 48, 448), radius=8, fill=colour)
        draw.text((x + 24, 424), label, font=nav, fill=(255, 255, 255), anchor="lm")
        x += label_w + 48 + 24
    texts = [WEB_HEADER[0], " ".join(WEB_HEADER[1:]), *WEB_SIDEBAR, *WEB_BODY]
    return image, "\n".join([*texts, " ".join(label for label, _ in WEB_BUTTONS)])


SETTINGS_ROWS = (
    ("Airplane mode", False),
    ("Wi-Fi", True),
    ("Bluetooth", True),
    ("Mobile data", False),
    ("Personal hotspot", False),
    ("Do not disturb", True),
    ("Dark appearance", True),
)


def render_dark_settings() -> tuple[Any, str]:
    """A 1080x1600 phone settings screen in dark mode: grouped rows with toggles.

    Black screen, a large bold title, rows of white text (DejaVu Sans 40 px) on a dark grey
    group panel (#1C1C1E) split by thin rules; each row ends in a toggle, on (green
    (48, 209, 88) track, white knob) or off (grey #39393D track); a grey footnote under the
    group. Returns the image and all its text, in order.
    """
    from PIL import Image, ImageDraw

    width, height = 1080, 1600
    image = Image.new("RGB", (width, height), (0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.text((48, 90), "Settings", font=_font(FONT_SANS_BOLD, 68), fill=(255, 255, 255))
    font, small = _font(FONT_SANS, 40), _font(FONT_SANS, 30)
    top, row_h = 240, 120
    draw.rounded_rectangle(
        (32, top, width - 32, top + row_h * len(SETTINGS_ROWS)), radius=28, fill=(28, 28, 30)
    )
    for number, (label, on) in enumerate(SETTINGS_ROWS):
        y = top + row_h * number
        if number:
            draw.line((80, y, width - 32, y), fill=(56, 56, 58), width=2)
        draw.text((80, y + row_h // 2), label, font=font, fill=(255, 255, 255), anchor="lm")
        track = (48, 209, 88) if on else (57, 57, 61)
        x0, y0 = width - 32 - 48 - 102, y + row_h // 2 - 31
        draw.rounded_rectangle((x0, y0, x0 + 102, y0 + 62), radius=31, fill=track)
        knob = x0 + 71 if on else x0 + 31
        draw.ellipse((knob - 27, y0 + 4, knob + 27, y0 + 58), fill=(255, 255, 255))
    note = "Changes apply to every signed-in device."
    draw.text((48, top + row_h * len(SETTINGS_ROWS) + 30), note, font=small, fill=(142, 142, 147))
    return image, "\n".join(["Settings", *(label for label, _ in SETTINGS_ROWS), note])


def render_textfree_photo(seed: int = 5, size: tuple[int, int] = (1600, 1200)) -> Any:
    """An outdoor-like photo with no writing: sky, foliage and gravel textures, edges, noise.

    Textures with strokes and speckles are what makes OCR engines "read" junk.
    """
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng(seed)
    width, height = size
    ys = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    sky = np.array([120, 160, 215], np.float32) * (1 - ys) + np.array([215, 220, 230]) * ys
    arr = np.broadcast_to(sky, (height, width, 3)).astype(np.float32).copy()
    horizon = int(height * rng.uniform(0.35, 0.6))
    small = rng.random((height // 8 + 1, width // 8 + 1)).astype(np.float32)
    foliage = np.kron(small, np.ones((8, 8), np.float32))[:height, :width]
    leaves = np.stack([40 + 60 * foliage, 70 + 90 * foliage, 30 + 40 * foliage], axis=-1)
    arr[horizon:] = leaves[horizon:]
    image = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(15, 40))):  # branches, poles, fence posts
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        dx, dy = int(rng.integers(-200, 200)), int(rng.integers(-300, 300))
        shade = int(rng.integers(10, 90))
        draw.line((x, y, x + dx, y + dy), fill=(shade, shade, shade), width=int(rng.integers(2, 9)))
    for _ in range(int(rng.integers(20, 60))):  # pebbles and leaves
        x, y = int(rng.integers(0, width)), int(rng.integers(horizon, height))
        r = int(rng.integers(3, 20))
        shade = int(rng.integers(20, 230))
        draw.ellipse((x, y, x + r, y + r * 0.7), fill=(shade, shade - 10, shade - 20))
    image = image.filter(ImageFilter.GaussianBlur(1.0))
    noisy = np.asarray(image, np.float32) + rng.normal(0, 8, (height, width, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")


VALUE_ROWS = (
    ("Wi-Fi", "On"),
    ("Bluetooth", "Off"),
    ("Mobile Data", "On"),
    ("Personal Hotspot", "Off"),
    ("Low Power Mode", "Off"),
    ("Auto-Lock", "On"),
)


def render_settings_values(value_fill: tuple[int, int, int] = (142, 142, 147)) -> tuple[Any, str]:
    """A 1080x1200 dark settings screen whose rows end in a grey value ("On", "Off").

    Black screen, white labels (DejaVu Sans 40 px) left, values (34 px, ``value_fill``)
    right-aligned. Tesseract reads every label at 0.96 and no value at all (a new user's
    trial). Returns the image and its text, one "label value" line per row.
    """
    from PIL import Image, ImageDraw

    width, height = 1080, 1200
    image = Image.new("RGB", (width, height), (0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.text((48, 90), "Settings", font=_font(FONT_SANS_BOLD, 68), fill=(255, 255, 255))
    font, value_font = _font(FONT_SANS, 40), _font(FONT_SANS, 34)
    for number, (label, value) in enumerate(VALUE_ROWS):
        y = 240 + 120 * number + 60
        draw.text((80, y), label, font=font, fill=(255, 255, 255), anchor="lm")
        draw.text((width - 80, y), value, font=value_font, fill=value_fill, anchor="rm")
    lines = ["Settings", *(f"{label} {value}" for label, value in VALUE_ROWS)]
    return image, "\n".join(lines)


def render_banner(
    text: str,
    *,
    font: Path = FONT_CJK,
    size_px: int = 80,
    ground: tuple[int, int, int] = (230, 230, 230),
    ink: tuple[int, int, int] = (40, 40, 40),
) -> tuple[Any, str]:
    """One line of big text on a flat ground, with a margin of half its size: a shop sign.

    Tesseract read "欢迎光临" at 80 px on light grey as "欢迎" (0.97), white on red as
    nothing, and DejaVu Bold "Exit this way" at 90 px as "way" (a new user's trial).
    """
    from PIL import Image, ImageDraw

    face = _font(font, size_px)
    left, top, right, bottom = face.getbbox(text)
    margin = size_px // 2
    image = Image.new("RGB", (right - left + 2 * margin, bottom - top + 2 * margin), ground)
    ImageDraw.Draw(image).text((margin - left, margin - top), text, font=face, fill=ink)
    return image, text


PRICE_LINES = ("欢迎光临", "咖啡 ¥12.50", "茶 ¥8.00", "营业时间 9:00-18:00")


def render_price_sign_photo(size: tuple[int, int] = (2016, 1512), seed: int = 4) -> tuple[Any, str]:
    """A 3 MP photo of a Chinese price list (``PRICE_LINES``): fall-off, 2 deg tilt, noise.

    Tesseract reads it at 0.92 but drops "¥8.00" (read "Y8.00", 0.68) and reads "¥12.50" as
    "Y12.50": a sure read that leaves a price out (a new user's trial, where a sign like it
    lost "咖啡 ¥12.50").
    """
    from PIL import Image, ImageDraw

    width, height = size
    image = Image.new("RGB", size, (92, 88, 80))
    draw = ImageDraw.Draw(image)
    draw.rectangle((width // 10, height // 8, width - width // 10, height - height // 8),
                   fill=(238, 236, 228))  # fmt: skip
    y = height * 5 // 27
    for number, line in enumerate(PRICE_LINES):
        font = _font(FONT_CJK, height // 10 if number == 0 else height // 15)
        draw.text((width * 4 // 25, y), line, font=font, fill=(22, 24, 30))
        y += int(font.size * 1.6)
    photo = _photo_effects(image, np.random.default_rng(seed), tilt_deg=2.0, falloff=0.5, noise=8.0)
    return photo, "\n".join(PRICE_LINES)
