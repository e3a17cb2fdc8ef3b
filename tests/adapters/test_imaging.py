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
from adapters.imaging import DEFAULT_MAX_PIXELS, decode_image, load_image

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


def _turned_photo(tmp_path: Path) -> tuple[Path, Image.Image]:
    """A 1600x1200 upright scene saved turned a quarter, with EXIF orientation 6."""
    yy, xx = np.mgrid[0:1200, 0:1600]
    upright = np.stack([xx * 255 // 1600, yy * 255 // 1200, np.full_like(xx, 60)], axis=2)
    upright[100:300, 100:500] = (250, 250, 250)  # a white panel near the top left
    image = Image.fromarray(upright.astype(np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "turned.jpg"
    image.transpose(Image.Transpose.ROTATE_90).save(path, quality=95, exif=exif)
    return path, image


@pytest.mark.parametrize(
    ("options", "size"),
    [
        ({}, (1600, 1200)),
        ({"min_pixels": 400_000}, (800, 600)),  # 1/2 keeps 480,000 pixels, 1/4 would not
        ({"min_side": 200}, (200, 150)),  # 1/8
        ({"min_side": 201}, (400, 300)),
    ],
)
def test_jpeg_is_decoded_reduced_upright_and_reports_its_full_size(
    tmp_path: Path, options: dict[str, int], size: tuple[int, int]
) -> None:
    path, upright = _turned_photo(tmp_path)
    for mode in ("RGB", "L"):
        decoded = decode_image(path, mode=mode, **options)
        assert decoded.image.mode == mode
        assert decoded.image.size == size
        assert decoded.full_size == (1600, 1200)
        assert decoded.scale == size[0] / 1600
        expected = upright.convert(mode).resize(size, Image.Resampling.BOX)
        diff = np.abs(np.asarray(decoded.image, float) - np.asarray(expected, float))
        assert diff.mean() < 3  # same content, same way up (a turned image differs by ~100)


def test_reduction_applies_to_jpeg_only_and_limits_use_the_full_size(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.new("RGB", (1600, 1200), (10, 20, 30)).save(path)
    decoded = decode_image(path, mode="L", min_side=200)
    assert decoded.image.size == decoded.full_size == (1600, 1200)
    jpeg, _ = _turned_photo(tmp_path)
    with pytest.raises(InputError, match="1200x1600 = 1,920,000 pixels"):
        decode_image(jpeg, min_side=100, max_pixels=1_000_000)


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


@pytest.mark.parametrize(("width", "height"), [(8160, 6144), (12000, 9000)])
def test_the_largest_phone_photos_are_not_refused_as_bombs(
    tmp_path: Path, width: int, height: int
) -> None:
    """50 MP and 108 MP phone photos pass the default limit (this header has no pixels)."""
    from narrate.config.settings import Settings

    assert Settings().max_image_pixels == DEFAULT_MAX_PIXELS  # one default, said twice
    path = tmp_path / "phone.png"
    path.write_bytes(_png_header(width, height))
    error = _raises(path, "truncated or corrupt")  # it got past the pixel limit
    assert "decompression bomb" not in error.reason
