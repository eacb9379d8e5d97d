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

.PHONY: install system-packages lint test test-fast check-install demo changelog bench clean

# Debian packages the deployment tests run for real: nginx (www-data workers), Prometheus
# (prometheus + promtool) and openssl. Installed by `make install` when missing, as root with apt;
# otherwise named, and those tests skip with the reason.
APT_PACKAGES := nginx prometheus openssl

install: $(STAMP) system-packages

system-packages:
	@missing=; for package in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' "$$package" 2>/dev/null | grep -q 'install ok installed' \
			|| missing="$$missing $$package"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing system packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else \
		echo "note: the deployment tests need:$$missing (as root: apt-get install -y" \
			"--no-install-recommends$$missing); they are skipped without them" >&2; \
	fi

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
