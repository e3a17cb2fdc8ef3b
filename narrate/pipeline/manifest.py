"""The batch manifest: which images are finished, keyed by content and output-shaping settings.

``<out>/manifest.jsonl`` holds one JSON object per finished (or failed) item. Every append
is one ``write`` of a whole line, flushed and fsynced, so a process killed at any moment
(even by SIGKILL) leaves at most one torn last line, which the next run cuts off. Only the
flow's driver appends; workers never write here (they may run on other machines).

A record's ``key`` is ``<sha256 of the image bytes>-<settings fingerprint>``: changing an
image's pixels or a setting that changes the output (backend, model, language, sampling,
voice, speaking rate) gives it a new one. An item is finished when a record of its key *and*
its ``item`` says so: two byte-identical images under different names share a key, but each
is finished only by its own record, with its own outputs.

Descriptions finished before the item itself are kept as *checkpoints*
(``<out>/.narrate/descriptions/<key>.json``, written atomically by whoever made the LLM
call): a run killed between the LLM call and the end of the item resumes without asking the
LLM again.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.files import write_json_atomic
from adapters.llm.base import Description, Usage
from narrate.config.settings import Settings
from narrate.pipeline.results import to_jsonable

MANIFEST_NAME = "manifest.jsonl"
STATE_DIR = ".narrate"


def output_settings(settings: Settings, lang: str) -> dict[str, Any]:
    """The settings that change what a batch item produces (its description or its audio)."""
    llm = settings.llm
    return {
        "backend": llm.resolved_backend,
        "model": llm.model if llm.resolved_backend != "offline" else "offline",
        "lang": lang,
        "temperature": llm.temperature,
        "top_p": llm.top_p,
        "max_tokens": llm.max_tokens,
        "tts_rate": settings.tts.rate_wpm,  # the stored key stays: fingerprints must not change
        "voice_en": settings.tts.voice_en,
        "voice_zh": settings.tts.voice_zh,
    }


def settings_fingerprint(settings: Settings, lang: str) -> str:
    """A short, stable hash of ``output_settings``."""
    text = json.dumps(output_settings(settings, lang), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Finished:
    """What the manifest remembers about a finished item: where its outputs went."""

    item: str  # the input as the user named it
    name: str  # the output stem relative to out_dir, e.g. "receipt" or "scans/receipt"


class Manifest:
    """Append-only record of finished items in ``<out_dir>/manifest.jsonl``.

    Loading keeps only what resuming needs: (key, item) -> ``Finished`` for the items that
    finished well, and output name -> source item for every name already taken.
    """

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / MANIFEST_NAME
        self.finished: dict[tuple[str, str], Finished] = {}
        self.names: dict[str, str] = {}
        self._lock = threading.Lock()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        with open(self.path, "rb+") as fh:
            data = fh.read()
            end = data.rfind(b"\n") + 1
            if end != len(data):  # a torn last line from a killed run: cut it off
                fh.truncate(end)
        for line in data[:end].splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not isinstance(record, dict) or "key" not in record:
                continue
            name, item = str(record.get("name", "")), str(record.get("item", ""))
            if name:
                self.names[name] = item
            if record.get("status") == "ok":
                self.finished[str(record["key"]), item] = Finished(item=item, name=name)
            else:
                self.finished.pop((str(record["key"]), item), None)

    def append(self, record: dict[str, Any]) -> None:
        """Append one record as a line; flushed and fsynced before returning."""
        line = json.dumps(to_jsonable(record), ensure_ascii=False) + "\n"
        with self._lock:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
            name, item = str(record.get("name", "")), str(record.get("item", ""))
            if name:
                self.names[name] = item
            if record.get("status") == "ok":
                self.finished[str(record["key"]), item] = Finished(item=item, name=name)

    def done(self, key: str, item: str) -> Finished | None:
        """The finished record of ``item`` under ``key`` when its JSON still exists, else ``None``.

        Args:
            key: ``<sha256 of the image bytes>-<settings fingerprint>``.
            item: the input as the user named it; a byte-identical image under another name
                is not finished by this one's record.
        """
        found = self.finished.get((key, item))
        if found and (self.out_dir / f"{found.name}.json").is_file():
            return found
        return None

    # -- description checkpoints -----------------------------------------------------------

    def checkpoint_path(self, key: str) -> Path:
        """Where the description of ``key`` is kept until its item is recorded."""
        return checkpoint_path(self.out_dir, key)

    def drop_checkpoint(self, key: str) -> None:
        """Forget the description checkpoint of a recorded item."""
        self.checkpoint_path(key).unlink(missing_ok=True)


def checkpoint_path(out_dir: Path, key: str) -> Path:
    """``<out_dir>/.narrate/descriptions/<key>.json``: a description kept for resuming."""
    return Path(out_dir) / STATE_DIR / "descriptions" / f"{key}.json"


def save_description(path: Path, description: Description) -> None:
    """Keep a finished description on disk (atomically) so a resumed run can reuse it."""
    write_json_atomic(path, {"saved": time.time(), **to_jsonable(description)})


def load_description(path: Path) -> Description | None:
    """The description saved at ``path``, or ``None`` when there is none or it is unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        data.pop("saved", None)
        usage = data.get("usage")
        data["usage"] = Usage(**usage) if isinstance(usage, dict) else None
        for name in ("endpoints_tried", "fallback_from"):
            data[name] = tuple(data.get(name) or ())
        return Description(**data)
    except (OSError, ValueError, TypeError):
        return None
