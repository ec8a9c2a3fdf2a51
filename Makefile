# `make run`: set up .venv and run the main job; `make test`: set up .venv and run the fast tests (under 2 minutes
# on 2 cores); `make test-slow`: only the tests marked slow; `make test-all`: every test (what CI runs, via .ci/run);
# `make lint`: ruff, mypy and the import-linter layering contracts (pyproject.toml). The install includes the `ray`
# extra: the Ray backend's tests run against a real Ray.
PY ?= python3
SHELL := bash
.SHELLFLAGS := -o pipefail -c
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-slow test-all lint typecheck bench clean setup

# A pip config that names a local index lacking most packages (e.g. file:///opt/pypi-more/simple) makes pip warn
# once per package it looks up there ("WARNING: Location 'file:///...' is ignored: it is neither a file nor a
# directory"): pages of them. QUIET_PIP drops exactly those lines; every other line, errors included, is shown and
# pip's exit status is kept (pipefail).
QUIET_PIP := 2>&1 | { grep -v "^WARNING: Location 'file://.*' is ignored: it is neither a file nor a directory" || true; }

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip $(QUIET_PIP)
	$(BIN)/python -m pip install -q -c constraints.txt torch==2.13.0 $(QUIET_PIP)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev,ray]' $(QUIET_PIP)
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/nasforge search

test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

# exit code 5 (no test collected) is fine here: there may be no slow test
test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow || test $$? -eq 5

test-all: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	PYTHONPATH=src $(BIN)/lint-imports --no-cache --no-logo

bench: $(STAMP)
	$(BIN)/python bench/cost_speed.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
