"""Opening user audio safely: any WAV, FLAC, OGG or MP3 as 16 kHz mono float32 for whisper.

``load_audio`` decodes with libsndfile (``soundfile``) and resamples with ``soxr``, so no
ffmpeg is needed at run time. Every way a file can be unusable — missing, empty, not audio,
corrupt, silent, too long — becomes an ``InputError`` that names the file and says why.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from adapters.errors import ConfigError, InputError
from adapters.imaging import check_file

SAMPLE_RATE = 16_000
DEFAULT_MAX_SECONDS = 600.0
DEFAULT_MAX_BYTES = 200 * 1024 * 1024
SILENCE_PEAK = 10 ** (-60 / 20)  # -60 dBFS: quieter than this holds no usable speech
SUPPORTED = "WAV, FLAC, OGG (Vorbis/Opus) or MP3"

_AUDIO_MAGIC = (b"RIFF", b"RF64", b"fLaC", b"OggS", b"ID3", b"FORM")
_OTHER_MAGIC = (
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1a\x45\xdf\xa3", "a WebM/Matroska file (convert it: ffmpeg -i IN -ar 16000 OUT.wav)"),
)


def _looks_like_audio(head: bytes) -> bool:
    """True when the first bytes carry a container or MP3 frame signature libsndfile reads."""
    is_mp3_frame = len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0
    return head.startswith(_AUDIO_MAGIC) or is_mp3_frame


def _describe(head: bytes) -> str:
    """A guess at what a non-audio file is, for the error message."""
    for magic, what in _OTHER_MAGIC:
        if head.startswith(magic):
            return what
    if head[4:8] == b"ftyp":
        return "an MP4/M4A file (convert it: ffmpeg -i IN -ar 16000 OUT.wav)"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "binary data in no audio format libsndfile knows"
    return "a text file"


def load_audio(
    path: str | Path,
    *,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> np.ndarray:
    """Decode ``path`` to 16 kHz mono float32 samples in [-1, 1], or raise ``InputError``."""
    try:
        import soundfile as sf
        import soxr
    except ImportError as exc:
        raise ConfigError(
            f"reading audio needs soundfile and soxr: pip install 'narrate[asr]' ({exc})"
        ) from exc

    path = Path(path)
    check_file(path, max_bytes=max_bytes)
    with path.open("rb") as fh:
        head = fh.read(64)
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as exc:
        if _looks_like_audio(head):
            raise InputError(path, f"audio file is corrupt or truncated ({exc})") from exc
        raise InputError(
            path, f"not an audio file: looks like {_describe(head)}; use {SUPPORTED}"
        ) from exc
    if info.samplerate <= 0 or info.frames == 0:
        raise InputError(path, "contains no audio samples")
    seconds = info.frames / info.samplerate
    if seconds > max_seconds:
        raise InputError(
            path, f"audio is {seconds / 60:.1f} min long, over the {max_seconds / 60:.0f} min limit"
        )
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise InputError(path, f"audio data is corrupt or truncated ({exc})") from exc
    if data.size == 0:
        raise InputError(path, "contains no audio samples")
    if not np.isfinite(data).all():
        raise InputError(path, "audio data is corrupt (NaN or infinite samples)")
    mono = data.mean(axis=1, dtype=np.float32)
    peak = float(np.abs(mono).max())
    if peak < SILENCE_PEAK:
        level = "digital silence" if peak == 0 else f"peak {20 * np.log10(peak):.0f} dBFS"
        raise InputError(path, f"audio is silent ({level}): there is no speech to transcribe")
    if rate != SAMPLE_RATE:
        mono = soxr.resample(mono, rate, SAMPLE_RATE, quality="HQ")
    return np.ascontiguousarray(np.clip(mono, -1.0, 1.0), dtype=np.float32)


def mono_samples(audio: np.ndarray, source: str) -> np.ndarray:
    """``audio`` as contiguous float32 samples, checked to be one non-empty channel.

    Args:
        audio: 16 kHz mono samples, shape ``(n,)`` (as ``load_audio`` returns them).
        source: the file or name the samples came from, for the error.

    Returns:
        The samples, C-contiguous float32, shape ``(n,)``.

    Raises:
        InputError: ``audio`` is empty or has more than one dimension.
    """
    if audio.ndim != 1 or audio.size == 0:
        raise InputError(source, "expected non-empty 16 kHz mono samples")
    return np.ascontiguousarray(audio, dtype=np.float32)
