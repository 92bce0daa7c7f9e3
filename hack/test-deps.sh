#!/usr/bin/env bash
# Install or build everything the test tiers need, so that `make test` on a
# fresh Debian machine runs every test and skips none. Each step does nothing
# when its tool is already there, so this is cheap on every later run.
#
#   - PostgreSQL, Redis, Prometheus (promtool) and wrk from Debian's packages (root);
#     tests start their own throwaway servers on loopback, so the services the
#     packages start are stopped again;
#   - kube-apiserver, etcd and helm built from the Go module proxy into a cache
#     outside the repository (hack/build-kube-tools.sh; 10-30 minutes the first
#     time, with progress);
#   - the Prometheus Operator CRDs, from its Go module, into the same cache;
#   - Jaeger v2, the trace backend of tests/tracing and the bench's tracing rows, built
#     from its Go module into the same cache (hack/build-trace-tools.sh; minutes the
#     first time);
#   - Node 22 (npm's `node` package), the MCP Inspector CLI and the MCP
#     conformance suite, pinned, with npm into the same cache
#     (hack/node-tools.sh; npm itself from Debian's packages when missing);
#   - Chromium from Debian's packages and the components' pinned npm packages
#     (hack/build-components.sh --install) for the browser test (tests/components).
#
# When a step cannot run (not root, no network, no Go), it stops with a message
# that says what to install instead of letting the tests skip.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

say() { echo "test-deps: $*" >&2; }

have_initdb() { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; }

packages=()
have_initdb || packages+=(postgresql)
command -v redis-server >/dev/null 2>&1 || packages+=(redis-server)
command -v npm >/dev/null 2>&1 || packages+=(npm)
command -v wrk >/dev/null 2>&1 || packages+=(wrk)   # the benchmarks' load generator
command -v promtool >/dev/null 2>&1 || packages+=(prometheus)
command -v prometheus >/dev/null 2>&1 || [[ " ${packages[*]} " == *" prometheus "* ]] \
    || packages+=(prometheus)
command -v chromium >/dev/null 2>&1 || packages+=(chromium)   # the components' browser test

if ((${#packages[@]})); then
    if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        say "missing ${packages[*]}; install them (Debian: sudo apt-get install ${packages[*]})" \
            "or run this as root"
        exit 1
    fi
    say "installing ${packages[*]} from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
    # The tests start their own servers; the packaged services are not needed.
    for service in postgresql redis-server prometheus prometheus-node-exporter; do
        service "$service" stop >/dev/null 2>&1 || true
    done
fi

# The Kubernetes binaries (prints progress; nothing to do when cached).
"$here/build-kube-tools.sh" >/dev/null

# The chart's release tools: the OCI registry and helm-docs (tests/chart/test_release.py).
"$here/build-release-tools.sh" >/dev/null

# The trace backend (Jaeger v2) of tests/tracing (nothing to do when cached).
"$here/build-trace-tools.sh" >/dev/null

# The Prometheus Operator CRDs the chart's monitors are validated against.
if [[ -x "$here/fetch-prometheus-operator-crds.sh" ]]; then
    "$here/fetch-prometheus-operator-crds.sh" >/dev/null
fi

# Node 22 and the third-party MCP clients of tests/clients (nothing to do when cached).
"$here/node-tools.sh" >/dev/null
"$here/keycloak.sh" >/dev/null  # Keycloak 26 (Maven Central, pinned) for tests/keycloak

# The components' pinned npm packages (esbuild, ext-apps, the MCP client, playwright-core
# for tests/components), into the same cache (nothing to do when cached).
"$here/build-components.sh" --install

say "ready"
