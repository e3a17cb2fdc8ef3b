"""Files narrate ships: sample images and audio, and the prompt templates."""

from __future__ import annotations

from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parent
PROMPTS_DIR = ASSETS_DIR / "prompts"
SAMPLES_DIR = ASSETS_DIR / "samples"
