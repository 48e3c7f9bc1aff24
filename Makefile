# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.effdl-installed

.PHONY: install run test test-all test-fast bench lint fmt clean

# (Re)install when the dependency pins change; constraints.txt is the exact tested set.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@

install: $(STAMP)

run: install
	$(BIN)/effdl run recipes/quickstart.yaml
	$(BIN)/effdl frontier results/

test: install
	$(BIN)/python -m pytest -m "not full"

# Everything, including the whole family x shrink-stage matrix (marked `full`).
test-all: install
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not slow"

# effdl's own speed (overhead vs a plain TF-MOT script, cache, CLI latency, executors):
# about 30 minutes; writes docs/benchmarks.md. Not part of `make test`.
bench: install
	$(BIN)/python benchmarks/run.py

lint: install
	$(BIN)/ruff check effcli tests
	$(BIN)/ruff format --check effcli tests
	$(BIN)/mypy effcli

fmt: install
	$(BIN)/ruff format effcli tests
	$(BIN)/ruff check --fix effcli tests

clean:
	rm -rf results .pytest_cache
