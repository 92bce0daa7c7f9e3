#!/usr/bin/env bash
# Build the trace backend from the Go module proxy into a cache outside the
# repository: Jaeger v2 (cmd/jaeger: OTLP receiver, in-memory storage, query
# API), which tests/tracing and `make bench --tracing` start on loopback.
# Does nothing when the pinned version is already there. Prints the bin
# directory as its last line.
#
#   STOWAGE_TOOLS_DIR   cache root (default /var/cache/stowage/tools)
#   GO                  go binary (default: go on PATH, else /usr/local/go/bin/go)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tools="$here/trace-tools"
# shellcheck source=trace-tools/versions.env
source "$tools/versions.env"

tag="trace-jaeger-${JAEGER_VERSION}"
root="${STOWAGE_TOOLS_DIR:-/var/cache/stowage/tools}"
bin="$root/$tag/bin"

if [[ -x "$bin/jaeger" ]]; then
    echo "trace tools: cached in $bin" >&2
    echo "$bin"
    exit 0
fi

go_bin="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
if [[ ! -x "$go_bin" ]]; then
    echo "trace tools: no Go toolchain (set GO= or install Go >= 1.24)" >&2
    exit 1
fi

if ! grep -Eq "^[[:space:]]*github.com/jaegertracing/jaeger ${JAEGER_VERSION}( // indirect)?\$" \
        "$tools/jaeger/go.mod"; then
    echo "trace tools: $tools/jaeger/go.mod does not require" \
         "github.com/jaegertracing/jaeger ${JAEGER_VERSION} (see versions.env)" >&2
    exit 1
fi

echo "trace tools: building jaeger ${JAEGER_VERSION} into $bin" \
     "(5-15 minutes the first time)" >&2
mkdir -p "$bin"
staging="$(mktemp -d "$root/$tag/.build.XXXXXX")"
trap 'rm -rf "$staging"' EXIT

# -mod=mod with the committed go.sum: every module is verified against it.
export GOFLAGS="-mod=mod" CGO_ENABLED=0
start=$SECONDS
(cd "$tools/jaeger" && "$go_bin" build -trimpath -ldflags "-s -w" \
    -o "$staging/jaeger" github.com/jaegertracing/jaeger/cmd/jaeger)
echo "trace tools: jaeger built in $((SECONDS - start)) s" >&2

mv "$staging/jaeger" "$bin/"
echo "$bin"
