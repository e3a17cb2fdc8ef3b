"""Opening user images safely: one loader shared by every image adapter.

``load_image`` turns any file Pillow reads (PNG, JPEG, WebP, TIFF, BMP, GIF's first frame;
CMYK, 16-bit, palette, alpha) into an upright 8-bit RGB image, and turns every way a file
can be unusable into an ``InputError`` that names the file and says what to do.

TIFF variants that Pillow cannot open or decodes wrongly (planar 16-bit RGB, floating-point
samples, extra channels) are read with ``tifffile``, the reference TIFF reader in Python
(cgohlke/tifffile); a TIFF neither can decode fails with a message naming its variant.
Transparency is laid on a ground that contrasts with what is drawn: light content (white
text on a transparent background) on black, anything else on white.
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
        if fmt == "TIFF":
            return _check_pixels(path, load_tiff(path), max_pixels)
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
        if image.format == "TIFF" and _pillow_misreads_tiff(path):
            return _check_pixels(path, load_tiff(path), max_pixels)
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
            if image.format == "TIFF":  # a variant Pillow cannot decode: tifffile, or its name
                return _check_pixels(path, load_tiff(path), max_pixels)
            raise InputError(
                path, f"image data is truncated or corrupt ({exc}); re-export or re-download it"
            ) from exc


def _check_pixels(path: Path, image: Image.Image, max_pixels: int) -> Image.Image:
    """``image`` (already 8-bit RGB), unless it is over the pixel limit or empty."""
    width, height = image.size
    if width * height > max_pixels:
        raise InputError(
            path,
            f"image is {width}x{height} = {width * height:,} pixels, over the limit of "
            f"{max_pixels:,} (NARRATE_MAX_IMAGE_PIXELS); downscale it or raise the limit",
        )
    if width == 0 or height == 0:
        raise InputError(path, "image has no pixels (0 width or height)")
    return image


def _pillow_misreads_tiff(path: Path) -> bool:
    """True for TIFF variants Pillow opens but decodes wrongly: planar data over 8 bits."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            return bool(page.planarconfig == 2 and page.bitspersample > 8)
    except Exception:
        return False


def _tiff_variant(page: object) -> str:
    """A short description of a TIFF page's variant, for error messages."""
    parts = []
    for attr, label in (
        ("compression", "compression"),
        ("photometric", "photometric"),
        ("planarconfig", "planar configuration"),
        ("bitspersample", "bits per sample"),
        ("samplesperpixel", "samples per pixel"),
        ("sampleformat", "sample format"),
    ):
        value = getattr(page, attr, None)
        if value is not None:
            name = getattr(value, "name", None)
            parts.append(f"{label} {name or value}" + (f" ({int(value)})" if name else ""))
    return ", ".join(parts)


def load_tiff(path: Path) -> Image.Image:
    """Read the first page of a TIFF with tifffile as 8-bit RGB.

    Planar (PlanarConfiguration 2) and chunky data, 8/16/32-bit integer and floating-point
    samples, gray, RGB and RGB with extra channels are handled.

    Args:
        path: the TIFF file.

    Returns:
        The image, 8-bit RGB (alpha laid on a contrasting ground).

    Raises:
        InputError: tifffile cannot decode it either; the message names the variant.
    """
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            variant = _tiff_variant(page)
            try:
                data = page.asarray()
            except Exception as exc:
                raise InputError(
                    path,
                    f"TIFF variant not supported ({variant}): {exc}; convert it to PNG "
                    "(e.g. `convert in.tif out.png`)",
                ) from exc
            planar = page.planarconfig == 2
            photometric = int(page.photometric)
            extra = tuple(int(e) for e in getattr(page, "extrasamples", ()) or ())
    except InputError:
        raise
    except Exception as exc:
        raise InputError(
            path, f"TIFF file is truncated or damaged ({exc}); re-export or re-download it"
        ) from exc
    arr = np.asarray(data)
    if planar and arr.ndim == 3:
        arr = np.moveaxis(arr, 0, -1)
    arr = _to_uint8(arr)
    if photometric == 0:  # MINISWHITE
        arr = 255 - arr
    if arr.ndim == 2:
        return Image.fromarray(arr, mode="L").convert("RGB")
    if arr.ndim != 3:
        raise InputError(path, f"TIFF with {arr.ndim} dimensions is not an image; use PNG")
    samples = arr.shape[2]
    if samples >= 4 and extra and extra[0] in (1, 2):  # associated/unassociated alpha
        return to_rgb(Image.fromarray(np.ascontiguousarray(arr[..., :4]), mode="RGBA"))
    if samples >= 3:
        return Image.fromarray(np.ascontiguousarray(arr[..., :3]), mode="RGB")
    return Image.fromarray(np.ascontiguousarray(arr[..., 0]), mode="L").convert("RGB")


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    """Scale integer or floating-point samples to 8 bits."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype.kind == "f":
        values = np.nan_to_num(arr.astype(np.float64))
        lo, hi = float(values.min()), float(values.max())
        if lo >= 0 and hi <= 1:  # the usual 0-1 convention
            return np.round(values * 255).astype(np.uint8)
        scaled = (values - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(values)
        return scaled.astype(np.uint8)
    if arr.dtype.kind in "iu":
        info = np.iinfo(arr.dtype)
        values = arr.astype(np.float64) - (info.min if info.min < 0 else 0)
        return np.round(values * 255 / (info.max - min(info.min, 0))).astype(np.uint8)
    return arr.astype(np.uint8)


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB.

    Transparency is laid on a ground that contrasts with what is drawn: black when the
    visible pixels are mostly light (white text on a transparent background), else white,
    as viewers show it.
    """
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
        background = Image.new("RGBA", rgba.size, _contrasting_ground(rgba))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode == "RGB":
        return image.copy()
    return image.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV


def _contrasting_ground(rgba: Image.Image) -> tuple[int, int, int, int]:
    """Black when the visible (alpha > 50%) pixels are mostly light and some are transparent."""
    arr = np.asarray(rgba)
    visible = arr[..., 3] > 127
    if visible.all() or not visible.any():
        return (255, 255, 255, 255)
    luma = arr[..., :3][visible].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return (0, 0, 0, 255) if float(np.median(luma)) > 160 else (255, 255, 255, 255)
