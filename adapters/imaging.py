"""Opening user images safely: one loader shared by every image adapter.

``load_image`` turns any file Pillow reads (PNG, JPEG, WebP, TIFF, BMP, GIF's first frame;
CMYK, 16-bit, palette, alpha) into an upright 8-bit RGB image, and turns every way a file
can be unusable into an ``InputError`` that names the file and says what to do.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from adapters.errors import InputError

DEFAULT_MAX_PIXELS = 50_000_000
DEFAULT_MAX_BYTES = 100 * 1024 * 1024

_MAGIC = (
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"RIFF", "a RIFF file (WAV or AVI?)"),
    (b"ID3", "an MP3 audio file"),
    (b"OggS", "an Ogg audio file"),
    (b"fLaC", "a FLAC audio file"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"<svg", "an SVG drawing (vector images are not supported; export a PNG)"),
    (b"<?xml", "an XML file"),
)


_IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


def _image_format(head: bytes) -> str | None:
    """The image format ``head`` starts like, or None."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    if head[:2] == b"BM" and head[6:10] == b"\x00\x00\x00\x00":  # reserved fields are zero
        return "BMP"
    return next((fmt for magic, fmt in _IMAGE_MAGIC if head.startswith(magic)), None)


def _describe_content(head: bytes) -> str:
    """A guess at what a non-image file is, for the error message."""
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return what
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not just a character cut at the end of ``head``
            return "binary data in no image format Pillow knows"
        text = head[: exc.start].decode("utf-8")
    if any(ch < " " and ch not in "\t\n\r" for ch in text):
        return "binary data in no image format Pillow knows"
    return "a text file"


def check_file(path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> int:
    """Fail with an ``InputError`` unless ``path`` is a readable, non-empty regular file."""
    if not path.exists():
        raise InputError(path, "file not found")
    if path.is_dir():
        raise InputError(path, "is a directory, not a file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(path, f"cannot read the file ({exc.strerror})") from exc
    if size == 0:
        raise InputError(path, "file is empty (0 bytes)")
    if size > max_bytes:
        raise InputError(
            path, f"file is {size / 2**20:.0f} MiB, over the {max_bytes / 2**20:.0f} MiB limit"
        )
    return size


def load_image(
    path: str | Path,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Image.Image:
    """Open ``path`` as an upright 8-bit RGB image, or raise ``InputError`` saying why not."""
    path = Path(path)
    check_file(path, max_bytes=max_bytes)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise InputError(path, f"refused as a decompression bomb ({exc})") from exc
    except UnidentifiedImageError as exc:
        head = path.read_bytes()[:64]
        fmt = _image_format(head)
        if fmt is not None:  # the header is cut short or damaged
            raise InputError(
                path, f"{fmt} image is truncated or corrupt; re-export or re-download it"
            ) from exc
        raise InputError(
            path,
            f"not an image file: looks like {_describe_content(head)}; "
            "use PNG, JPEG, WebP, TIFF, BMP or GIF",
        ) from exc
    except OSError as exc:
        raise InputError(path, f"cannot open the image ({exc})") from exc

    with image:
        width, height = image.size
        if width * height > max_pixels:
            raise InputError(
                path,
                f"image is {width}x{height} = {width * height:,} pixels, over the limit of "
                f"{max_pixels:,} (NARRATE_MAX_IMAGE_PIXELS); refused as a possible "
                "decompression bomb — downscale it or raise the limit",
            )
        if width == 0 or height == 0:
            raise InputError(path, "image has no pixels (0 width or height)")
        try:
            image.seek(0)  # GIF, APNG, multi-page TIFF: the first frame
            image.load()
            upright = ImageOps.exif_transpose(image) or image
            return to_rgb(upright)
        except (OSError, SyntaxError, ValueError) as exc:
            raise InputError(
                path, f"image data is truncated or corrupt ({exc}); re-export or re-download it"
            ) from exc


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB; transparency is laid on white, as viewers show it."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(image, dtype=np.float64)
        top = arr.max() if arr.size else 0.0
        scale = 255.0 / 65535.0 if top > 255 else 1.0  # values <= 255 are 8-bit data
        gray = np.clip(arr * scale, 0, 255).astype(np.uint8)
        return Image.fromarray(gray, mode="L").convert("RGB")
    if mode == "F":
        arr = np.asarray(image, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        norm = (arr - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(arr)
        return Image.fromarray(norm.astype(np.uint8), mode="L").convert("RGB")
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode == "RGB":
        return image.copy()
    return image.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV
