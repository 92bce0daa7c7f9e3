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
#   - the e2e tier's single-node cluster: containerd, runc, the CNI plugins, iptables,
#     ipset and conntrack from Debian's packages; kubelet, kube-proxy,
#     kube-controller-manager, kube-scheduler, CoreDNS and kube-router from the Go
#     module proxy into the same cache (hack/build-cluster-tools.sh; about 10 more
#     minutes the first time);
#   - the project's image, built from its Dockerfile with buildah on a Debian base
#     made with debootstrap, the Kubernetes pause image and the chart's Redis (Debian's
#     redis-server on that base), as OCI archives in the
#     same cache (hack/build-image.sh; debootstrap, buildah, skopeo and gcc from
#     Debian's packages; about 4 minutes the first time, under a minute after a
#     source change);
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
# The e2e tier's node (tests/e2e, stowage_testing/cluster.py).
command -v containerd >/dev/null 2>&1 || packages+=(containerd)
command -v runc >/dev/null 2>&1 || packages+=(runc)
[[ -x /usr/lib/cni/bridge ]] || packages+=(containernetworking-plugins)
command -v iptables >/dev/null 2>&1 || packages+=(iptables)
command -v ipset >/dev/null 2>&1 || packages+=(ipset)
command -v conntrack >/dev/null 2>&1 || packages+=(conntrack)
# The project's image and the pause image, built without Docker (hack/build-image.sh),
# pushed and run by tests/e2e/test_image.py.
command -v debootstrap >/dev/null 2>&1 || packages+=(debootstrap)
command -v buildah >/dev/null 2>&1 || packages+=(buildah)
command -v skopeo >/dev/null 2>&1 || packages+=(skopeo)
command -v gcc >/dev/null 2>&1 || packages+=(gcc)
ls /usr/lib/*/libc.a >/dev/null 2>&1 || packages+=(libc6-dev)   # pause is linked statically
command -v ip >/dev/null 2>&1 || packages+=(iproute2)

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
    # The e2e tier's node runs its own containerd, in its own directories.
    for service in postgresql redis-server prometheus prometheus-node-exporter containerd; do
        service "$service" stop >/dev/null 2>&1 || true
    done
fi

# Two groups run side by side, each in its own order: the Go builds (CPU) here, and
# beside them the images and the downloads (mostly network and disk), whose messages
# follow once the Go builds are done. On a fresh machine this saves the downloads' time.
side_log="$(mktemp)"
(
    # The project's image from its Dockerfile (buildah, on a Debian bookworm base made
    # with debootstrap), the pause image and the chart's Redis (Debian's redis-server on
    # that base), as OCI archives in the cache (a few minutes the first time, nothing to
    # do when this tree's images are cached).
    "$here/build-image.sh" >/dev/null
    "$here/build-image.sh" pause >/dev/null
    "$here/build-image.sh" redis >/dev/null
    # The Prometheus Operator CRDs the chart's monitors are validated against.
    if [[ -x "$here/fetch-prometheus-operator-crds.sh" ]]; then
        "$here/fetch-prometheus-operator-crds.sh" >/dev/null
    fi
    # Node 22 and the third-party MCP clients of tests/clients (nothing to do when cached).
    "$here/node-tools.sh" >/dev/null
    "$here/keycloak.sh" >/dev/null  # Keycloak 26 (Maven Central, pinned) for tests/keycloak
    # The components' pinned npm packages (esbuild, ext-apps, the MCP client,
    # playwright-core for tests/components), into the same cache (nothing to do when cached).
    "$here/build-components.sh" --install
) >"$side_log" 2>&1 &
side=$!
# Whatever happens here, the side group is waited for: nothing is left running.
side_done() {
    local status=0
    wait "$side" || status=$?
    cat "$side_log" >&2
    rm -f "$side_log"
    return "$status"
}
trap 'side_done || true' EXIT

# The Kubernetes binaries (prints progress; nothing to do when cached).
"$here/build-kube-tools.sh" >/dev/null
# The e2e tier's node and add-ons: kubelet, kube-proxy, kube-controller-manager,
# kube-scheduler, CoreDNS, kube-router (prints progress; nothing to do when cached).
"$here/build-cluster-tools.sh" >/dev/null
# The chart's release tools: the OCI registry and helm-docs (tests/chart/test_release.py).
"$here/build-release-tools.sh" >/dev/null
# The trace backend (Jaeger v2) of tests/tracing (nothing to do when cached).
"$here/build-trace-tools.sh" >/dev/null

trap - EXIT
if ! side_done; then
    say "building the images or fetching the downloads failed (its messages are above)"
    exit 1
fi

say "ready"
