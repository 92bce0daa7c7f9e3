#!/usr/bin/env bash
# Build the demo tenant's components (MCP Apps views) into self-contained HTML
# files, and the browser test's host page, from pinned npm packages.
#
#   hack/build-components.sh                 build components/notes into stowage_dev/components/notes.html
#   hack/build-components.sh --out DIR       ... into DIR/notes.html instead (the staleness test)
#   hack/build-components.sh --out DIR host  the test host (tests/components/host) into DIR
#   hack/build-components.sh --install       install the pinned packages of both, build nothing
#
#   STOWAGE_TOOLS_DIR   cache root (default /var/cache/stowage/tools)
#   NPM                 npm binary (default: npm on PATH)
#
# Each package set (components/notes/package.json, tests/components/host/package.json)
# is installed exactly from its lock file (npm ci, integrity-checked) into
# $STOWAGE_TOOLS_DIR/<name>-<first 16 hex of the lock file's sha256>, so a changed
# lock file never reuses a stale install; tests/components/tools.py computes the
# same path. The bundles are built with the pinned esbuild run by the pinned Node 22
# (hack/node-tools.sh) and are deterministic: the same sources and pins give the
# same bytes. Only the npm registry is used, through npm itself.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
root="${STOWAGE_TOOLS_DIR:-/var/cache/stowage/tools}"

say() { echo "components: $*" >&2; }

usage() {
    sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

out=""
install_only=0
targets=()
while (($#)); do
    case "$1" in
        --out) out="${2:?--out needs a directory}"; shift 2 ;;
        --install) install_only=1; shift ;;
        -h|--help) usage ;;
        notes|host) targets+=("$1"); shift ;;
        *) say "unknown argument $1"; usage ;;
    esac
done
((${#targets[@]})) || targets=(notes)

# The package set of each target, and its name in the cache.
pins_of() {
    case "$1" in
        notes) echo "$repo/components/notes" ;;
        host) echo "$repo/tests/components/host" ;;
    esac
}
cache_name_of() {
    case "$1" in
        notes) echo "components-notes" ;;
        host) echo "components-host" ;;
    esac
}

# Install a target's pinned packages into the cache (nothing to do when there);
# prints the install directory.
install() {
    local target="$1" pins dest digest staging npm_bin
    pins="$(pins_of "$target")"
    digest="$(sha256sum "$pins/package-lock.json" | cut -c1-16)"
    dest="$root/$(cache_name_of "$target")-$digest"
    if [[ -d "$dest/node_modules/esbuild" ]] && cmp -s "$pins/package-lock.json" "$dest/package-lock.json"; then
        echo "$dest"
        return
    fi
    npm_bin="${NPM:-$(command -v npm || true)}"
    if [[ -z "$npm_bin" || ! -x "$npm_bin" ]]; then
        say "no npm (Debian: sudo apt-get install npm); it installs the components' pinned packages"
        exit 1
    fi
    say "installing the pinned packages of $target ($pins/package-lock.json) into $dest"
    mkdir -p "$root"
    staging="$(mktemp -d "$root/.$(cache_name_of "$target")-$digest.XXXXXX")"
    # shellcheck disable=SC2064  # expand now: the trap must remove this staging directory
    trap "rm -rf '$staging'" EXIT
    cp "$pins/package.json" "$pins/package-lock.json" "$staging/"
    # No install scripts: esbuild's binary comes from its platform package
    # (@esbuild/linux-x64, in the lock file); playwright-core downloads nothing.
    (cd "$staging" && "$npm_bin" ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
    rm -rf "$dest"
    mv "$staging" "$dest"
    trap - EXIT
    echo "$dest"
}

if ((install_only)); then
    for target in notes host; do
        dir="$(install "$target")"
        say "$target: $dir"
    done
    exit 0
fi

node_bin="$("$here/node-tools.sh")/node"

for target in "${targets[@]}"; do
    deps="$(install "$target")"
    case "$target" in
        notes)
            dest="${out:-$repo/stowage_dev/components}"
            mkdir -p "$dest"
            "$node_bin" "$repo/components/notes/build.mjs" \
                --deps "$deps/node_modules" --out "$dest/notes.html"
            ;;
        host)
            [[ -n "$out" ]] || { say "the host is built for a test only: give --out DIR"; exit 2; }
            mkdir -p "$out"
            "$node_bin" "$repo/tests/components/host/build.mjs" \
                --deps "$deps/node_modules" --out "$out"
            ;;
    esac
done
