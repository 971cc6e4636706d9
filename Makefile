# antbridge — entry points. Every target sets itself up from nothing (venv, pinned
# packages, Debian packages when missing) and reuses what is there on the next run.
SHELL := /bin/bash
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
STUBS   := typings/.installed
PYTEST_ARGS ?=

.PHONY: test fuzz run setup debs interp firmware deploy bench www help clean

# Debian packages the targets need; installed with apt-get only when missing.
# gcc-multilib: the 32-bit (-m32) MicroPython build; git: its sources from
# GitHub when ../shared/micropython-src is absent; socat: the fake board
# (the unix port's REPL on a pty) the deploy tests talk to; chromium,
# chromium-driver: the dashboard's browser tests (selenium).
DEBS    := python3-venv gcc-multilib git socat chromium chromium-driver

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

# The ESP32-like MicroPython v1.28.0 interpreters (32-bit, ESP32 object
# model), built from source into build/mp/ once and again only when the
# variant or a frozen file changes: esp32like (lib/ as .mpy) and
# esp32like-frozen (the firmware frozen in). The tests and tools/run.py also
# build them on first use; this target shows the build before pytest starts.
interp: setup
	$(BIN)/python tools/micropython_builds/interp.py

# The dashboard page: www/ inlined, lightly minified and gzipped into
# build/www/ (index.html.gz, and dashpage.py for the frozen image). The frozen
# build runs this itself (firmware/manifest.py); here to look at the result.
www:
	$(PY) tools/webbuild.py

# Everything that proves the project works: pytest under CPython, the same logic
# tests under the ESP32-like MicroPython, mpy-cross over device files, pyright.
test: setup interp
	$(BIN)/pytest host_tests $(PYTEST_ARGS)

# The whole firmware on this PC under the MicroPython unix port, against the
# simulated BMS; prints the dashboard URL. Ctrl-C stops both.
#   make run PROTOCOL=old CELLS=16 FAULTS="drop=0.1,display=1000" PORT=8080
PROTOCOL ?= new
CELLS    ?= 16
FAULTS   ?=
PORT     ?= 8080
run: setup interp
	$(BIN)/python tools/run.py --protocol $(PROTOCOL) --cells $(CELLS) --port $(PORT) $(if $(FAULTS),--faults "$(FAULTS)")

# A MicroPython v1.28.0 image for an ESP32 board with the firmware frozen in:
# build/firmware/antbridge-<board>-micropython-1.28.0*.bin. Needs ESP-IDF
# v5.5.1 (idf.py on PATH or IDF_PATH) or a docker engine (espressif/idf:v5.5.1)
# and internet access for the IDF components. DRY_RUN=1 prints the command only.
#   make firmware BOARD=esp32-s3-devkitc-1
BOARD    ?= esp32-devkitc
DRY_RUN  ?=
firmware: setup
	$(BIN)/python tools/micropython_builds/firmware.py --board $(BOARD) $(if $(DRY_RUN),--dry-run)

# Put the firmware on a board over its USB serial port (mpremote):
#   make deploy PORT=/dev/ttyUSB0 BOARD=esp32-devkitc            lib/ and firmware/ as .mpy files
#                                                                (stock MicroPython; boards with PSRAM)
#   make deploy PORT=/dev/ttyUSB0 BOARD=esp32-devkitc IMAGE=build/firmware/antbridge-esp32-devkitc-micropython-1.28.0.bin
#                                                                the frozen image (esptool), then its data files
# A second deploy copies only what changed; the board's settings.json and
# state.json are never overwritten. DRY_RUN=1 prints the plan; RESUME=1
# NO_RESET=1 for the fake board (tools/fakedevice.py). PORT is the serial
# port here, never make run's HTTP port default.
IMAGE    ?=
RESUME   ?=
NO_RESET ?=
deploy: setup
	$(BIN)/python tools/deploy.py --port "$(if $(filter file,$(origin PORT)),,$(PORT))" --board $(BOARD) \
		$(if $(IMAGE),--image "$(IMAGE)") $(if $(DRY_RUN),--dry-run) $(if $(RESUME),--resume) $(if $(NO_RESET),--no-reset)

# Heap minima (bisection under 4 HTTP clients), decode cost against wire
# time, the link's fresh-status rate against the line's limit, CPU per
# minute: writes bench/results.json and prints a table (about an hour; not
# part of make test). BENCH_ARGS="--quick" for a short smoke run.
BENCH_ARGS ?=
bench: setup interp
	$(BIN)/python tools/bench.py $(BENCH_ARGS)

# Nightly-style framer fuzz: many more hypothesis cases.
fuzz: setup
	ANTBRIDGE_FUZZ_EXAMPLES=300000 $(BIN)/pytest host_tests/test_framer_fuzz.py -q

help:
	@echo "make test       set-up from nothing, then everything that proves the project works"
	@echo "make run        the firmware (frozen, 32-bit ESP32-like MicroPython) on this PC against a simulated BMS"
	@echo "                PROTOCOL=old|new|both CELLS=16 FAULTS=\"drop=0.1,display=1000\" PORT=8080"
	@echo "make www        build the dashboard page from www/ into build/www/ (the frozen build does it too)"
	@echo "make interp     build the ESP32-like MicroPython interpreters into build/mp/ (make test/run do it too)"
	@echo "make firmware   MicroPython image for BOARD=esp32-devkitc|esp32-c3-supermini|esp32-s3-devkitc-1"
	@echo "                with the firmware frozen in (needs ESP-IDF v5.5.1 or docker); DRY_RUN=1 prints the command"
	@echo "make deploy     the firmware onto a board: PORT=/dev/ttyUSB0 BOARD=esp32-devkitc (.mpy files, stock MicroPython)"
	@echo "                IMAGE=build/firmware/....bin flashes the frozen image (esptool) and copies its data files;"
	@echo "                a second deploy copies only what changed; DRY_RUN=1 prints the plan"
	@echo "make bench      heap minima, decode cost, link rate, CPU per minute -> bench/results.json (about an hour)"
	@echo "make fuzz       the framer's hypothesis properties with many more cases"
	@echo "make setup      .venv with pinned packages, ESP32 stubs, Debian packages"
	@echo "make clean      remove .venv, typings and build/"

clean:
	rm -rf $(VENV) typings build .pytest_cache .hypothesis
