"""load_image: every image Pillow reads becomes upright 8-bit RGB; every bad file an InputError."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adapters.errors import InputError
from adapters.imaging import load_image

SIZE = (64, 48)
RED, BLUE, WHITE = (200, 30, 30), (30, 30, 200), (255, 255, 255)


def _two_halves() -> Image.Image:
    """A 64x48 image, red on the left half and blue on the right."""
    image = Image.new("RGB", SIZE, RED)
    image.paste(BLUE, (32, 0, 64, 48))
    return image


def _close(pixel: tuple[int, ...], expected: tuple[int, ...], tolerance: int) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=True))


def _assert_halves(
    image: Image.Image, left: tuple[int, ...], right: tuple[int, ...], tol: int
) -> None:
    assert image.mode == "RGB"
    assert image.size == SIZE
    assert _close(image.getpixel((10, 24)), left, tol), image.getpixel((10, 24))
    assert _close(image.getpixel((54, 24)), right, tol), image.getpixel((54, 24))


def _save_gif(image: Image.Image, path: Path) -> None:
    green = Image.new("RGB", SIZE, (30, 200, 30))
    image.save(path, save_all=True, append_images=[green], duration=100, loop=0)


@pytest.mark.parametrize(
    ("name", "save", "tolerance"),
    [
        ("a.png", lambda im, p: im.save(p), 0),
        ("a.jpg", lambda im, p: im.save(p, quality=90), 20),
        ("a.webp", lambda im, p: im.save(p, lossless=True), 0),
        ("a.tif", lambda im, p: im.save(p), 0),
        ("a.bmp", lambda im, p: im.save(p), 0),
        ("a.gif", _save_gif, 8),  # first frame only; palette rounding
        ("cmyk.jpg", lambda im, p: im.convert("CMYK").save(p, quality=95), 20),
        ("cmyk.tif", lambda im, p: im.convert("CMYK").save(p), 0),
    ],
)
def test_formats_load_as_rgb(
    tmp_path: Path, name: str, save: Callable[[Image.Image, Path], None], tolerance: int
) -> None:
    source = _two_halves()
    path = tmp_path / name
    save(source, path)
    _assert_halves(load_image(path), RED, BLUE, tolerance)


def test_grayscale_becomes_gray_rgb(tmp_path: Path) -> None:
    gray = _two_halves().convert("L")
    path = tmp_path / "gray.png"
    gray.save(path)
    left, right = gray.getpixel((10, 24)), gray.getpixel((54, 24))
    _assert_halves(load_image(path), (left,) * 3, (right,) * 3, 0)


def test_sixteen_bit_grayscale_is_scaled_to_eight_bits(tmp_path: Path) -> None:
    ramp = np.tile(np.linspace(0, 65535, SIZE[0]).astype(np.uint16), (SIZE[1], 1))
    path = tmp_path / "deep.png"
    Image.fromarray(ramp).save(path)
    assert Image.open(path).mode.startswith("I")
    image = load_image(path)
    assert image.mode == "RGB" and image.size == SIZE
    assert image.getpixel((0, 10)) == (0, 0, 0)
    assert image.getpixel((63, 10)) == (255, 255, 255)
    assert _close(image.getpixel((32, 10)), (130, 130, 130), 3)


def test_palette_transparency_is_laid_on_white(tmp_path: Path) -> None:
    palette_image = Image.new("P", SIZE, 0)
    palette_image.putpalette([0, 255, 0, *RED] + [0, 0, 0] * 254)
    palette_image.paste(1, (32, 0, 64, 48))
    path = tmp_path / "palette.png"
    palette_image.save(path, transparency=0)  # index 0 (green) is transparent
    _assert_halves(load_image(path), WHITE, RED, 0)


def test_alpha_is_laid_on_white(tmp_path: Path) -> None:
    rgba = Image.new("RGBA", SIZE, (0, 0, 0, 0))  # transparent black on the left
    rgba.paste((*BLUE, 255), (32, 0, 64, 48))
    rgba.paste((0, 0, 0, 128), (0, 40, 64, 48))  # half-transparent black strip at the bottom
    path = tmp_path / "alpha.png"
    rgba.save(path)
    image = load_image(path)
    _assert_halves(image, WHITE, BLUE, 0)
    assert _close(image.getpixel((10, 44)), (127, 127, 127), 2)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    upright = _two_halves()  # red left, blue right, 64 wide
    exif = Image.Exif()
    exif[0x0112] = 8  # "rotate 90 degrees counter-clockwise to display"
    path = tmp_path / "turned.jpg"
    upright.transpose(Image.Transpose.ROTATE_270).save(path, quality=95, exif=exif)
    _assert_halves(load_image(path), RED, BLUE, 20)


# ---- bad input: an InputError whose message names the file and the reason -----------------


def _noise_bytes(fmt: str) -> bytes:
    rng = np.random.default_rng(3)
    image = Image.fromarray(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def _png_header(width: int, height: int) -> bytes:
    """A tiny PNG claiming ``width`` x ``height`` pixels: signature, IHDR, a stub IDAT, IEND."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + chunk(b"IEND", b"")
    )


