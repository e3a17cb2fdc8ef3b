"""load_audio: every format and layout becomes 16 kHz mono float32; bad files are InputErrors."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sf = pytest.importorskip("soundfile", reason="needs the asr extra: scripts/install_asr.sh")
pytest.importorskip("soxr", reason="needs the asr extra: scripts/install_asr.sh")

from adapters.asr.audio import SAMPLE_RATE, load_audio  # noqa: E402
from adapters.errors import InputError  # noqa: E402

TONE_HZ = 440.0


def _tone(rate: int, seconds: float = 1.0, channels: int = 1, level: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    wave = (level * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32)
    return np.repeat(wave[:, None], channels, axis=1)


def _dominant_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.fft.rfftfreq(samples.size, 1 / SAMPLE_RATE)[spectrum.argmax()])


@pytest.mark.parametrize(
    ("name", "rate", "channels"),
    [
        ("tone.wav", 16_000, 1),
        ("tone44k.wav", 44_100, 2),
        ("tone8k.wav", 8_000, 1),
        ("tone.flac", 48_000, 2),
        ("tone.ogg", 22_050, 1),
        ("tone.mp3", 44_100, 2),
    ],
)
def test_formats_become_16k_mono_float32(
    tmp_path: Path, name: str, rate: int, channels: int
) -> None:
    path = tmp_path / name
    sf.write(path, _tone(rate, channels=channels), rate)
    samples = load_audio(path)
    assert samples.dtype == np.float32
    assert samples.ndim == 1
    assert abs(samples.size - SAMPLE_RATE) < 0.06 * SAMPLE_RATE  # 1 s (mp3 adds padding)
    assert abs(_dominant_hz(samples) - TONE_HZ) < 3  # resampled, not just relabelled
    assert 0.3 < float(np.abs(samples).max()) <= 1.0


def test_stereo_is_mixed_down(tmp_path: Path) -> None:
    stereo = np.zeros((SAMPLE_RATE, 2), dtype=np.float32)
    stereo[:, 0] = _tone(SAMPLE_RATE)[:, 0]  # sound on the left only
    path = tmp_path / "left.wav"
    sf.write(path, stereo, SAMPLE_RATE)
    samples = load_audio(path)
    np.testing.assert_allclose(samples, stereo[:, 0] / 2, atol=1e-3)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg to make the files")
def test_files_made_by_ffmpeg_read(tmp_path: Path) -> None:
    source = tmp_path / "src.wav"
    sf.write(source, _tone(22_050), 22_050)
    for suffix in ("mp3", "ogg", "flac"):
        out = tmp_path / f"made.{suffix}"
        subprocess.run(
            ["ffmpeg", "-loglevel", "error", "-y", "-i", str(source), "-ac", "2", str(out)],
            check=True,
        )
        assert abs(_dominant_hz(load_audio(out)) - TONE_HZ) < 3, suffix


def _error(path: Path, **kwargs: float) -> str:
    with pytest.raises(InputError) as info:
        load_audio(path, **kwargs)
    assert info.value.path == str(path)
    return str(info.value)


def test_missing_and_directory(tmp_path: Path) -> None:
    assert "not found" in _error(tmp_path / "nope.wav")
    assert "directory" in _error(tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    assert "empty" in _error(path)


def test_silence_is_refused(tmp_path: Path) -> None:
    digital = tmp_path / "zero.wav"
    sf.write(digital, np.zeros(SAMPLE_RATE, dtype=np.float32), SAMPLE_RATE)
    assert "silent (digital silence)" in _error(digital)
    hiss = tmp_path / "hiss.flac"
    rng = np.random.default_rng(0)
    sf.write(hiss, (rng.standard_normal(SAMPLE_RATE) * 1e-4).astype(np.float32), SAMPLE_RATE)
    assert "silent (peak" in _error(hiss)


def test_png_renamed_to_wav(tmp_path: Path) -> None:
    path = tmp_path / "photo.wav"
    Image.new("RGB", (8, 8), "red").save(path, format="PNG")
    message = _error(path)
    assert "not an audio file" in message
    assert "PNG image" in message


def test_text_and_mp4_are_named(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp3"
    text.write_text("what is the total on this receipt?\n" * 20)
    assert "looks like a text file" in _error(text)
    m4a = tmp_path / "voice.wav"
    m4a.write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(200))
    assert "MP4/M4A" in _error(m4a)


def test_corrupt_audio(tmp_path: Path) -> None:
    good = tmp_path / "good.flac"
    sf.write(good, _tone(16_000, seconds=2), 16_000)
    data = good.read_bytes()
    truncated = tmp_path / "truncated.flac"
    truncated.write_bytes(data[: len(data) // 3])
    assert "corrupt" in _error(truncated)
    header_only = tmp_path / "header.wav"
    sf.write(header_only, _tone(16_000), 16_000)
    header_only.write_bytes(header_only.read_bytes()[:30])
    assert "corrupt or truncated" in _error(header_only)


def test_no_samples(tmp_path: Path) -> None:
    path = tmp_path / "nothing.wav"
    sf.write(path, np.zeros((0, 1), dtype=np.float32), 16_000)
    assert "no audio samples" in _error(path)


def test_too_long(tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    sf.write(path, _tone(8_000, seconds=3), 8_000)
    assert "over the" in _error(path, max_seconds=2.0)
    assert load_audio(path, max_seconds=5.0).size == 3 * SAMPLE_RATE
