# Two commands for a fresh Debian/Ubuntu machine: `make demo` and `make test`.
# Both set everything up first (idempotent; the second run only checks stamps).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.runmon-installed
# Root installs directly; anyone else goes through sudo (non-interactive, so it fails fast).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo "sudo -n")
APT_INSTALL := DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends

.PHONY: setup demo test lint typecheck pytest bench clean mosquitto

setup: $(STAMP) mosquitto

$(VPY):
	@if ! $(PYTHON) -m venv $(VENV) >/dev/null 2>&1; then \
	  rm -rf $(VENV); \
	  echo "runmon: the system Python lacks venv; installing python3-venv"; \
	  pyver=$$($(PYTHON) -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")'); \
	  { $(APT_INSTALL) python3-venv python$$pyver-venv || \
	    { $(SUDO) apt-get update && $(APT_INSTALL) python3-venv python$$pyver-venv; }; } || \
	  { echo "runmon: could not install python3-venv; install it by hand (apt-get install python3-venv) and rerun"; exit 1; }; \
	  $(PYTHON) -m venv $(VENV); \
	fi

$(STAMP): pyproject.toml | $(VPY)
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# The embedded broker runs Debian's mosquitto binary.
mosquitto:
	@if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then \
	  echo "runmon: installing the Debian package mosquitto"; \
	  { $(APT_INSTALL) mosquitto || { $(SUDO) apt-get update && $(APT_INSTALL) mosquitto; }; } || \
	  { echo "runmon: could not install mosquitto; install it by hand (apt-get install mosquitto) and rerun"; exit 1; }; \
	fi

demo: setup
	$(VENV)/bin/runmon demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

pytest: setup
	$(VENV)/bin/pytest -q

test: setup lint typecheck pytest

bench: setup
	$(VPY) -m benchmarks

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