def _raises(path: Path, reason: str, **kwargs: int) -> InputError:
    with pytest.raises(InputError) as caught:
        load_image(path, **kwargs)
    message = str(caught.value)
    assert message.startswith(f"{path}: "), message
    assert reason in message, message
    assert caught.value.path == str(path)
    return caught.value


def test_missing_file(tmp_path: Path) -> None:
    _raises(tmp_path / "nowhere.png", "file not found")


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("empty.png", b"", "file is empty (0 bytes)"),
        (
            "holiday.png",
            b"Dear diary, today we went to the seaside.\n",
            "not an image file: looks like a text file",
        ),
        (
            "scan.png",
            b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n",
            "looks like a PDF document",
        ),
    ],
    ids=["empty-file", "text-file-renamed-png", "pdf-named-as-such"],
)
def test_file_that_is_no_image_is_named(
    tmp_path: Path, name: str, data: bytes, reason: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    _raises(path, reason)


def test_directory(tmp_path: Path) -> None:
    folder = tmp_path / "photos.png"
    folder.mkdir()
    _raises(folder, "is a directory, not a file")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_image_data(tmp_path: Path, fmt: str) -> None:
    data = _noise_bytes(fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(data[: len(data) // 2])
    _raises(path, "truncated or corrupt")


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")  # Pillow, on the cut TIFF
@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF", "GIF"])
def test_truncated_header_is_called_truncated_not_unknown(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"stub.{fmt.lower()}"
    path.write_bytes(_noise_bytes(fmt)[:20])
    error = _raises(path, "truncated")
    assert "not an image" not in error.reason


def test_decompression_bomb_header(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header(100_000, 100_000))
    assert path.stat().st_size < 100
    _raises(path, "decompression bomb")


def test_image_over_max_pixels(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    _two_halves().save(path)
    error = _raises(path, "64x48 = 3,072 pixels, over the limit of 1,000", max_pixels=1000)
    assert "decompression bomb" in error.reason


def test_file_over_max_bytes(tmp_path: Path) -> None:
    path = tmp_path / "heavy.png"
    _two_halves().save(path)
    _raises(path, "over the", max_bytes=100)


# --- transparency and TIFF variants (issue 11) ----------------------------------------------


def test_light_content_on_transparency_is_laid_on_black(tmp_path: Path) -> None:
    rgba = Image.new("RGBA", SIZE, (255, 255, 255, 0))  # transparent everywhere ...
    rgba.paste((250, 250, 250, 255), (32, 0, 64, 48))  # ... but a white right half
    path = tmp_path / "white-logo.png"
    rgba.save(path)
    _assert_halves(load_image(path), (0, 0, 0), (250, 250, 250), 0)


def _tiff_rgb() -> np.ndarray:
    return np.asarray(_two_halves(), dtype=np.uint8)


def test_planar_sixteen_bit_rgb_tiff_keeps_its_colours(tmp_path: Path) -> None:
    import tifffile

    path = tmp_path / "planar16.tif"  # Pillow opens this variant but decodes it wrongly
    data = (_tiff_rgb().astype(np.uint16) * 257).transpose(2, 0, 1)
    tifffile.imwrite(path, data, photometric="rgb", planarconfig="separate")
    _assert_halves(load_image(path), RED, BLUE, 0)


def test_planar_eight_bit_rgb_tiff(tmp_path: Path) -> None:
    import tifffile

    path = tmp_path / "planar.tif"  # tifffile's default for (3, h, w) data
    tifffile.imwrite(path, _tiff_rgb().transpose(2, 0, 1), photometric="rgb")
    _assert_halves(load_image(path), RED, BLUE, 0)


def test_floating_point_tiff_pillow_cannot_open(tmp_path: Path) -> None:
    import tifffile

    path = tmp_path / "float.tif"
    tifffile.imwrite(path, _tiff_rgb().astype(np.float32) / 255, photometric="rgb")
    with pytest.raises(Exception):  # noqa: B017 - Pillow's own failure, any kind
        Image.open(path).load()
    _assert_halves(load_image(path), RED, BLUE, 1)


def test_tiff_neither_reader_decodes_names_its_variant(tmp_path: Path) -> None:
    import tifffile

    path = tmp_path / "jpeg2000.tif"
    tifffile.imwrite(path, _tiff_rgb().transpose(2, 0, 1), photometric="rgb")
    with tifffile.TiffFile(path) as tif:
        offset = tif.pages.first.tags["Compression"].valueoffset
    data = bytearray(path.read_bytes())
    data[offset : offset + 2] = (34712).to_bytes(2, "little")  # JPEG 2000: no decoder here
    path.write_bytes(bytes(data))
    error = _raises(path, "TIFF variant not supported")
    assert "compression" in error.reason and "34712" in error.reason
    assert "corrupt" not in error.reason
