# releasekit's own Makefile. `make demo` runs the main job on an embedded default, `make test`
# runs lint and the whole suite; both build .venv from the pinned requirements first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The seed targets (publish-private, version-release, pypi-server-*) from the reusable include,
# run with this repository's own .venv, which they build first.
RELEASEKIT := $(BIN)/releasekit
include mk/releasekit.mk
publish-private publish-private-bump-patch publish-private-bump-minor publish-private-bump-major \
version-release pypi-server-start: $(STAMP)

.PHONY: install lint test test-fast check-install demo changelog bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade 'pip>=25.1'
	$(BIN)/python -m pip install --quiet --group dev -e '.[server]'
	touch $(STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Two workers on the 2-core machine (-n auto; 3 min 17 s against 4 min 45 s on one, measured):
# every test has its own HOME and tmp dirs, servers take OS-assigned ports (nginx and the seed
# make target need a port number: they get a probed free one). The clean-install check
# (scripts/clean_install_check.py) is one of the tests.
test: lint
	$(BIN)/pytest -n auto

test-fast: install
	$(BIN)/pytest -m 'not e2e' -x -q

# Build the wheel, install it without extras into a fresh virtualenv and use it (also in `test`).
check-install: install
	$(BIN)/python scripts/clean_install_check.py

demo: install
	$(BIN)/python scripts/demo.py

changelog: install
	$(BIN)/releasekit changelog

bench: install
	$(BIN)/python benchmarks/bench_history.py

clean:
	rm -rf $(VENV) build dist .mypy_cache .ruff_cache .pytest_cache
