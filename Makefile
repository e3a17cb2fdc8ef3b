# narrate: `make demo` and `make test` set everything up on a fresh machine, then run.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip --disable-pip-version-check -q
STAMP := $(VENV)/.narrate-installed
OUT ?= narrate-out/demo
# Keep Prefect quiet and patient offline (its temporary server takes 10-20 s here).
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 90
export OMP_THREAD_LIMIT ?= 1

.PHONY: help setup system demo test test-fast lint format clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

system:  ## install the Debian packages that are missing (tesseract, espeak-ng, redis, ...)
	@bash scripts/install_system.sh

$(STAMP): pyproject.toml scripts/install_system.sh scripts/install_asr.sh
	@bash scripts/install_system.sh
	@test -x $(PY) || python3 -m venv $(VENV)
	@echo "installing narrate into $(VENV) ..."
	@$(PIP) install -e '.[dev,redis,metrics]' >$(VENV)/pip.log 2>&1 \
		|| { grep -v 'is ignored: it is neither' $(VENV)/pip.log; echo "pip install failed"; exit 1; }
	@echo "installing speech recognition (CPU torch, whisper, pinned tiny.en weights) ..."
	@bash scripts/install_asr.sh $(VENV) --dev
	@$(PY) -c "import narrate, prefect, pytesseract, pyttsx3, whisper"
	@touch $@

setup: $(STAMP)  ## create .venv and install narrate with everything it needs

demo: setup  ## describe the bundled sample images aloud, offline, through the Prefect flow
	@echo "narrate demo: describing the sample images offline (a temporary Prefect server starts first, ~15 s)"
	@NARRATE_LLM_BACKEND=offline $(VENV)/bin/narrate describe --engine prefect --out $(OUT) \
		assets/samples/receipt_en.png assets/samples/notice_zh.png \
		assets/samples/photo_sunset.jpg assets/samples/page_uneven_light.jpg 2>demo.log \
		|| { cat demo.log; exit 1; }
	@rm -f demo.log
	@echo "results (WAV + JSON per image): $(abspath $(OUT))"

test: setup lint  ## lint, then run the whole test suite on real parts
	@$(VENV)/bin/pytest -q

test-fast: setup  ## the test suite without the tests marked slow
	@$(VENV)/bin/pytest -q -m "not slow"

lint:  ## ruff lint + format check
	@$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format:  ## apply ruff's fixes and formatting
	@$(VENV)/bin/ruff check --fix . && $(VENV)/bin/ruff format .

clean:  ## remove outputs (keeps .venv)
	rm -rf narrate-out .pytest_cache
