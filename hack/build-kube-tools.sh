#!/usr/bin/env bash
# Build the test control plane (kube-apiserver, etcd, helm) from the Go module
# proxy into a cache outside the repository. Does nothing when the pinned
# versions are already there. Prints the bin directory as its last line.
#
#   STOWAGE_TOOLS_DIR   cache root (default /var/cache/stowage/tools)
#   GO                  go binary (default: go on PATH, else /usr/local/go/bin/go)
#
# The binaries land in $STOWAGE_TOOLS_DIR/<tag>/bin, where <tag> names every
# pinned version (hack/kube-tools/versions.env), so a version bump never
# reuses a stale build. stowage_testing/kube.py computes the same path.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tools="$here/kube-tools"
# shellcheck source=kube-tools/versions.env
source "$tools/versions.env"

tag="kube-${KUBERNETES_VERSION}-etcd-${ETCD_VERSION}-helm-${HELM_VERSION}"
root="${STOWAGE_TOOLS_DIR:-/var/cache/stowage/tools}"
bin="$root/$tag/bin"

if [[ -x "$bin/kube-apiserver" && -x "$bin/etcd" && -x "$bin/helm" ]]; then
    echo "kube tools: cached in $bin" >&2
    echo "$bin"
    exit 0
fi

go_bin="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
if [[ ! -x "$go_bin" ]]; then
    echo "kube tools: no Go toolchain (set GO= or install Go >= 1.25)" >&2
    exit 1
fi

echo "kube tools: building kube-apiserver ${KUBERNETES_VERSION}, etcd ${ETCD_VERSION}," \
     "helm ${HELM_VERSION} into $bin" >&2
echo "kube tools: the first build takes several minutes (10-30 on 2 cores); later runs reuse the cache" >&2

# The wrapper modules must pin what versions.env says.
check_pin() {  # module-dir module version
    if ! grep -Eq "^(require )?[[:space:]]*$2 $3( // indirect)?\$" "$tools/$1/go.mod"; then
        echo "kube tools: $tools/$1/go.mod does not require $2 $3 (see versions.env)" >&2
        exit 1
    fi
}
check_pin kube-apiserver k8s.io/kubernetes "$KUBERNETES_VERSION"
check_pin etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION"
check_pin helm helm.sh/helm/v3 "$HELM_VERSION"

mkdir -p "$bin"
staging="$(mktemp -d "$root/$tag/.build.XXXXXX")"
trap 'rm -rf "$staging"' EXIT

# -mod=mod with the committed go.sum: every module is verified against it.
export GOFLAGS="-mod=mod" CGO_ENABLED=0
build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"

k8s_minor="${KUBERNETES_VERSION#v1.}"
k8s_minor="${k8s_minor%%.*}"
k8s_ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    k8s_ldflags+=" -X $pkg.gitVersion=${KUBERNETES_VERSION}"
    k8s_ldflags+=" -X $pkg.gitMajor=1 -X $pkg.gitMinor=${k8s_minor}"
    k8s_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=${build_date}"
done
(cd "$tools/kube-apiserver" && "$go_bin" build -trimpath -ldflags "-s -w $k8s_ldflags" \
    -o "$staging/kube-apiserver" .)
echo "kube tools: kube-apiserver built" >&2

(cd "$tools/etcd" && "$go_bin" build -trimpath -ldflags "-s -w" -o "$staging/etcd" .)
echo "kube tools: etcd built" >&2

helm_ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
helm_ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    helm_ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=${k8s_minor}"
done
(cd "$tools/helm" && "$go_bin" build -trimpath -ldflags "$helm_ldflags" \
    -o "$staging/helm" helm.sh/helm/v3/cmd/helm)
echo "kube tools: helm built" >&2

# Move into place only when all three built, so a failed build never looks cached.
mv "$staging/kube-apiserver" "$staging/etcd" "$staging/helm" "$bin/"
echo "kube tools: ready in $bin" >&2
echo "$bin"
