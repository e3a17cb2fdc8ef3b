"""Uploaded files: stored under names the server picks, sniffed by content, checked like the CLI.

A client's file name is only ever shown (sanitised) in messages and results; on disk an
upload is ``<job dir>/image.<ext>`` or ``question.<ext>`` with the extension of the format its
first bytes announce. Validation reuses the loaders the pipeline uses (``load_image``,
``load_audio``), so the reasons are the CLI's, word for word, with the file's own name
leading them. Not an image (or not audio) by content -> 415; empty, truncated, corrupt,
decompression bomb, silent -> 422.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Literal

from adapters.errors import ConfigError, InputError
from narrate.service.errors import ApiError

Kind = Literal["image", "audio"]

# (magic at offset 0, extension); WebP and WAV need a second look at bytes 8-12.
_IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", ".png"),
    (b"\xff\xd8\xff", ".jpg"),
    (b"GIF87a", ".gif"),
    (b"GIF89a", ".gif"),
    (b"II*\x00", ".tif"),
    (b"MM\x00*", ".tif"),
)
_AUDIO_MAGIC = ((b"fLaC", ".flac"), (b"OggS", ".ogg"), (b"ID3", ".mp3"), (b"FORM", ".aiff"))


def sniff(head: bytes) -> tuple[Kind, str] | None:
    """What the first bytes of a file announce: ``("image", ".png")``, ``("audio", ".wav")``.

    Args:
        head: at least the first 12 bytes of the file.

    Returns:
        The kind and a file extension, or None for anything else (text, PDF, ZIP, ...).
    """
    if head[:4] in (b"RIFF", b"RF64"):
        if head[8:12] == b"WEBP":
            return "image", ".webp"
        if head[8:12] == b"WAVE":
            return "audio", ".wav"
        return None
    if head[:2] == b"BM" and head[6:10] == b"\x00\x00\x00\x00":  # BMP: reserved fields zero
        return "image", ".bmp"
    for magic, ext in _IMAGE_MAGIC:
        if head.startswith(magic):
            return "image", ext
    for magic, ext in _AUDIO_MAGIC:
        if head.startswith(magic):
            return "audio", ext
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:  # an MPEG audio frame
        return "audio", ".mp3"
    return None


_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")


def display_name(filename: str | None, default: str) -> str:
    """The client's file name, for messages only.

    Args:
        filename: what the client sent, e.g. ``../../etc/passwd`` or a Windows path.
        default: the name to show when nothing is left.

    Returns:
        The last path part, without control characters, at most 120 characters.
    """
    name = PurePosixPath((filename or "").replace("\\", "/")).name
    name = _UNSAFE.sub("", name).strip()[:120]
    return name or default


@dataclass(frozen=True)
class StoredUpload:
    """An upload saved in a job's folder."""

    path: Path  # server-chosen name
    name: str  # the client's name, sanitised, for messages and results
    kind: Kind | None  # what its content announces
    size: int


def store(source: BinaryIO, directory: Path, stem: str, filename: str | None) -> StoredUpload:
    """Copy an upload into ``directory`` as ``<stem><ext>``, the extension by content.

    Args:
        source: the upload's file object (read from its current position).
        directory: the job's folder (created by the caller).
        stem: ``image`` or ``question``.
        filename: what the client called the file (shown, never used as a path).

    Returns:
        Where it is, its display name, the kind its first bytes announce, and its size.
    """
    head = source.read(64)
    found = sniff(head)
    path = directory / f"{stem}{found[1] if found else '.bin'}"
    with path.open("xb") as out:  # the job's folder is new: an existing name is a bug
        out.write(head)
        shutil.copyfileobj(source, out, 1024 * 1024)
        size = out.tell()
    default = "image" if stem == "image" else "audio"
    return StoredUpload(path, display_name(filename, default), found[0] if found else None, size)


def _reason(exc: InputError, upload: StoredUpload) -> str:
    """The loader's one-line reason with the client's name in place of the server's path."""
    return f"{upload.name}: {exc.reason}"


def check_image(upload: StoredUpload, *, max_pixels: int, max_bytes: int) -> None:
    """Open the image as the pipeline will; fail with the CLI's reason.

    Args:
        upload: the stored upload.
        max_pixels: ``NARRATE_MAX_IMAGE_PIXELS``.
        max_bytes: the largest file accepted.

    Raises:
        ApiError: 415 when the content is no image format, 422 when it is empty,
            truncated, corrupt or a decompression bomb.
    """
    from adapters.imaging import load_image

    try:
        load_image(upload.path, max_pixels=max_pixels, max_bytes=max_bytes).close()
    except InputError as exc:
        status = 415 if upload.size > 0 and upload.kind != "image" else 422
        raise ApiError(status, _reason(exc, upload)) from None


def check_audio(upload: StoredUpload, *, max_bytes: int) -> None:
    """Decode the question's audio as the transcriber will; fail with the CLI's reason.

    Args:
        upload: the stored upload.
        max_bytes: the largest file accepted.

    Raises:
        ApiError: 415 when the content is no audio format, 422 when it is empty,
            corrupt, silent or too long, 501 when the server cannot read audio at all.
    """
    try:
        from adapters.asr.audio import load_audio

        load_audio(upload.path, max_bytes=max_bytes)
    except InputError as exc:
        status = 415 if upload.size > 0 and upload.kind != "audio" else 422
        raise ApiError(status, _reason(exc, upload)) from None
    except (ConfigError, ImportError) as exc:
        raise ApiError(
            501, f"this server cannot take spoken questions ({exc}); type the question instead"
        ) from None
