# lfr-edge — every target works from a fresh clone (Debian / Raspberry Pi OS, Python 3.11).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help install install-system test test-reliability fuzz fuzz-atheris lint fmt clean models demo install-service uninstall-service bench bench-detection bench-concourse bench-console eval test-arm64 test-arm64-full deb

help:
	@echo "make install         venv in $(VENV) with the project and its dev tools (idempotent)"
	@echo "make demo            the system end to end in a temporary directory"
	@echo "make test            the whole test suite (starts its own Mosquitto where needed)"
	@echo "make test-reliability faults, load, attacks, fuzzing (CI size; FULL=1 for docs/reliability.md)"
	@echo "make fuzz            100k inputs each on the watchlist, event, command, status parsers (SEED=...)"
	@echo "make test-arm64      (root) the node in an arm64 Debian 12 root under qemu-user: apt install"
	@echo "                     of the arm64 .deb, check --offline, model hashes, embeddings vs x86 on"
	@echo "                     FACES=4 LFW faces, run --until-end against a broker on this host"
	@echo "make test-arm64-full the same agreement on FACES=50 (figures for models/README.md)"
	@echo "make lint            ruff + mypy --strict"
	@echo "make bench           speed, memory, scaling, detection -> reports/bench.md (+ PNG)"
	@echo "make bench-detection the detection section alone -> reports/detection.md (+ PNG)"
	@echo "make bench-console   the officers' console on PostgreSQL under 50 devices' alerts"
	@echo "                     -> reports/console-load.md (needs PostgreSQL, mosquitto)"
	@echo "make eval            LFW accuracy, 1:N FNIR/FPIR with DET plot -> reports/eval.md"
	@echo "make deb             dist/lfr-edge_<version>_<arch>.deb + .sha256 (ARCH=amd64|arm64; lintian)"
	@echo "make install-service (root) the agent as a hardened systemd service; uninstall-service [WIPE=1]"
	@echo "make models          rebuild models/*.tflite and models/MANIFEST.json from pinned sources"

# Re-installs only when the project metadata changes.
install: $(STAMP)
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

# System packages the integration tests use. Installs with apt-get when root (or via sudo);
# otherwise says in one line what is missing.
install-system:
	@./.ci/system-deps

test: install install-system
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The reliability suite alone (it also runs, at CI size, inside `make test`). FULL=1 runs the
# sizes docs/reliability.md reports: 60 s outages, 20 kill -9 trials, 5-minute load, 100k fuzz.
test-reliability: install install-system
	LFR_RELIABILITY_SCALE=$(if $(FULL),full,ci) $(BIN)/python -m pytest tests/reliability $(PYTEST_ARGS)

# The parsers' fuzzing campaign at full size; a crash is saved under reports/fuzz-crashes.
SEED ?= 20261128
fuzz: install
	$(BIN)/python -m tools.fuzz --target all --inputs 100000 --seed $(SEED) --crash-dir reports/fuzz-crashes

# The same, coverage-guided by libFuzzer (atheris: x86_64 wheel only).
fuzz-atheris: install
	$(BIN)/python -m pip install --quiet -e '.[dev,fuzz]'
	$(BIN)/python -m tools.fuzz --engine atheris --target all --inputs 100000 --seed $(SEED) --crash-dir reports/fuzz-crashes

# Reports (Markdown + PNG) in reports/; BENCH_ARGS=--quick for a small run.
bench: install install-system
	$(BIN)/python -m tools.bench $(BENCH_ARGS)

# Recall by face size, false detections and frames/s of every detector, on concourse
# composites and the real clips (needs ../shared; HOG with models/.cache/peer-venv).
bench-detection: install
	$(BIN)/python -m tools.bench.detection $(BENCH_ARGS)

# The 1080p concourse section alone: 10 people walking, fast and accurate end to end.
bench-concourse: install
	$(BIN)/python -m tools.bench.concourse_fps $(BENCH_ARGS)

# The node on arm64 (an emulated Debian 12 root, cached in .cache/arm64; see tools/arm64/),
# installed from the arm64 .deb (make deb). Not part of `make test`: it needs root,
# binfmt_misc, qemu-user-static and debootstrap, and is slow (emulation). Fails when a
# profile's arm64 embeddings differ from x86 (MIN_COSINE) or the end to end (e2e.py) fails.
FACES ?= 4
test-arm64: install
	FACES=$(FACES) PYTHON=$(BIN)/python ./tools/arm64/test.sh

test-arm64-full: install
	FACES=50 ARM64_OUT=reports/arm64-full PYTHON=$(BIN)/python ./tools/arm64/test.sh

# The control-room console under load (issue 19): 50 devices' alerts into PostgreSQL (two
# listeners, one shared group) while three officers work two console instances; page loads at
# 10,000 stored alerts; migration 4 -> 7 at 100,000. CONSOLE_ARGS=--help for the sizes.
bench-console: install
	$(BIN)/python -m tools.bench.console_load $(CONSOLE_ARGS)

eval: install
	$(BIN)/python -m tools.evaluation $(EVAL_ARGS)

demo: install
	$(BIN)/python -m tools.demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

models:
	$(MAKE) -C models

# The Debian package (Raspberry Pi OS Bookworm / Debian 12): code, models and hash-locked wheels
# for ARCH under /opt/lfr-edge, venv built offline by postinst (see tools/deb/build.sh).
ARCH ?= $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
deb: install
	ARCH=$(ARCH) PYTHON=$(BIN)/python ./tools/deb/build.sh

# The agent as a hardened systemd service (root). PREFIX holds the code; WIPE=1 on uninstall
# also deletes keys, state and config.
PREFIX ?= /opt/lfr-edge
install-service:
	./systemd/install.sh install $(PREFIX)

uninstall-service:
	./systemd/install.sh uninstall $(PREFIX) $(or $(WIPE),0)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build *.egg-info
