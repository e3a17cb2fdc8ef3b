"""Bad input files every reader must refuse with one line that names the file."""

from __future__ import annotations

from pathlib import Path

BAD_IMAGES: dict[str, bytes | None] = {
    "missing.png": None,  # no such file
    "empty.png": b"",
    "notes.png": b"this is not a picture\n",
}


def write_bad_image(folder: Path, name: str) -> Path:
    """``folder / name`` made as ``BAD_IMAGES[name]`` says (not written when ``None``)."""
    path = folder / name
    content = BAD_IMAGES[name]
    if content is not None:
        path.write_bytes(content)
    return path


def assert_names_the_file(error: Exception, path: Path) -> None:
    """``error`` is one line a person can act on, and it names ``path``'s file."""
    assert path.name in str(error), error
    assert "\n" not in str(error), error
