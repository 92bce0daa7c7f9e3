#!/usr/bin/env bash
# Fetch the Prometheus Operator CRDs (monitoring.coreos.com: ServiceMonitor,
# PodMonitor, PrometheusRule, ...) from the pinned Go module
# github.com/prometheus-operator/prometheus-operator through the Go module
# proxy, into a cache outside the repository. Does nothing when they are
# already there. Prints the CRD directory as its last line.
#
#   STOWAGE_TOOLS_DIR   cache root (default /var/cache/stowage/tools)
#   GO                  go binary (default: go on PATH, else /usr/local/go/bin/go)
#
# The files land in $STOWAGE_TOOLS_DIR/prometheus-operator-<version>/;
# tests/chart/conftest.py computes the same path from
# hack/prometheus-operator/version.env.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=prometheus-operator/version.env
source "$here/prometheus-operator/version.env"
version="$PROMETHEUS_OPERATOR_VERSION"
module="github.com/prometheus-operator/prometheus-operator"

root="${STOWAGE_TOOLS_DIR:-/var/cache/stowage/tools}"
dest="$root/prometheus-operator-$version"
required=(servicemonitors podmonitors prometheusrules)

have_all() {
    local kind
    for kind in "${required[@]}"; do
        [[ -s "$dest/monitoring.coreos.com_$kind.yaml" ]] || return 1
    done
}

if have_all; then
    echo "prometheus-operator CRDs: cached in $dest" >&2
    echo "$dest"
    exit 0
fi

go_bin="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
if [[ ! -x "$go_bin" ]]; then
    echo "prometheus-operator CRDs: no Go toolchain (set GO= or install Go)" >&2
    exit 1
fi

echo "prometheus-operator CRDs: downloading $module@$version from the Go module proxy" >&2
# Outside any module: `go mod download` verifies the zip against the checksum database.
json="$(cd / && GOFLAGS=-mod=mod "$go_bin" mod download -json "$module@$version")"
dir="$(printf '%s' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
if [[ -z "$dir" || ! -d "$dir/example/prometheus-operator-crd" ]]; then
    echo "prometheus-operator CRDs: $module@$version has no example/prometheus-operator-crd:" >&2
    printf '%s\n' "$json" >&2
    exit 1
fi

mkdir -p "$root"
staging="$(mktemp -d "$root/.prometheus-operator.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
cp "$dir"/example/prometheus-operator-crd/monitoring.coreos.com_*.yaml "$staging/"
chmod 0644 "$staging"/*.yaml
rm -rf "$dest"
mv "$staging" "$dest"
chmod 0755 "$dest"
trap - EXIT

if ! have_all; then
    echo "prometheus-operator CRDs: $dest lacks one of ${required[*]}" >&2
    exit 1
fi
echo "prometheus-operator CRDs: $(ls "$dest" | wc -l) files in $dest" >&2
echo "$dest"
