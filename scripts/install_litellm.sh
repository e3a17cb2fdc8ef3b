#!/usr/bin/env bash
# The LiteLLM proxy, a real OpenAI-compatible server narrate's tests talk to, in its own
# virtualenv: litellm[proxy] pins rich, websockets and importlib-metadata below what
# Prefect uses, so it cannot share the project's venv. Usage: install_litellm.sh DIR
# (the Makefile passes .venv/litellm). Takes ~1 min on an idle 2-core machine.
set -euo pipefail
DIR="${1:?usage: install_litellm.sh DIR}"
VERSION="1.108.7"
if [ -x "$DIR/bin/litellm" ] && "$DIR/bin/python" -c "import sys; \
    from importlib.metadata import version; sys.exit(version('litellm') != '$VERSION')" 2>/dev/null; then
    exit 0
fi
python3 -m venv "$DIR"
"$DIR/bin/pip" --disable-pip-version-check -q install "litellm[proxy]==$VERSION" >"$DIR/pip.log" 2>&1 \
    || { grep -v 'is ignored: it is neither' "$DIR/pip.log"; echo "litellm install failed"; exit 1; }
"$DIR/bin/litellm" --version >/dev/null
