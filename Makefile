# One command each: `make dev`, `make test`, `make check`.
# Every target creates .venv and installs the project into it when needed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: dev test test-deps check proto bench bench-worker kube-tools clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Run the platform on embedded defaults (SQLite, in-process limits, dev OAuth issuer).
dev: $(STAMP)
	$(BIN)/stowage dev

## Run every test tier; installs or builds what the tiers need first (nothing is skipped).
## The test files are spread over PYTEST_WORKERS processes (a file's tests stay together);
## PYTEST_WORKERS=0 runs them all in this one.
PYTEST_WORKERS ?= 2
test: $(STAMP) test-deps
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

.PHONY: e2e
## The e2e tier alone: a single-node cluster from real parts (stowage_testing/cluster.py),
## in network namespaces of its own; builds what it needs first. Needs root.
e2e: $(STAMP) test-deps
	$(BIN)/python -m pytest -n 0 tests/e2e $(PYTEST_ARGS)

## PostgreSQL, Redis, Prometheus, wrk, Node 22 with the MCP Inspector and conformance suite,
## the Kubernetes binaries and the Prometheus Operator CRDs.
test-deps:
	hack/test-deps.sh

## Lint, format check and types, as CI runs them.
check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

## Regenerate the gRPC stubs from proto/ (never edit stowage/v1/*_pb2*.py by hand).
proto: $(STAMP)
	$(BIN)/python hack/protogen.py

.PHONY: dashboards
## Regenerate the Grafana dashboard JSON from hack/dashboards/stowage.py (never edit the JSON).
dashboards: $(STAMP)
	$(BIN)/python hack/dashboards/stowage.py

.PHONY: components
## Rebuild the demo tenant's components (components/notes → stowage_dev/components/notes.html)
## from their pinned npm packages, cached outside the repo (never edit the HTML).
components:
	hack/build-components.sh

## Build kube-apiserver, etcd and helm from the Go module proxy into the cache.
kube-tools:
	hack/build-kube-tools.sh

.PHONY: image
## Build the image from the Dockerfile with buildah (no Docker engine) on a Debian base made
## with debootstrap, and the Kubernetes pause image, as OCI archives in the cache (root).
image:
	hack/build-image.sh
	hack/build-image.sh pause

.PHONY: chart-docs release
## Regenerate charts/stowage/README.md from values.yaml's comments (helm-docs; never edit it).
chart-docs:
	"$$(hack/build-release-tools.sh | tail -1)/helm-docs" --chart-search-root charts/stowage \
	    --template-files README.md.gotmpl --sort-values-order file

## Lint, package, sign and push the chart, then pull it back verified (hack/release.sh:
## CHART_REPO=oci://… SIGN_KEY=… [KEYRING=…] [PLAIN_HTTP=true]).
release:
	hack/release.sh

bench-worker: $(STAMP)
	$(BIN)/python -m bench.worker

## Save+get tool calls through gateway → worker → PostgreSQL beside a bare MCPServer (wrk),
## then the scale row: the gateway at 1 and at 2 processes, sharing a Redis.
bench: $(STAMP) test-deps
	$(BIN)/python -m bench.platform --gateway-processes 1 2 --tracing off 1% 100% --files

## Many tenants: Ready times for N Tenants at once (operator), a gateway with N tenants.
## SCALE_ARGS: e.g. --checkout DIR (a copy of the repository to compare with, run first).
SCALE_ARGS ?=
bench-scale: $(STAMP) test-deps
	$(BIN)/python -m bench.scale $(SCALE_ARGS)

## make bench at 16 connections, then one round with py-spy on the gateway and the worker.
bench-profile: $(STAMP) test-deps
	$(BIN)/python -m bench.platform --concurrency 16 --profile bench/results/profile

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
