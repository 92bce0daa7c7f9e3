#!/usr/bin/env bash
# Build what the test cluster runs beside the control plane of
# hack/build-kube-tools.sh, from the Go module proxy, into a cache outside the
# repository. Does nothing when the pinned versions are already there. Prints
# the bin directory as its last line.
#
#   kubelet, kube-proxy, kube-controller-manager, kube-scheduler
#                     k8s.io/kubernetes at KUBERNETES_VERSION, one `go build`
#                     (the four share most packages with each other and with
#                     kube-apiserver, so the Go build cache does most of the work)
#   coredns           github.com/coredns/coredns at COREDNS_VERSION, with the
#                     plugins hack/kube-tools/coredns/main.go names
#   kube-router       github.com/cloudnativelabs/kube-router/v2 at
#                     KUBE_ROUTER_VERSION; the cluster runs its NetworkPolicy
#                     controller only
#   probe             hack/kube-tools/probe: the pod sandbox (pause) and the
#                     network probes of tests/e2e, standard library only
#
#   STOWAGE_TOOLS_DIR   cache root (default /var/cache/stowage/tools)
#   GO                  go binary (default: go on PATH, else /usr/local/go/bin/go)
#
# The binaries land in $STOWAGE_TOOLS_DIR/<tag>/bin, where <tag> names every pin
# (hack/kube-tools/versions.env) and a digest of the sources kept here (the probe,
# CoreDNS's plugin list);
# stowage_testing/cluster.py computes the same path. containerd, runc, the CNI
# plugins and ipset come from Debian's packages (hack/test-deps.sh).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tools="$here/kube-tools"
# shellcheck source=kube-tools/versions.env
source "$tools/versions.env"

sources_digest="$(cat "$tools/probe/go.mod" "$tools/probe/main.go" "$tools/coredns/main.go" \
    | sha256sum | cut -c1-12)"
tag="cluster-kube-${KUBERNETES_VERSION}-coredns-${COREDNS_VERSION}"
tag+="-kube-router-${KUBE_ROUTER_VERSION}-src-${sources_digest}"
root="${STOWAGE_TOOLS_DIR:-/var/cache/stowage/tools}"
bin="$root/$tag/bin"
programs=(kubelet kube-proxy kube-controller-manager kube-scheduler coredns kube-router probe)

cached=true
for program in "${programs[@]}"; do
    [[ -x "$bin/$program" ]] || cached=false
done
if $cached; then
    echo "cluster tools: cached in $bin" >&2
    echo "$bin"
    exit 0
fi

go_bin="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
if [[ ! -x "$go_bin" ]]; then
    echo "cluster tools: no Go toolchain (set GO= or install Go >= 1.25)" >&2
    exit 1
fi

# The wrapper modules must pin what versions.env says.
check_pin() {  # module-dir module version
    if ! grep -Eq "^(require )?[[:space:]]*$2 $3( // indirect)?\$" "$tools/$1/go.mod"; then
        echo "cluster tools: $tools/$1/go.mod does not require $2 $3 (see versions.env)" >&2
        exit 1
    fi
}
check_pin node k8s.io/kubernetes "$KUBERNETES_VERSION"
check_pin coredns github.com/coredns/coredns "$COREDNS_VERSION"
check_pin kube-router github.com/cloudnativelabs/kube-router/v2 "$KUBE_ROUTER_VERSION"

echo "cluster tools: building kubelet, kube-proxy, kube-controller-manager, kube-scheduler" \
     "${KUBERNETES_VERSION}, coredns ${COREDNS_VERSION}, kube-router ${KUBE_ROUTER_VERSION}" \
     "and the probe into $bin" >&2
echo "cluster tools: the first build takes minutes (about 10 on 2 cores after" \
     "hack/build-kube-tools.sh); later runs reuse the cache" >&2

mkdir -p "$bin"
staging="$(mktemp -d "$root/$tag/.build.XXXXXX")"
trap 'rm -rf "$staging"' EXIT

# -mod=mod with the committed go.sum: every module is verified against it.
export GOFLAGS="-mod=mod" CGO_ENABLED=0
started=$SECONDS
took() { echo "cluster tools: $1 built ($((SECONDS - started))s so far)" >&2; }

# The same version stamps as hack/build-kube-tools.sh gives kube-apiserver.
build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
k8s_minor="${KUBERNETES_VERSION#v1.}"
k8s_minor="${k8s_minor%%.*}"
k8s_ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    k8s_ldflags+=" -X $pkg.gitVersion=${KUBERNETES_VERSION}"
    k8s_ldflags+=" -X $pkg.gitMajor=1 -X $pkg.gitMinor=${k8s_minor}"
    k8s_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=${build_date}"
done
(cd "$tools/node" && "$go_bin" build -trimpath -ldflags "-s -w $k8s_ldflags" -o "$staging/" \
    k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy \
    k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler)
took "kubelet, kube-proxy, kube-controller-manager, kube-scheduler"

(cd "$tools/coredns" && "$go_bin" build -trimpath -ldflags "-s -w" -o "$staging/coredns" .)
took coredns

router_ldflags="-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=${KUBE_ROUTER_VERSION}"
router_ldflags+=" -X github.com/cloudnativelabs/kube-router/v2/pkg/version.BuildDate=${build_date}"
(cd "$tools/kube-router" && "$go_bin" build -trimpath -ldflags "$router_ldflags" \
    -o "$staging/kube-router" github.com/cloudnativelabs/kube-router/v2/cmd/kube-router)
took kube-router

(cd "$tools/probe" && "$go_bin" build -trimpath -ldflags "-s -w" -o "$staging/probe" .)
took probe

# Move into place only when all built, so a failed build never looks cached.
for program in "${programs[@]}"; do
    mv "$staging/$program" "$bin/"
done
echo "cluster tools: ready in $bin" >&2
echo "$bin"
