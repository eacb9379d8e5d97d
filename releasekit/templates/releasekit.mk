# releasekit.mk: release and private-index targets for a Python library.
#
# Include it from a library's Makefile (after your own variables):
#
#     RELEASEKIT := .venv/bin/releasekit      # optional; see the default below
#     PRIVATE_PYPI_REPOSITORY := private      # a [tool.releasekit.repositories] name, or
#     PRIVATE_PYPI_URL := https://pypi.internal.example/   # an index URL
#     include mk/releasekit.mk
#
# Publishing:   publish-private, publish-private-bump-patch|minor|major, version-release
# Bundled index: pypi-server-start|stop|status|logs|health (a background `releasekit server run`
#                with its pid file, log and packages under $(PYPI_DATA_DIR))
# Air-gapped:    offline-bundle (connected side), offline-import (offline side); docs/air-gapped.md
# Every variable below is overridable on the command line: `make publish-private PUBLISH_FLAGS=--force`.
# Credentials come from RELEASEKIT_USERNAME/RELEASEKIT_PASSWORD (or TWINE_*), ~/.pypirc or keyring;
# they are never passed on a command line here, so they never show up in make's echo.

# Including this file must not change the includer's default goal (see the end of the file).
_RK_SAVED_DEFAULT_GOAL := $(.DEFAULT_GOAL)

# The releasekit command: a project-local .venv wins over PATH.
RELEASEKIT ?= $(if $(wildcard .venv/bin/releasekit),.venv/bin/releasekit,releasekit)
# Python used only for the /health probe (stdlib urllib; no curl needed).
RELEASEKIT_PYTHON ?= python3

PRIVATE_PYPI_REPOSITORY ?=
PRIVATE_PYPI_URL ?=
PUBLISH_FLAGS ?=
RELEASE_FLAGS ?=

PYPI_DATA_DIR ?= .releasekit-data
PYPI_PACKAGES_DIR ?= $(PYPI_DATA_DIR)/packages
PYPI_PASSWORDS ?= $(PYPI_DATA_DIR)/htpasswd
PYPI_CONFIG ?= $(PYPI_DATA_DIR)/settings.toml
PYPI_PID_FILE ?= $(PYPI_DATA_DIR)/run/server.pid
PYPI_URL_FILE ?= $(PYPI_DATA_DIR)/run/server.url
PYPI_LOG_FILE ?= $(PYPI_DATA_DIR)/logs/server.log
PYPI_PORT ?= 8080
PYPI_HOST ?= 127.0.0.1
PYPI_AUTH ?= update
PYPI_SERVER_FLAGS ?=
PYPI_START_TIMEOUT ?= 30
PYPI_STOP_TIMEOUT ?= 15
PYPI_LOG_LINES ?= 50
# The URL clients and the health probe use; a wildcard bind is probed on loopback.
PYPI_URL ?= http://$(if $(filter 0.0.0.0 :: [::],$(PYPI_HOST)),127.0.0.1,$(PYPI_HOST)):$(PYPI_PORT)/

# --repository only when one was chosen; otherwise releasekit uses the project's default.
_RK_REPOSITORY = $(if $(PRIVATE_PYPI_REPOSITORY),--repository '$(PRIVATE_PYPI_REPOSITORY)',$(if $(PRIVATE_PYPI_URL),--repository '$(PRIVATE_PYPI_URL)'))

# Fails with a clear next step when the releasekit command is missing.
_RK_REQUIRE = command -v '$(firstword $(RELEASEKIT))' >/dev/null 2>&1 || { \
	echo "error: releasekit command '$(RELEASEKIT)' not found" >&2; \
	echo "  hint: pip install 'releasekit[server]', or run make with RELEASEKIT=/path/to/releasekit" >&2; \
	exit 127; }

# Sets `running` to 1 when process $$pid exists and is not a zombie (`kill -0` succeeds on a
# zombie, and an exited child of this shell or of a non-reaping init stays one for a while).
_RK_RUNNING = state=$$(ps -p "$$pid" -o stat= 2>/dev/null || true); \
	case "$$state" in ''|Z*) running=0 ;; *) running=1 ;; esac

