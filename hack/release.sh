#!/usr/bin/env bash
# Release the chart: check its README is generated from values.yaml, lint it,
# package it signed (helm's OpenPGP provenance, charts/stowage-<v>.tgz.prov),
# verify the signature, push package and provenance to an OCI registry, and
# pull it back with --verify. `make release` runs this; tests/chart/test_release.py
# runs that against a local registry with a key it makes.
#
#   CHART_REPO      where to push: oci://host[:port]/path (required)
#   SIGN_KEY        name (uid) of the OpenPGP key that signs (required)
#   KEYRING         secret keyring holding it, legacy format (gpg --export-secret-keys)
#                   (default ~/.gnupg/secring.gpg)
#   PUBLIC_KEYRING  public keyring to verify with (default: pubring.gpg beside KEYRING)
#   PASSPHRASE_FILE the key's passphrase, when it has one
#   PLAIN_HTTP      "true" for a registry without TLS (a local test registry only)
#   DIST            where the package is written (default dist/)
#   HELM, HELM_DOCS the binaries (default: the cached builds of hack/build-*-tools.sh)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
chart="$repo/charts/stowage"
say() { echo "release: $*" >&2; }

: "${CHART_REPO:?set CHART_REPO=oci://host[:port]/path}"
: "${SIGN_KEY:?set SIGN_KEY to the name of the OpenPGP key that signs the chart}"
[[ "$CHART_REPO" == oci://* ]] || { say "CHART_REPO must be an oci:// reference"; exit 2; }
keyring="${KEYRING:-$HOME/.gnupg/secring.gpg}"
public="${PUBLIC_KEYRING:-$(dirname "$keyring")/pubring.gpg}"
dist="${DIST:-$repo/dist}"
helm="${HELM:-$("$here/build-kube-tools.sh" 2>/dev/null | tail -1)/helm}"
helm_docs="${HELM_DOCS:-$("$here/build-release-tools.sh" | tail -1)/helm-docs}"
plain=()
[[ "${PLAIN_HTTP:-}" == true ]] && plain=(--plain-http)
passphrase=()
[[ -n "${PASSPHRASE_FILE:-}" ]] && passphrase=(--passphrase-file "$PASSPHRASE_FILE")

# 1. The README is what helm-docs makes of values.yaml now.
if ! diff -u "$chart/README.md" <("$helm_docs" --dry-run --chart-search-root "$chart" \
        --template-files README.md.gotmpl --sort-values-order file 2>/dev/null) >&2; then
    say "charts/stowage/README.md is stale: run make chart-docs"
    exit 1
fi

# 2. Lint, with the default values and every example.
"$helm" lint --strict "$chart" >/dev/null
for example in "$chart"/examples/*.yaml; do
    "$helm" lint --strict "$chart" --values "$example" >/dev/null
done

# 3. Package and sign; 4. verify before anything leaves the machine.
mkdir -p "$dist"
package="$("$helm" package "$chart" --destination "$dist" --sign --key "$SIGN_KEY" \
    --keyring "$keyring" "${passphrase[@]}" | sed -n 's/^Successfully packaged chart and saved it to: //p')"
[[ -f "$package" && -f "$package.prov" ]] || { say "helm package did not write $package(.prov)"; exit 1; }
"$helm" verify "$package" --keyring "$public" >&2

# 5. Push package and provenance; 6. pull it back, verified.
version="$(basename "$package" .tgz)"
version="${version#stowage-}"
"$helm" push "$package" "$CHART_REPO" "${plain[@]}" >&2
check="$(mktemp -d)"
trap 'rm -rf "$check"' EXIT
"$helm" pull "$CHART_REPO/stowage" --version "$version" --verify --keyring "$public" \
    --destination "$check" "${plain[@]}" >&2
say "pushed and verified $CHART_REPO/stowage:$version"
echo "$package"
