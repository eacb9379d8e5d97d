# releasekit's own Makefile. `make demo` runs the main job on an embedded default, `make test`
# runs lint and the whole suite; both build .venv from the pinned requirements first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

include mk/releasekit.mk

.PHONY: install lint test test-fast demo changelog bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[server,test]'
	touch $(STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

test-fast: install
	$(BIN)/pytest -m 'not e2e' -x -q

demo: install
	$(BIN)/python scripts/demo.py

changelog: install
	$(BIN)/releasekit changelog

bench: install
	$(BIN)/python benchmarks/bench_history.py

clean:
	rm -rf $(VENV) build dist .mypy_cache .ruff_cache .pytest_cache
