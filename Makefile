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

.PHONY: test fuzz run setup debs clean

# Debian packages the targets need; installed with apt-get only when missing.
DEBS    := python3-venv

setup: debs $(STAMP) $(STUBS)

debs:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "apt-get install$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

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

# The whole firmware on this PC under the MicroPython unix port, against the
# simulated BMS; prints the dashboard URL. Ctrl-C stops both.
#   make run PROTOCOL=old CELLS=16 FAULTS="drop=0.1,display=1000" PORT=8080
PROTOCOL ?= new
CELLS    ?= 16
FAULTS   ?=
PORT     ?= 8080
run: setup
	$(BIN)/python tools/run.py --protocol $(PROTOCOL) --cells $(CELLS) --port $(PORT) $(if $(FAULTS),--faults "$(FAULTS)")

# Nightly-style framer fuzz: many more hypothesis cases.
fuzz: setup
	ANTBRIDGE_FUZZ_EXAMPLES=300000 $(BIN)/pytest host_tests/test_framer_fuzz.py -q

clean:
	rm -rf $(VENV) typings build .pytest_cache .hypothesis