# Sets `pid` and `alive` (1 when the pid file names a live releasekit server). A reused pid
# that is not a releasekit server counts as dead, so a stale pid file never blocks. `-ww`: ps
# cuts the command line to $COLUMNS (80 under pytest-xdist), which can hide "server run".
_RK_READ_PID = pid=$$(cat '$(PYPI_PID_FILE)' 2>/dev/null || true); alive=0; \
	if [ -n "$$pid" ]; then \
		$(_RK_RUNNING); \
		case "$$(ps -ww -p "$$pid" -o args= 2>/dev/null || true)" in *server*run*) alive=$$running ;; esac; \
	fi

# `url` is the URL recorded by pypi-server-start, else $(PYPI_URL).
_RK_READ_URL = url=$$(cat '$(PYPI_URL_FILE)' 2>/dev/null || echo '$(PYPI_URL)')

_RK_PROBE = '$(RELEASEKIT_PYTHON)' -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)'
# The same, and the answer must come from the process we started (its instance header), not
# from another server that already holds the port.
_RK_PROBE_OURS = '$(RELEASEKIT_PYTHON)' -c 'import sys, urllib.request; r = urllib.request.urlopen(sys.argv[1], timeout=2); sys.exit(r.headers.get("x-releasekit-instance") != sys.argv[2])'

.PHONY: publish-private publish-private-bump-patch publish-private-bump-minor \
	publish-private-bump-major version-release pypi-server-start pypi-server-stop \
	pypi-server-status pypi-server-logs pypi-server-health

## Build and publish the version declared in pyproject.toml (refused if the index has it).
publish-private:
	@$(_RK_REQUIRE)
	$(RELEASEKIT) publish $(_RK_REPOSITORY) $(PUBLISH_FLAGS)

## Release at a fixed level (commit, tag, changelog), then build and publish it.
publish-private-bump-patch publish-private-bump-minor publish-private-bump-major: publish-private-bump-%:
	@$(_RK_REQUIRE)
	$(RELEASEKIT) publish --bump $* $(_RK_REPOSITORY) $(PUBLISH_FLAGS)

## The whole pipeline: level from the commits, publish, then push the branch and tag.
version-release:
	@$(_RK_REQUIRE)
	$(RELEASEKIT) release auto --publish --push-tag $(_RK_REPOSITORY) $(RELEASE_FLAGS)

