# Two commands set everything up on a fresh machine: `make quickstart` and
# `make test`. Both create .venv first; it is re-installed only when
# pyproject.toml changes (the stamp file records the last install).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUNS ?= runs/quickstart
PYTEST_ARGS ?=

.PHONY: install test test-fast quickstart demo bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e ".[demo,dev]"
	touch $(STAMP)

# The whole suite, slow end-to-end tests included.
test: install
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# Everything but the tests marked slow, for quick iteration.
test-fast: install
	$(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

quickstart: install
	$(BIN)/silentspeech quickstart --out $(RUNS)

# The Gradio demo on the quickstart's models, at http://127.0.0.1:7860.
demo: install
	$(BIN)/silentspeech demo --quickstart $(RUNS)

# Every bench/*.py on 2 threads -> bench/results.md (plain and fast paths side by side).
# Decoding figures use the trained recogniser of $(RUNS) when it is there.
bench: install
	SILENTSPEECH_QUICKSTART=$(RUNS) $(BIN)/python bench/run_all.py --threads 2 --out bench/results.md

clean:
	rm -rf $(VENV) runs .pytest_cache
