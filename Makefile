# narrate: `make demo` and `make test` set everything up on a fresh machine, then run.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip --disable-pip-version-check -q
STAMP := $(VENV)/.narrate-installed
# The LiteLLM proxy: a real OpenAI-compatible server the tests talk to (its own venv).
LITELLM := $(VENV)/litellm/bin/litellm
OUT ?= narrate-out/demo
# The Prefect UI path: `make server`, `make deploy worker`; another port is one variable away
# (`make server PREFECT_PORT=4300`, then `make deploy worker PREFECT_PORT=4300`).
PREFECT_PORT ?= 4200
PREFECT_API_URL ?= http://127.0.0.1:$(PREFECT_PORT)/api
POOL ?= narrate-local
# How often the worker asks the server for new runs (Prefect's default is 10 s; a run waits
# half of it on average before it starts). Polls are one small query each.
WORKER_POLL_S ?= 1
# Keep Prefect quiet and patient offline (its temporary server takes 10-20 s here).
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 90
export OMP_THREAD_LIMIT ?= 1
export PREFECT_LOGGING_EXTRA_LOGGERS ?= narrate
export PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW ?= ignore

.PHONY: help setup system demo test test-fast lint format clean server deploy worker

help:  ## list the targets and the variables they take
	@echo "make TARGET [VARIABLE=value ...]; targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}' \
		| sed -e 's|PREFECT_PORT|$(PREFECT_PORT)|g' -e 's|POOL|$(POOL)|g'
	@echo "variables (now):"
	@echo "  PREFECT_PORT=$(PREFECT_PORT)  the Prefect server's port (server, deploy, worker)"
	@echo "  PREFECT_API_URL=$(PREFECT_API_URL)  the server deploy and worker talk to"
	@echo "  POOL=$(POOL)  WORKER_POLL_S=$(WORKER_POLL_S)  OUT=$(OUT)  VENV=$(VENV)"

system:  ## install the Debian packages that are missing (tesseract, espeak-ng, redis, ...)
	@bash scripts/install_system.sh

$(STAMP): pyproject.toml scripts/install_system.sh scripts/install_asr.sh
	@bash scripts/install_system.sh
	@test -x $(PY) || python3 -m venv $(VENV)
	@echo "installing narrate into $(VENV) ..."
	@$(PIP) install -e '.[dev,redis,metrics,dask,service]' >$(VENV)/pip.log 2>&1 \
		|| { grep -v 'is ignored: it is neither' $(VENV)/pip.log; echo "pip install failed"; exit 1; }
	@echo "installing speech recognition (CPU torch, whisper, pinned tiny.en weights) ..."
	@bash scripts/install_asr.sh $(VENV) --dev
	@$(PY) -c "import narrate, prefect, pytesseract, pyttsx3, whisper"
	@touch $@

setup: $(STAMP)  ## create .venv and install narrate with everything it needs

demo: setup  ## describe the bundled samples aloud and answer a spoken question, offline
	@mkdir -p $(OUT)
	@echo "narrate demo: describing the sample images offline (a temporary Prefect server starts first, ~15 s)"
	@NARRATE_LLM_BACKEND=offline $(VENV)/bin/narrate describe --engine prefect --out $(OUT) \
		assets/samples/receipt_en.png assets/samples/notice_zh.png \
		assets/samples/photo_sunset.jpg assets/samples/page_uneven_light.jpg 2>$(OUT)/demo.log \
		|| { cat $(OUT)/demo.log; exit 1; }
	@echo
	@echo "narrate demo: a spoken question about the receipt (whisper hears assets/samples/question_total.wav)"
	@NARRATE_LLM_BACKEND=offline $(VENV)/bin/narrate ask assets/samples/receipt_en.png \
		--audio assets/samples/question_total.wav --out $(OUT) 2>>$(OUT)/demo.log \
		|| { cat $(OUT)/demo.log; exit 1; }
	@echo
	@echo "results (WAV + JSON per image): $(abspath $(OUT))"

$(LITELLM): scripts/install_litellm.sh | $(STAMP)
	@echo "installing the LiteLLM proxy for the LLM interoperability tests (own venv, ~1 min) ..."
	@bash scripts/install_litellm.sh $(VENV)/litellm

test: setup $(LITELLM) lint  ## lint, then run the whole test suite on real parts
	@$(VENV)/bin/pytest -q

test-fast: setup  ## the test suite without the tests marked slow
	@$(VENV)/bin/pytest -q -m "not slow"

lint:  ## ruff lint + format check, the layer contract (import-linter), mypy on the code
	@$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
	@$(VENV)/bin/lint-imports --no-cache >/dev/null || $(VENV)/bin/lint-imports --no-cache
	@$(VENV)/bin/mypy adapters narrate tasks flows

format:  ## apply ruff's fixes and formatting
	@$(VENV)/bin/ruff check --fix . && $(VENV)/bin/ruff format .

server: setup  ## Prefect server + UI on http://127.0.0.1:PREFECT_PORT (foreground)
	@echo "Prefect UI: http://127.0.0.1:$(PREFECT_PORT)   next, in another shell: make deploy worker PREFECT_PORT=$(PREFECT_PORT)"
	@PREFECT_UI_API_URL=http://127.0.0.1:$(PREFECT_PORT)/api $(VENV)/bin/prefect server start --host 127.0.0.1 --port $(PREFECT_PORT)

deploy: setup  ## create the work pool POOL (once), deploy everything in prefect.yaml
	@export PREFECT_API_URL=$(PREFECT_API_URL); \
	$(VENV)/bin/prefect work-pool inspect $(POOL) >/dev/null 2>&1 \
		|| $(VENV)/bin/prefect work-pool create $(POOL) --type process; \
	$(VENV)/bin/prefect --no-prompt deploy --all

worker: setup  ## a worker on POOL: runs the deployments' runs (foreground; Ctrl-C stops)
	@echo "worker on $(POOL) at $(PREFECT_API_URL), polling every $(WORKER_POLL_S) s"
	@PREFECT_API_URL=$(PREFECT_API_URL) PREFECT_WORKER_QUERY_SECONDS=$(WORKER_POLL_S) \
		$(VENV)/bin/prefect worker start --pool $(POOL)

clean:  ## remove outputs (keeps .venv)
	rm -rf narrate-out .pytest_cache
