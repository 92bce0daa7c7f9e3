# One command each: `make dev`, `make test`, `make check`.
# Every target creates .venv and installs the project into it when needed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: dev test check proto bench bench-worker kube-tools clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Run the platform on embedded defaults (SQLite, in-process limits, dev OAuth issuer).
dev: $(STAMP)
	$(BIN)/stowage dev

## Run every test tier (tiers whose tools are missing are skipped locally, fail under CI=true).
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## Lint, format check and types, as CI runs them.
check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

## Regenerate the gRPC stubs from proto/ (never edit stowage/v1/*_pb2*.py by hand).
proto: $(STAMP)
	$(BIN)/python -m stowage.protogen

## Build kube-apiserver, etcd and helm from the Go module proxy into the cache.
kube-tools:
	hack/build-kube-tools.sh

bench-worker: $(STAMP)
	$(BIN)/python -m bench.worker

bench: $(STAMP)
	$(BIN)/python -m bench.gateway

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
