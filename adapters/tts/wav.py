"""Small helpers for PCM WAV files: read the header, measure loudness, join files.

``concatenate_wavs`` is what joins sentence-by-sentence speech into one file; like every
writer here it writes to a temporary name in the target directory and then ``os.replace``s
it, so a reader never sees a half-written WAV.
"""

from __future__ import annotations

import contextlib
import os
import uuid
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adapters.errors import InputError
from adapters.tts.base import SpeechResult, SpokenRun

_DTYPES = {1: np.uint8, 2: np.int16, 4: np.int32}


@dataclass(frozen=True)
class WavInfo:
    """What a WAV header says about its audio."""

    path: Path
    sample_rate: int
    channels: int
    sample_width: int  # bytes per sample
    frames: int

    @property
    def duration_s(self) -> float:
        """Length of the audio in seconds."""
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def read_wav_info(path: str | Path) -> WavInfo:
    """The header of the WAV file at ``path``; raises ``OSError``/``wave.Error`` if unreadable."""
    path = Path(path)
    with wave.open(str(path), "rb") as wav:
        return WavInfo(
            path=path,
            sample_rate=wav.getframerate(),
            channels=wav.getnchannels(),
            sample_width=wav.getsampwidth(),
            frames=wav.getnframes(),
        )


def problem_with_wav(path: str | Path) -> str | None:
    """Why ``path`` is not a usable WAV with audio in it, or ``None`` when it is."""
    path = Path(path)
    if not path.exists():
        return "no file was written"
    if path.stat().st_size == 0:
        return "the file is empty"
    try:
        info = read_wav_info(path)
    except (OSError, EOFError, wave.Error) as exc:
        return f"not a valid WAV file ({exc})"
    if info.frames == 0:
        return "the WAV file has no audio frames"
    return None


def read_samples(path: str | Path) -> tuple[np.ndarray, WavInfo]:
    """The samples of a PCM WAV as floats in [-1, 1], shape (frames, channels), and its header."""
    info = read_wav_info(path)
    with wave.open(str(path), "rb") as wav:
        raw = wav.readframes(info.frames)
    dtype = _DTYPES.get(info.sample_width)
    if dtype is None:
        raise ValueError(f"{path}: unsupported sample width {info.sample_width} bytes")
    data = np.frombuffer(raw, dtype=dtype).astype(np.float64)
    if info.sample_width == 1:  # 8-bit WAV is unsigned
        data = (data - 128.0) / 128.0
    else:
        data /= float(2 ** (8 * info.sample_width - 1))
    return data.reshape(-1, info.channels), info


def rms(path: str | Path) -> float:
    """Root-mean-square level of the whole file, 0 (silence) to 1 (full scale)."""
    samples, _ = read_samples(path)
    return float(np.sqrt(np.mean(np.square(samples)))) if samples.size else 0.0


def temp_path_next_to(target: Path, tag: str = "tmp") -> Path:
    """A fresh hidden name in ``target``'s directory, so ``os.replace`` onto it is atomic."""
    return target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.{tag}.wav")


def concatenate_wavs(
    inputs: Sequence[str | Path], output: str | Path, *, gap_s: float = 0.0
) -> WavInfo:
    """Join WAV files with identical formats into ``output``, with ``gap_s`` of silence between.

    Raises ``ValueError`` when there is nothing to join or the formats differ.
    """
    if not inputs:
        raise ValueError("no WAV files to concatenate")
    output = Path(output)
    infos = [read_wav_info(p) for p in inputs]
    first = infos[0]
    for info in infos[1:]:
        if (info.sample_rate, info.channels, info.sample_width) != (
            first.sample_rate,
            first.channels,
            first.sample_width,
        ):
            raise ValueError(
                f"cannot join {info.path} ({info.sample_rate} Hz, {info.channels} ch, "
                f"{info.sample_width * 8} bit) to {first.path} ({first.sample_rate} Hz, "
                f"{first.channels} ch, {first.sample_width * 8} bit)"
            )
    silence_byte = b"\x80" if first.sample_width == 1 else b"\x00"
    gap = silence_byte * (round(gap_s * first.sample_rate) * first.channels * first.sample_width)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_next_to(output)
    try:
        with wave.open(str(tmp), "wb") as out:
            out.setnchannels(first.channels)
            out.setsampwidth(first.sample_width)
            out.setframerate(first.sample_rate)
            for index, info in enumerate(infos):
                if index and gap:
                    out.writeframes(gap)
                with wave.open(str(info.path), "rb") as wav:
                    out.writeframes(wav.readframes(info.frames))
        os.replace(tmp, output)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return read_wav_info(output)


def writable_wav_path(out_path: str | Path) -> Path:
    """``out_path`` as a ``Path`` whose folder exists and can be written.

    Args:
        out_path: The WAV file a synthesizer is about to write.

    Returns:
        The same path.

    Raises:
        InputError: It is a directory, or its folder cannot be created or written.
    """
    out_path = Path(out_path)
    if out_path.is_dir():
        raise InputError(out_path, "is a directory; give the path of a .wav file to write")
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(out_path.parent, f"cannot create the output directory ({exc})") from exc
    if not os.access(out_path.parent, os.W_OK):
        raise InputError(out_path.parent, "the output directory is not writable")
    return out_path


def speech_result(
    path: Path,
    *,
    voice: str,
    language: str,
    engine: str,
    text: str,
    runs: tuple[SpokenRun, ...] = (),
) -> SpeechResult:
    """The ``SpeechResult`` of a finished WAV: its length and sample rate read from the file.

    Args:
        path: the WAV file, written and complete.
        voice: the (first) voice used.
        language: the (first) run's language, ``en`` or ``zh``.
        engine: the (first) engine used.
        text: the cleaned text that was spoken.
        runs: each script run with the voice that spoke it.

    Returns:
        The result, ``duration_s`` in seconds and ``sample_rate`` in Hz from the file.

    Raises:
        InputError: ``path`` is not a readable WAV file.
    """
    info = read_wav_info(path)
    return SpeechResult(
        path=path,
        duration_s=info.duration_s,
        sample_rate=info.sample_rate,
        voice=voice,
        language=language,
        engine=engine,
        text=text,
        runs=runs,
    )
