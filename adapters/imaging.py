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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from adapters.errors import InputError

# Images with more pixels are refused as possible decompression bombs. 120 M lets the
# largest common phone photos through (50 MP: 8160x6144 = 50.1 M, 108 MP: 12000x9000) and
# stays under Pillow's own refusal (2 x Image.MAX_IMAGE_PIXELS, ~179 M). Measured here: a
# 50 MP JPEG described in 2.3 s at 133 MiB peak (decoded reduced), as a PNG 11 s, 549 MiB.
# narrate.config.settings repeats the number (settings import no imaging code).
DEFAULT_MAX_PIXELS = 120_000_000
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
        raise InputError(path, f"file is {_bytes(size)}, over the {_bytes(max_bytes)} limit")
    return size


def _bytes(n: int) -> str:
    """``n`` bytes for a person: ``512 bytes``, ``446 KiB``, ``120 MiB``."""
    for unit, scale in (("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.0f} {unit}"
    return f"{n} bytes"


@dataclass(frozen=True)
class Decoded:
    """An upright image as decoded, possibly at a reduced resolution, and its full size."""

    image: Image.Image  # 8-bit RGB or L, upright (EXIF orientation applied)
    full_size: tuple[int, int]  # (width, height) of the whole upright image, in pixels

    @property
    def scale(self) -> float:
        """Decoded pixels per full-size pixel: 1, or 1/2, 1/4, 1/8 for a reduced JPEG."""
        return self.image.width / self.full_size[0]


def load_image(
    path: str | Path,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Image.Image:
    """Open ``path`` as an upright 8-bit RGB image, or raise ``InputError`` saying why not."""
    return decode_image(path, max_pixels=max_pixels, max_bytes=max_bytes).image


def decode_image(
    path: str | Path,
    *,
    mode: str = "RGB",
    min_pixels: int = 0,
    min_side: int = 0,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Decoded:
    """Open ``path`` as an upright 8-bit image, decoding a JPEG at a reduced size when asked.

    A JPEG can be decoded at 1/2, 1/4 or 1/8 of its size by scaling its DCT blocks
    (libjpeg's ``scale_num/scale_denom``, Pillow's ``Image.draft``), which costs a fraction
    of a full decode followed by a resize; in mode ``L`` only the luma is decoded. The
    largest reduction that keeps at least ``min_pixels`` pixels and a longest side of at
    least ``min_side`` is used; other formats are decoded whole. Size limits apply to the
    file's full size.

    Args:
        path: the image file.
        mode: ``RGB``, or ``L`` for 8-bit grayscale (ITU-R 601 luma).
        min_pixels: the fewest pixels the decoded image may have (0: no reduction).
        min_side: the shortest the decoded image's longest side may be (0: no reduction).
        max_pixels: images with more pixels are refused (decompression bombs).
        max_bytes: larger files are refused.

    Returns:
        The upright image (transparency laid on a contrasting ground) and its full size.

    Raises:
        InputError: the file is missing, empty, too large, not an image, or corrupt.
    """
    if mode not in ("RGB", "L"):
        raise ValueError(f"mode must be RGB or L, got {mode!r}")
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
            return _whole(_check_pixels(path, load_tiff(path), max_pixels), mode)
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

    with image:  # closes the file; the decoded pixels stay usable
        if image.format == "TIFF" and _pillow_misreads_tiff(path):
            return _whole(_check_pixels(path, load_tiff(path), max_pixels), mode)
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
            turned = image.getexif().get(_EXIF_ORIENTATION, 1) in (5, 6, 7, 8)
            if image.format == "JPEG" and (min_pixels or min_side):
                reduction = _jpeg_reduction(width, height, min_pixels, min_side)
                if reduction > 1:
                    wanted = (-(-width // reduction), -(-height // reduction))
                    image.draft(mode, wanted)
            image.seek(0)  # GIF, APNG, multi-page TIFF: the first frame
            image.load()
            ImageOps.exif_transpose(image, in_place=True)
            full = (height, width) if turned else (width, height)
            return Decoded(_as_mode(image, mode), full)
        except (OSError, SyntaxError, ValueError) as exc:
            if image.format == "TIFF":  # a variant Pillow cannot decode: tifffile, or its name
                return _whole(_check_pixels(path, load_tiff(path), max_pixels), mode)
            raise InputError(
                path, f"image data is truncated or corrupt ({exc}); re-export or re-download it"
            ) from exc


_EXIF_ORIENTATION = 0x0112  # values 5-8 turn the image a quarter: width and height swap


def _jpeg_reduction(width: int, height: int, min_pixels: int, min_side: int) -> int:
    """The largest of 8, 4, 2, 1 that keeps ``min_pixels`` pixels and ``min_side``."""
    for reduction in (8, 4, 2):
        w, h = -(-width // reduction), -(-height // reduction)
        if w * h >= min_pixels and max(w, h) >= min_side:
            return reduction
    return 1


def _as_mode(image: Image.Image, mode: str) -> Image.Image:
    """``image`` in 8-bit ``mode`` (RGB or L), itself when it already is."""
    if image.mode == mode:
        return image
    if mode == "L" and image.mode in ("RGB", "1"):
        return image.convert("L")
    rgb = to_rgb(image)
    return rgb if mode == "RGB" else rgb.convert("L")


def _whole(image: Image.Image, mode: str) -> Decoded:
    """A fully decoded RGB image as ``Decoded`` in ``mode``."""
    return Decoded(_as_mode(image, mode), image.size)


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
    middle = [(luma.size - 1) // 2, luma.size // 2]  # np.median imports numpy.ma (30 ms)
    low, high = np.partition(luma, middle)[middle]
    return (0, 0, 0, 255) if float(low + high) / 2 > 160 else (255, 255, 255, 255)
