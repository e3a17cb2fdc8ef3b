"""Images that carry one word each, and the loopback LLM server's requests counted per word.

Each test image carries its own word (ALPHA, BRAVO, ...), which OCR reads and the prompt
quotes, so the requests the fake server received can be attributed to images. Shared by the
batch, budget and monitoring tests.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from tests.support.fake_llm import FakeLLMServer

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


def text_image(path: Path, word: str) -> Path:
    """A PNG with ``word`` and a number in large black letters (tesseract reads it exactly)."""
    image = Image.new("RGB", (640, 160), "white")
    ImageDraw.Draw(image).text(
        (30, 40), f"{word} NOTE 42", fill="black", font=ImageFont.truetype(FONT, 60)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def requests_for(fake: FakeLLMServer, word: str) -> list[float]:
    """Arrival times of the chat requests whose prompt quotes ``word``."""
    return [r.time for r in fake.requests if word in r.raw.decode("utf-8", "replace")]


def use_fake_llm(monkeypatch: pytest.MonkeyPatch, fake: FakeLLMServer) -> None:
    """Send this test's LLM calls to ``fake``, unthrottled and uncached (real calls only)."""
    monkeypatch.setenv("NARRATE_LLM_BACKEND", "openai")
    monkeypatch.setenv("NARRATE_LLM_BASE_URL", fake.base_url)
    monkeypatch.setenv("NARRATE_LLM_QPS", "0")
    monkeypatch.setenv("NARRATE_CACHE_BACKEND", "off")  # count real calls only


def read_csv(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file with a header line."""
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))
