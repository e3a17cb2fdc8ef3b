"""The batch manifest and the settings fingerprint (narrate/pipeline/manifest.py)."""

from __future__ import annotations

import json
from pathlib import Path

from narrate.config.settings import Settings
from narrate.pipeline.manifest import Manifest, output_settings, settings_fingerprint


def test_manifest_survives_a_torn_last_line(tmp_path: Path) -> None:
    manifest = Manifest(tmp_path)
    manifest.append({"key": "k1", "status": "ok", "item": "a.png", "name": "a"})
    (tmp_path / "a.json").write_text("{}")
    with open(manifest.path, "a") as fh:
        fh.write('{"key": "k2", "status": "o')  # what SIGKILL mid-write leaves

    again = Manifest(tmp_path)
    assert again.done("k1", "a.png") is not None and again.done("k2", "a.png") is None
    again.append({"key": "k3", "status": "ok", "item": "b.png", "name": "b"})
    lines = manifest.path.read_text().splitlines()
    assert [json.loads(line)["key"] for line in lines] == ["k1", "k3"]


def test_fingerprint_follows_the_settings_that_change_the_output() -> None:
    base = Settings()
    warmer = base.model_copy(update={"llm": base.llm.model_copy(update={"temperature": 0.9})})
    slower = base.model_copy(update={"tts": base.tts.model_copy(update={"rate_wpm": 120})})
    timeout = base.model_copy(update={"llm": base.llm.model_copy(update={"timeout_s": 5.0})})
    prints = {settings_fingerprint(s, "auto") for s in (base, warmer, slower)}
    assert len(prints) == 3
    assert settings_fingerprint(base, "en") != settings_fingerprint(base, "auto")
    assert settings_fingerprint(timeout, "auto") == settings_fingerprint(base, "auto")


def test_the_fingerprint_keeps_its_stored_keys() -> None:
    # TTSSettings.rate became rate_wpm; the manifest's key must not, or every finished item
    # of an existing batch would look unfinished after the upgrade
    settings = Settings()
    slower = settings.model_copy(update={"tts": settings.tts.model_copy(update={"rate_wpm": 99})})
    assert output_settings(slower, "auto")["tts_rate"] == 99
    assert set(output_settings(settings, "auto")) == {
        "backend", "model", "lang", "temperature", "top_p", "max_tokens", "tts_rate",
        "voice_en", "voice_zh",
    }  # fmt: skip