## Start the bundled index in the background; waits for /health (PYPI_START_TIMEOUT seconds).
pypi-server-start:
	@$(_RK_REQUIRE)
	@$(_RK_READ_PID); \
	if [ "$$alive" = 1 ]; then \
		echo "error: the index is already running (pid $$pid, pid file $(PYPI_PID_FILE))" >&2; \
		echo "  hint: make pypi-server-status, or make pypi-server-stop first" >&2; exit 1; \
	fi; \
	if [ -n "$$pid" ]; then echo "removing stale pid file $(PYPI_PID_FILE) (pid $$pid is gone)"; fi; \
	rm -f '$(PYPI_PID_FILE)' '$(PYPI_URL_FILE)'
	@mkdir -p '$(PYPI_PACKAGES_DIR)' "$$(dirname '$(PYPI_PID_FILE)')" "$$(dirname '$(PYPI_LOG_FILE)')"
	@set -e; passwords='$(PYPI_PASSWORDS)'; \
	if [ ! -f "$$passwords" ]; then \
		if [ '$(PYPI_AUTH)' != '.' ]; then \
			echo "warning: no users file $$passwords: nobody can $(PYPI_AUTH)" >&2; \
			echo "  hint: scripts/setup-private-pypi.sh $(PYPI_DATA_DIR), or" \
				"$(RELEASEKIT) server user add NAME --password-stdin -P $$passwords" >&2; \
		fi; \
		passwords=.; \
	fi; \
	config=; [ ! -f '$(PYPI_CONFIG)' ] || config="--config $(PYPI_CONFIG)"; \
	echo "starting: $(RELEASEKIT) server run $(PYPI_PACKAGES_DIR) -p $(PYPI_PORT) -i $(PYPI_HOST)" \
		"-a $(PYPI_AUTH) -P $$passwords $$config $(PYPI_SERVER_FLAGS)"; \
	instance=$$(od -An -N8 -tx8 /dev/urandom | tr -d ' '); \
	RELEASEKIT_SERVER_INSTANCE_ID=$$instance \
	$(RELEASEKIT) server run '$(PYPI_PACKAGES_DIR)' -p '$(PYPI_PORT)' -i '$(PYPI_HOST)' \
		-a '$(PYPI_AUTH)' -P "$$passwords" $$config $(PYPI_SERVER_FLAGS) \
		</dev/null >>'$(PYPI_LOG_FILE)' 2>&1 & \
	pid=$$!; echo "$$pid" >'$(PYPI_PID_FILE)'; \
	deadline=$$(( $$(date +%s) + $(PYPI_START_TIMEOUT) )); \
	until $(_RK_PROBE_OURS) '$(PYPI_URL)health' "$$instance" 2>/dev/null; do \
		$(_RK_RUNNING); if [ "$$running" != 1 ]; then \
			rm -f '$(PYPI_PID_FILE)'; \
			echo "error: the index exited during start-up; the end of $(PYPI_LOG_FILE):" >&2; \
			tail -n 20 '$(PYPI_LOG_FILE)' >&2; \
			echo "  hint: fix the cause above (port $(PYPI_PORT) in use by another process? PYPI_PORT=...)" >&2; exit 1; \
		fi; \
		if [ "$$(date +%s)" -ge "$$deadline" ]; then \
			kill "$$pid" 2>/dev/null || true; rm -f '$(PYPI_PID_FILE)'; \
			echo "error: no answer from $(PYPI_URL)health within $(PYPI_START_TIMEOUT) s; stopped pid $$pid" >&2; \
			echo "  hint: see $(PYPI_LOG_FILE), or raise PYPI_START_TIMEOUT" >&2; exit 1; \
		fi; \
		sleep 0.2; \
	done; \
	echo '$(PYPI_URL)' >'$(PYPI_URL_FILE)'; \
	echo "index running at $(PYPI_URL) (pid $$pid, log $(PYPI_LOG_FILE))"; \
	echo "  pip install --index-url $(PYPI_URL)simple/ PACKAGE"

## Stop the index started by pypi-server-start (by its pid file only).
pypi-server-stop:
	@$(_RK_READ_PID); \
	if [ -z "$$pid" ]; then echo "the index is not running (no pid file $(PYPI_PID_FILE))"; exit 0; fi; \
	if [ "$$alive" != 1 ]; then \
		rm -f '$(PYPI_PID_FILE)' '$(PYPI_URL_FILE)'; \
		echo "the index was not running; removed stale pid file $(PYPI_PID_FILE) (pid $$pid)"; exit 0; \
	fi; \
	kill "$$pid"; \
	deadline=$$(( $$(date +%s) + $(PYPI_STOP_TIMEOUT) )); \
	while $(_RK_RUNNING) && [ "$$running" = 1 ]; do \
		if [ "$$(date +%s)" -ge "$$deadline" ]; then \
			echo "pid $$pid ignored SIGTERM for $(PYPI_STOP_TIMEOUT) s; sending SIGKILL" >&2; \
			kill -9 "$$pid" 2>/dev/null || true; break; \
		fi; \
		sleep 0.2; \
	done; \
	rm -f '$(PYPI_PID_FILE)' '$(PYPI_URL_FILE)'; \
	echo "stopped the index (pid $$pid)"

## Whether the index runs, where, and its pid (exit 0 either way; see pypi-server-health).
pypi-server-status:
	@$(_RK_READ_PID); $(_RK_READ_URL); \
	if [ "$$alive" = 1 ]; then \
		echo "running: pid $$pid, $$url, packages $(PYPI_PACKAGES_DIR), log $(PYPI_LOG_FILE)"; \
	elif [ -n "$$pid" ]; then \
		echo "not running: stale pid file $(PYPI_PID_FILE) (pid $$pid is gone); make pypi-server-start"; \
	else \
		echo "not running (no pid file $(PYPI_PID_FILE)); make pypi-server-start"; \
	fi

## The last PYPI_LOG_LINES lines of the index log.
pypi-server-logs:
	@if [ ! -f '$(PYPI_LOG_FILE)' ]; then \
		echo "error: no log at $(PYPI_LOG_FILE)" >&2; \
		echo "  hint: make pypi-server-start writes it; check PYPI_DATA_DIR" >&2; exit 1; \
	fi; \
	tail -n '$(PYPI_LOG_LINES)' '$(PYPI_LOG_FILE)'

