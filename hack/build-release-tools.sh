#!/usr/bin/env bash
# Build the release tools from the Go module proxy into a cache outside the
# repository: the OCI registry (CNCF distribution) that `make release` pushes
# to in tests, and helm-docs, which writes the chart's README from values.yaml.
# Does nothing when the pinned versions are already there. Prints the bin
# directory as its last line.
#
#   STOWAGE_TOOLS_DIR   cache root (default /var/cache/stowage/tools)
#   GO                  go binary (default: go on PATH, else /usr/local/go/bin/go)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tools="$here/release-tools"
# shellcheck source=release-tools/versions.env
source "$tools/versions.env"

tag="release-distribution-${DISTRIBUTION_VERSION}-helm-docs-${HELM_DOCS_VERSION}"
root="${STOWAGE_TOOLS_DIR:-/var/cache/stowage/tools}"
bin="$root/$tag/bin"

if [[ -x "$bin/registry" && -x "$bin/helm-docs" ]]; then
    echo "release tools: cached in $bin" >&2
    echo "$bin"
    exit 0
fi

go_bin="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
if [[ ! -x "$go_bin" ]]; then
    echo "release tools: no Go toolchain (set GO= or install Go >= 1.24)" >&2
    exit 1
fi

check_pin() {  # module-dir module version
    if ! grep -Eq "^(require )?[[:space:]]*$2 $3( // indirect)?\$" "$tools/$1/go.mod"; then
        echo "release tools: $tools/$1/go.mod does not require $2 $3 (see versions.env)" >&2
        exit 1
    fi
}
check_pin registry github.com/distribution/distribution/v3 "$DISTRIBUTION_VERSION"
check_pin helm-docs github.com/norwoodj/helm-docs "$HELM_DOCS_VERSION"

echo "release tools: building registry ${DISTRIBUTION_VERSION} and helm-docs" \
     "${HELM_DOCS_VERSION} into $bin (a few minutes the first time)" >&2
mkdir -p "$bin"
staging="$(mktemp -d "$root/$tag/.build.XXXXXX")"
trap 'rm -rf "$staging"' EXIT

# -mod=mod with the committed go.sum: every module is verified against it.
export GOFLAGS="-mod=mod" CGO_ENABLED=0
(cd "$tools/registry" && "$go_bin" build -trimpath -ldflags "-s -w" \
    -o "$staging/registry" github.com/distribution/distribution/v3/cmd/registry)
echo "release tools: registry built" >&2
(cd "$tools/helm-docs" && "$go_bin" build -trimpath -ldflags "-s -w" \
    -o "$staging/helm-docs" github.com/norwoodj/helm-docs/cmd/helm-docs)
echo "release tools: helm-docs built" >&2

mv "$staging/registry" "$staging/helm-docs" "$bin/"
echo "$bin"
