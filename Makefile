# sensor-gateway: `make run` and `make test` work from nothing but python3 and make.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help

.PHONY: help run lint format test bench clean

help:
	@echo "make run     create .venv, install, start the gateway on simulated sensors (http://127.0.0.1:8000)"
	@echo "make test    lint, type check, then the whole test suite"
	@echo "make lint    ruff format --check, ruff check, mypy"
	@echo "make format  ruff format and ruff check --fix"
	@echo "make bench   run the benchmarks (python -m bench)"
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

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