## GET /health; non-zero when the index does not answer.
pypi-server-health:
	@$(_RK_READ_URL); \
	if $(_RK_PROBE) "$${url}health" 2>/dev/null; then \
		echo "healthy: $${url}health"; \
	else \
		echo "error: no healthy answer from $${url}health" >&2; \
		echo "  hint: make pypi-server-status; make pypi-server-logs" >&2; exit 1; \
	fi

# --- Air-gapped bundles (replace the seed's prepare-offline-packages.sh / upload-packages.sh) ---
# Connected side:  make offline-bundle   -> $(BUNDLE_DIR)/ (+ $(BUNDLE_DIR).tar.gz to carry across)
# Offline side:    make offline-import   -> verify, then import into $(BUNDLE_PACKAGES_DIR)
# or, against a running index over the upload API: make offline-import BUNDLE_IMPORT_URL=http://pypi.local/
# (credentials from RELEASEKIT_INDEX_USER / RELEASEKIT_INDEX_PASSWORD, never on the command line).
BUNDLE_REQUIREMENTS ?= requirements-offline.txt
BUNDLE_TARGETS ?= manylinux_2_28_x86_64/3.11
BUNDLE_INDEX ?= https://pypi.org/simple/
BUNDLE_PLAN_DIR ?= $(PYPI_DATA_DIR)/bundle-plan
BUNDLE_DIR ?= $(PYPI_DATA_DIR)/bundle
BUNDLE_SINCE ?=
BUNDLE_KEY ?=
BUNDLE_PUBKEY ?=
BUNDLE_JOBS ?= 4
BUNDLE_PACKAGES_DIR ?= $(PYPI_PACKAGES_DIR)
BUNDLE_IMPORT_URL ?=
BUNDLE_IMPORT_FLAGS ?=

.PHONY: offline-bundle offline-import

## Plan, fetch (and sign with BUNDLE_KEY) a bundle for every target in BUNDLE_TARGETS, then tar it.
offline-bundle:
	@$(_RK_REQUIRE)
	$(RELEASEKIT) bundle plan -r '$(BUNDLE_REQUIREMENTS)' $(foreach t,$(BUNDLE_TARGETS),--target '$(t)') \
		--index '$(BUNDLE_INDEX)' $(if $(BUNDLE_SINCE),--since '$(BUNDLE_SINCE)') -o '$(BUNDLE_PLAN_DIR)'
	$(RELEASEKIT) bundle fetch '$(BUNDLE_PLAN_DIR)' -o '$(BUNDLE_DIR)' -j $(BUNDLE_JOBS) \
		$(if $(BUNDLE_KEY),--sign '$(BUNDLE_KEY)')
	$(RELEASEKIT) bundle verify '$(BUNDLE_DIR)' $(if $(BUNDLE_KEY),--key '$(BUNDLE_KEY)')
	tar -czf '$(BUNDLE_DIR).tar.gz' -C '$(dir $(BUNDLE_DIR))' '$(notdir $(BUNDLE_DIR))'

## Verify the bundle (signature with BUNDLE_PUBKEY), then import it; idempotent.
offline-import:
	@$(_RK_REQUIRE)
	@if [ ! -d '$(BUNDLE_DIR)' ] && [ -f '$(BUNDLE_DIR).tar.gz' ]; then \
		tar -xzf '$(BUNDLE_DIR).tar.gz' -C '$(dir $(BUNDLE_DIR))'; fi
	$(RELEASEKIT) bundle import '$(BUNDLE_DIR)' $(if $(BUNDLE_PUBKEY),--key '$(BUNDLE_PUBKEY)') \
		$(if $(BUNDLE_IMPORT_URL),--index '$(BUNDLE_IMPORT_URL)',--packages-dir '$(BUNDLE_PACKAGES_DIR)') \
		$(BUNDLE_IMPORT_FLAGS)

# Give the default goal back: empty means "the next target the includer defines", as before.
.DEFAULT_GOAL := $(_RK_SAVED_DEFAULT_GOAL)
