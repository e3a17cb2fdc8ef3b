"""adapters/files.py: atomic writes leave the old file or the new one, never half of one."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from adapters.files import atomic_write, file_sha256, set_file_mode, write_json_atomic


def test_write_json_atomic_writes_utf8_and_creates_the_folder(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "r.json"
    write_json_atomic(target, {"text": "这是 Harbour Bakery", "n": 1})
    assert json.loads(target.read_text(encoding="utf-8")) == {"text": "这是 Harbour Bakery", "n": 1}
    assert "这是" in target.read_text(encoding="utf-8")  # not \\u escapes
    assert [p.name for p in target.parent.iterdir()] == ["r.json"]  # no temporary left


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "summary.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_write(target) as fh:
        fh.write("half of the new")
        raise RuntimeError("disk on fire")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.csv"]


def test_binary_mode_and_json_that_cannot_be_written(tmp_path: Path) -> None:
    with atomic_write(tmp_path / "m.bin", binary=True) as fh:
        fh.write(b"\x00\x01")
    assert (tmp_path / "m.bin").read_bytes() == b"\x00\x01"
    with pytest.raises(TypeError):
        write_json_atomic(tmp_path / "x.json", {"bad": object()})
    assert not (tmp_path / "x.json").exists()


def test_file_sha256_is_the_content_hash_or_none(tmp_path: Path) -> None:
    data = b"narrate" * 300_000  # over one read block
    path = tmp_path / "f"
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()
    assert file_sha256(tmp_path / "missing") is None


def test_json_gets_the_umask_mode_or_the_configured_one(tmp_path: Path) -> None:
    umask = os.umask(0o027)
    try:
        write_json_atomic(tmp_path / "a.json", {"a": 1})
        wav = tmp_path / "a.wav"
        wav.write_bytes(b"RIFF")  # as the TTS engine creates it: open() under the umask
        assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o640
        assert wav.stat().st_mode & 0o777 == 0o640

        write_json_atomic(tmp_path / "b.json", {"b": 2}, mode=0o604)
        set_file_mode(wav, 0o604)
        assert (tmp_path / "b.json").stat().st_mode & 0o777 == 0o604
        assert wav.stat().st_mode & 0o777 == 0o604
        assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    finally:
        os.umask(umask)
