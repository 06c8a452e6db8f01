# sensor-gateway: `make run` and `make test` work from nothing but python3 and make.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed

.DEFAULT_GOAL := help

APT_PACKAGES := chromium mosquitto systemd

.PHONY: help run lint format test bench bench-full soak screenshots system-deps clean

help:
	@echo "make run     create .venv, install, start the gateway on simulated sensors (http://127.0.0.1:8000)"
	@echo "make test    lint, type check, then the whole test suite"
	@echo "make lint    ruff format --check, ruff check, mypy"
	@echo "make format  ruff format and ruff check --fix"
	@echo "make bench   the short benchmark run (< 3 min): figures into docs/bench/quick/"
	@echo "make bench-full  every benchmark in full (~20 min): figures into docs/bench/"
	@echo "make soak    the fault campaign for MINUTES (default 60): report into docs/bench/soak/"
	@echo "make screenshots  the browser tests that take the docs' screenshots, writing docs/img/"
	@echo "make system-deps  apt-get install $(APT_PACKAGES) (as root): for the browser and MQTT tests"
	@echo "make clean   remove .venv, caches and build output"

# Re-installs whenever pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

run: $(STAMP)
	$(BIN)/sensor-gateway run --simulate

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy gateway drivers simulators bench

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: lint
	$(BIN)/pytest

# The benchmarks' own dependencies (FastAPI, uvicorn, matplotlib...): the bench extra.
$(BENCH_STAMP): pyproject.toml $(STAMP)
	$(BIN)/pip install -q -e '.[dev,bench]'
	touch $@

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench --quick

bench-full: $(BENCH_STAMP)
	$(BIN)/python -m bench

# The soak: the gateway on its simulators under faults for MINUTES, with a real Mosquitto.
MINUTES ?= 60
soak: $(BENCH_STAMP)
	$(BIN)/python -m bench.soak --minutes $(MINUTES)

# The docs' screenshots come from the browser tests; a plain test run leaves docs/img alone.
screenshots: $(STAMP)
	GATEWAY_SCREENSHOTS=1 $(BIN)/pytest -q tests/browser

# The system programs some tests need; without them those tests skip, saying why.
system-deps:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PACKAGES)

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
