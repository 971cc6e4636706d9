# antbridge — entry points. Every target sets itself up from nothing (venv, pinned
# packages, Debian packages when missing) and reuses what is there on the next run.
SHELL := /bin/bash
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
MP      := $(BIN)/micropython
STAMP   := $(VENV)/.installed
STUBS   := typings/.installed
PYTEST_ARGS ?=

.PHONY: test fuzz setup clean

setup: $(STAMP) $(STUBS)

$(STAMP): requirements.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	@touch $@

$(STUBS): requirements-stubs.txt $(STAMP)
	rm -rf typings
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --target typings -r requirements-stubs.txt
	@touch $@

# Everything that proves the project works: pytest under CPython, the same logic
# tests under the MicroPython unix port, mpy-cross over device files, pyright.
test: setup
	$(BIN)/pytest host_tests $(PYTEST_ARGS)

# Nightly-style framer fuzz: many more hypothesis cases.
fuzz: setup
	ANTBRIDGE_FUZZ_EXAMPLES=300000 $(BIN)/pytest host_tests/test_framer_fuzz.py -q

clean:
	rm -rf $(VENV) typings build .pytest_cache .hypothesis
