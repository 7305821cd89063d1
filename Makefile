# The two set-up commands are `make run` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_SUBSCRIBERS ?= 1000

.PHONY: run test bench lint install system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# radclient/radtest for the interop tests (Debian's freeradius-utils), when apt is there and we are root.
system-deps:
	@if ! command -v radclient >/dev/null 2>&1; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq freeradius-utils >/dev/null) \
	      || echo "warning: could not install freeradius-utils; radclient interop tests will be skipped"; \
	  else echo "warning: radclient not found; radclient interop tests will be skipped"; fi; \
	fi

run: install
	$(BIN)/aaa db upgrade
	$(BIN)/aaa demo --if-empty --subscribers $(DEMO_SUBSCRIBERS)
	exec $(BIN)/aaa serve

test: install system-deps
	$(BIN)/lint-imports
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check aaa policy billing plugins tui tests
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: install system-deps
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) var/ .pytest_cache .mypy_cache .ruff_cache
