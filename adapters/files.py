"""Files written whole or not at all, and files identified by their bytes.

Every writer in narrate that replaces a file a reader may be looking at (result JSON, the
batch summary, imported model checkpoints) goes through ``atomic_write``: the data goes to
a temporary file in the target's folder, is flushed to disk, then renamed over the target
(``os.replace`` is atomic on POSIX within one filesystem), so a reader sees the old file or
the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Literal, overload

BLOCK_BYTES = 1 << 20  # files are hashed in 1 MiB blocks


@overload
@contextmanager
def atomic_write(
    path: str | Path,
    *,
    binary: Literal[False] = ...,
    newline: str | None = ...,
    mode: int | None = ...,
) -> Iterator[IO[str]]: ...
@overload
@contextmanager
def atomic_write(
    path: str | Path, *, binary: Literal[True], newline: str | None = ..., mode: int | None = ...
) -> Iterator[IO[bytes]]: ...
@contextmanager
def atomic_write(
    path: str | Path, *, binary: bool = False, newline: str | None = None, mode: int | None = None
) -> Iterator[IO[Any]]:
    """Open a file that replaces ``path`` only when the ``with`` block ends without error.

    Args:
        path: the file to write; its folder is created if missing.
        binary: open in binary mode instead of UTF-8 text.
        newline: passed to ``open`` for text (``""`` for the csv module).
        mode: the file's permission bits, e.g. ``0o640``; default what the process umask
            gives any new file (0644 under the usual umask 022), as for a WAV the TTS
            engine writes, so all outputs share one mode.

    Yields:
        The open temporary file.

    Raises:
        OSError: the folder cannot be written. On any error the temporary file is removed
            and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not mkstemp: it creates 0600 files. O_EXCL with a random name is as safe, and 0o666
    # lets the kernel apply the umask.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        if binary:
            fh: IO[Any] = os.fdopen(fd, "wb")
        else:
            fh = os.fdopen(fd, "w", encoding="utf-8", newline=newline)
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(path: str | Path, data: Any, *, mode: int | None = None) -> None:
    """Write ``data`` as indented UTF-8 JSON (non-ASCII kept as is), atomically.

    Args:
        path: the JSON file.
        data: plain JSON types.
        mode: the file's permission bits; default the umask's (see ``atomic_write``).

    Raises:
        OSError: the folder cannot be written.
        TypeError: ``data`` holds something JSON cannot represent.
    """
    with atomic_write(path, mode=mode) as fh:
        json.dump(data, fh, ensure_ascii=False, indent=2)
        fh.write("\n")


def set_file_mode(path: str | Path, mode: int | None) -> None:
    """Give ``path`` the permission bits ``mode``; ``None`` leaves the umask's.

    Args:
        path: a file this process wrote (a WAV, say).
        mode: e.g. ``0o640`` (``NARRATE_OUTPUT_FILE_MODE``), or ``None``.

    Raises:
        OSError: the file is missing or not ours to change.
    """
    if mode is not None:
        os.chmod(path, mode)


def source_digest(root: Path) -> str:
    """SHA-256 (hex, 16 characters) of the ``*.py`` files under ``root``: names and bytes.

    Raises:
        OSError: a source file cannot be read.
    """
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def file_sha256(path: str | Path) -> str | None:
    """The hex SHA-256 of a file's bytes, or None when the file cannot be read."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(BLOCK_BYTES), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()
