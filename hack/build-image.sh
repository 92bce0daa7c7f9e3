#!/usr/bin/env bash
# Build the project's container image from its own Dockerfile without a Docker
# engine or an image registry, the Kubernetes pause image a cluster's pod
# sandboxes need, and the Redis image the chart deploys, into a cache outside
# the repository. Prints the OCI archive's path as its last line.
#
#   hack/build-image.sh                 the stowage image (builds the base first if needed)
#   hack/build-image.sh pause           the pause image
#   hack/build-image.sh redis           the chart's Redis (Debian's redis-server on the runtime base)
#   hack/build-image.sh --where [pause|redis] the archive's path, without building anything
#
#   STOWAGE_TOOLS_DIR       cache root (default /var/cache/stowage/tools)
#   STOWAGE_IMAGE_STORE_MB  bound on buildah's store before old layers are pruned (8192)
#
# Needs root and Debian's debootstrap, buildah and gcc (hack/test-deps.sh
# installs them). The base stands in for python:3.11-slim-bookworm: a minimal
# Debian bookworm from debootstrap with Debian's python3 (3.11), slimmed like
# Debian's official slim images, in two flavours: runtime (Python only) and
# build (plus pip and venv). `buildah build` then runs the Dockerfile on them
# with --build-arg PYTHON_IMAGE / BUILD_IMAGE.
#
# Everything lives under $STOWAGE_TOOLS_DIR/images:
#   base-<key>/      the two base flavours as OCI archives; <key> digests the
#                    base's pins (hack/image/versions.env, hack/image/base/)
#   stowage-<key>/   image.tar (OCI archive), info.json (reference, digest, sizes);
#                    <key> digests the base key, the Dockerfile, .dockerignore and
#                    every file the Dockerfile copies, so an unchanged tree builds
#                    nothing and a changed one rebuilds only the project's layers
#   pause-<key>/     the same for the pause image
#   redis-<key>/     the same for the Redis image; <key> digests the base key and
#                    the REDIS_ pins
#   storage/         buildah's image store (its layer cache across builds)
#   tmp/             buildah's cache mounts (the build stage's pip downloads)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
# shellcheck source=image/versions.env
source "$here/image/versions.env"

root="${STOWAGE_TOOLS_DIR:-/var/cache/stowage/tools}"
images="$root/images"

say() { echo "image: $*" >&2; }

where=false
if [[ "${1:-}" == --where ]]; then
    where=true
    shift
fi
target="${1:-stowage}"
case "$target" in stowage | pause | redis) ;; *)
    say "unknown target '$target' (stowage, pause or redis)"
    exit 2
    ;;
esac

digest16() { sha256sum | cut -c1-16; }

# The base's key: its pins and its configuration files, nothing else.
base_key() {
    {
        grep -E '^(DEBIAN|BASE|BUILD)_' "$here/image/versions.env"
        (cd "$here/image/base" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
    } | digest16
}

# The sources the Dockerfile copies into the build: every `COPY src... dest` that
# does not copy from another stage. __pycache__ and .pyc stay out (.dockerignore).
copied_sources() {
    grep -E '^COPY ' "$repo/Dockerfile" | grep -v -- '--from' \
        | awk '{ for (i = 2; i < NF; i++) print $i }'
}

stowage_key() {
    {
        echo "base $(base_key)"
        cd "$repo"
        # shellcheck disable=SC2046
        find Dockerfile .dockerignore $(copied_sources) -type f \
            -not -path '*/__pycache__/*' -not -name '*.pyc' -print0 \
            | LC_ALL=C sort -z | xargs -0 sha256sum
    } | digest16
}

pause_source() {
    local gomodcache
    gomodcache="$(go env GOMODCACHE 2>/dev/null || echo "${HOME:-/root}/go/pkg/mod")"
    echo "$gomodcache/k8s.io/kubernetes@${PAUSE_KUBERNETES_VERSION}/build/pause/linux/pause.c"
}

pause_key() {
    {
        echo "pause ${PAUSE_KUBERNETES_VERSION} ${PAUSE_VERSION}"
        gcc --version | head -1
    } | digest16
}

# The Redis image's key: the base it is built on and its own pins.
redis_key() {
    {
        echo "base $(base_key)"
        grep -E '^REDIS_' "$here/image/versions.env"
    } | digest16
}

case "$target" in
    stowage) out="$images/stowage-$(stowage_key)" ;;
    pause) out="$images/pause-$(pause_key)" ;;
    redis) out="$images/redis-$(redis_key)" ;;
esac
if $where; then
    echo "$out/image.tar"
    exit 0
fi
if [[ -f "$out/image.tar" && -f "$out/info.json" ]]; then
    say "$target: cached in $out"
    echo "$out/image.tar"
    exit 0
fi

for program in buildah debootstrap gcc python3; do
    if ! command -v "$program" >/dev/null 2>&1; then
        say "no $program (Debian: apt-get install buildah debootstrap gcc libc6-dev; or run hack/test-deps.sh)"
        exit 1
    fi
done
if [[ "$(id -u)" != 0 ]]; then
    say "building images needs root (debootstrap, buildah's image store)"
    exit 1
fi

mkdir -p "$images/tmp"
# One build at a time: two would share buildah's store and the caches.
exec 9>"$images/.lock"
flock 9
if [[ -f "$out/image.tar" && -f "$out/info.json" ]]; then  # built while we waited
    say "$target: cached in $out"
    echo "$out/image.tar"
    exit 0
fi

# buildah on the cache's own store, with run-time state of its own on /run (one per
# store: two stores must not share it); TMPDIR holds its RUN --mount=type=cache directories.
export TMPDIR="$images/tmp"
runroot="/run/stowage-images-$(echo "$images" | sha256sum | cut -c1-12)"
bah() {
    buildah --root "$images/storage" --runroot "$runroot" --storage-driver overlay "$@"
}
has_image() { bah inspect --type image "$1" >/dev/null 2>&1; }

staging="$(mktemp -d "$images/.build.XXXXXX")"
cleanup() {
    if [[ -n "${container:-}" ]]; then bah rm "$container" >/dev/null 2>&1 || true; fi
    umount -R "$staging/rootfs/proc" "$staging/rootfs/sys" >/dev/null 2>&1 || true
    rm -rf "$staging"
}
trap cleanup EXIT

# Writes info.json for the OCI archive $1 (reference $2, digest in $3) beside it.
write_info() {
    python3 - "$@" <<'PY'
import gzip, hashlib, json, os, sys, tarfile

archive, reference, digest_file, seconds = sys.argv[1:5]
with tarfile.open(archive) as tar:
    def blob(digest):
        return tar.extractfile("blobs/sha256/" + digest.split(":", 1)[1]).read()
    index = json.loads(tar.extractfile("index.json").read())
    manifest = json.loads(blob(index["manifests"][0]["digest"]))
    compressed = sum(layer["size"] for layer in manifest["layers"])
    unpacked = 0
    for layer in manifest["layers"]:
        data = blob(layer["digest"])
        unpacked += len(gzip.decompress(data)) if "gzip" in layer["mediaType"] else len(data)
info = {
    "reference": reference,
    "digest": open(digest_file).read().strip(),
    "archive": os.path.basename(archive),
    "layers": len(manifest["layers"]),
    "compressed_bytes": compressed,
    "unpacked_bytes": unpacked,
    "build_seconds": int(seconds),
}
with open(os.path.join(os.path.dirname(archive), "info.json"), "w") as f:
    json.dump(info, f, indent=2)
print(f"{reference} {info['digest']}: {compressed / 2**20:.1f} MiB compressed, "
      f"{unpacked / 2**20:.1f} MiB unpacked, {len(manifest['layers'])} layers", file=sys.stderr)
PY
}

# -- the base: Debian bookworm's python3 in a runtime and a build flavour ----------------

bkey="$(base_key)"
base_dir="$images/base-$bkey"
runtime_ref="localhost/stowage-python:${DEBIAN_SUITE}-slim-$bkey"
build_ref="localhost/stowage-python:${DEBIAN_SUITE}-build-$bkey"

build_base() {
    local started=$SECONDS rootfs="$staging/rootfs"
    say "base: debootstrap ${DEBIAN_SUITE} (minbase + ${BASE_PACKAGES}) from ${DEBIAN_MIRROR}"
    say "base: a few minutes the first time; later builds reuse it"
    mkdir -p "$images/debs"
    debootstrap --variant=minbase --include="${BASE_PACKAGES// /,}" \
        --cache-dir="$images/debs" "$DEBIAN_SUITE" "$rootfs" "$DEBIAN_MIRROR" \
        | sed -u 's/^/image: base: /' >&2
    install -m 0644 "$here/image/base/dpkg-slim" "$rootfs/etc/dpkg/dpkg.cfg.d/slim"
    install -m 0644 "$here/image/base/apt-slim" "$rootfs/etc/apt/apt.conf.d/slim"
    rm -f "$rootfs/etc/apt/sources.list"
    cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: ${DEBIAN_MIRROR}
Suites: ${DEBIAN_SUITE} ${DEBIAN_SUITE}-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${DEBIAN_SECURITY_MIRROR}
Suites: ${DEBIAN_SUITE}-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    # Packages installed in a build never start services.
    printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
    chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
    # What debootstrap installed before the slim configuration existed, and its leftovers.
    find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
    rm -rf "$rootfs"/usr/share/{man,groff,info,lintian,linda}/*
    find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias \
        -exec rm -rf {} +
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/cache/ldconfig/* \
        "$rootfs"/var/log/* "$rootfs"/dev/* "$rootfs"/tmp/* "$rootfs"/run/* \
        "$rootfs"/etc/hostname "$rootfs"/etc/resolv.conf "$rootfs"/debootstrap
    : >"$rootfs/etc/machine-id"
    find "$rootfs/usr/lib/python3"* -name __pycache__ -type d -prune -exec rm -rf {} +

    container="$(bah from scratch)"
    local mnt
    mnt="$(bah mount "$container")"
    tar --numeric-owner --xattrs --acls -C "$rootfs" -c . | tar --numeric-owner --xattrs --acls -C "$mnt" -xp
    bah umount "$container" >/dev/null
    bah config --os linux --arch "$(dpkg --print-architecture)" \
        --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --env LANG=C.UTF-8 --cmd python3 \
        --label "org.opencontainers.image.description=Debian ${DEBIAN_SUITE} with its python3 (runtime)" \
        "$container"
    bah commit --rm --quiet "$container" "$runtime_ref" >/dev/null
    container=""
    say "base: runtime flavour committed ($((SECONDS - started))s)"

    container="$(bah from "$runtime_ref")"
    bah run --network host "$container" -- sh -c \
        "apt-get update -qq && apt-get install -y -qq ${BUILD_PACKAGES} >/dev/null \
         && rm -rf /var/lib/apt/lists/*"
    bah config --label "org.opencontainers.image.description=Debian ${DEBIAN_SUITE} with its python3, pip and venv (build)" \
        "$container"
    bah commit --rm --quiet "$container" "$build_ref" >/dev/null
    container=""

    mkdir -p "$staging/base"
    bah push --quiet "$runtime_ref" "oci-archive:$staging/base/runtime.tar:$runtime_ref"
    bah push --quiet "$build_ref" "oci-archive:$staging/base/build.tar:$build_ref"
    rm -rf "$base_dir"
    mv "$staging/base" "$base_dir"
    say "base: built in $((SECONDS - started))s into $base_dir"
}

ensure_base() {
    if [[ ! -f "$base_dir/runtime.tar" || ! -f "$base_dir/build.tar" ]]; then
        build_base
    fi
    has_image "$runtime_ref" || bah pull --quiet "oci-archive:$base_dir/runtime.tar" >/dev/null
    has_image "$build_ref" || bah pull --quiet "oci-archive:$base_dir/build.tar" >/dev/null
    say "base: $runtime_ref, $build_ref"
}

# -- the stowage image, from the Dockerfile ----------------------------------------------

build_stowage() {
    ensure_base
    local started=$SECONDS version reference
    version="$(python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' \
        "$repo/pyproject.toml")"
    reference="localhost/stowage:$version"
    say "stowage: buildah build of $repo/Dockerfile as $reference (a few minutes cold; only the project's layers when the base is cached)"
    # Network for the build's apt-get and pip only; --layers keeps each step's
    # layer, so the base and the PostgreSQL client are built once. The host's CA
    # bundle is mounted read-only into the build's RUN steps (never into a layer),
    # so pip trusts what this machine trusts, e.g. an egress proxy's CA.
    local trust=()
    if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
        trust=(--volume /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
    fi
    bah build --layers --network host --format oci "${trust[@]}" \
        --build-arg "PYTHON_IMAGE=$runtime_ref" --build-arg "BUILD_IMAGE=$build_ref" \
        --tag "$reference" --file "$repo/Dockerfile" "$repo" 2>&1 \
        | grep -v -E '^(Copying (blob|config)|Writing manifest|Storing signatures)' \
        | sed -u 's/^/image: stowage: /' >&2
    mkdir -p "$staging/out"
    bah push --quiet --digestfile "$staging/out/digest" "$reference" \
        "oci-archive:$staging/out/image.tar:$reference"
    write_info "$staging/out/image.tar" "$reference" "$staging/out/digest" "$((SECONDS - started))"
    mv "$staging/out" "$out"
    # Keep the three newest trees' images; older ones are rebuilt from the layer cache.
    find "$images" -maxdepth 1 -name 'stowage-*' -type d -printf '%T@ %p\n' | sort -rn \
        | tail -n +4 | cut -d' ' -f2- | xargs -r rm -rf
    # Every source change leaves its layers in the store; past a bound, drop the untagged
    # ones (the next build then installs the dependencies again, about a minute).
    if (($(du -sm "$images/storage" | cut -f1) > ${STOWAGE_IMAGE_STORE_MB:-8192})); then
        say "stowage: pruning buildah's store (over ${STOWAGE_IMAGE_STORE_MB:-8192} MiB)"
        bah rmi --prune >/dev/null || true
    fi
    say "stowage: built in $((SECONDS - started))s into $out"
}

# -- the pause image, compiled from Kubernetes' source -----------------------------------

build_pause() {
    local started=$SECONDS source reference="localhost/pause:$PAUSE_VERSION"
    source="$(pause_source)"
    if [[ ! -f "$source" ]]; then
        say "pause: fetching k8s.io/kubernetes@${PAUSE_KUBERNETES_VERSION} into the Go module cache"
        (cd "$staging" && GOFLAGS=-mod=mod go mod download -x "k8s.io/kubernetes@${PAUSE_KUBERNETES_VERSION}" 2>/dev/null) \
            || { say "pause: no Go toolchain or module proxy to fetch $source"; exit 1; }
        source="$(pause_source)"
    fi
    say "pause: compiling $source statically (${PAUSE_VERSION})"
    # Kubernetes' own flags (build/pause/Makefile), stripped.
    gcc -Os -Wall -Werror -static -s -DVERSION="v${PAUSE_VERSION}" -o "$staging/pause" "$source"
    container="$(bah from scratch)"
    bah copy --chmod 0755 "$container" "$staging/pause" /pause >/dev/null
    bah config --os linux --arch "$(dpkg --print-architecture)" --user 65535:65535 \
        --entrypoint '["/pause"]' --cmd '' "$container"
    bah commit --rm --quiet "$container" "$reference" >/dev/null
    container=""
    mkdir -p "$staging/out"
    bah push --quiet --digestfile "$staging/out/digest" "$reference" \
        "oci-archive:$staging/out/image.tar:$reference"
    write_info "$staging/out/image.tar" "$reference" "$staging/out/digest" "$((SECONDS - started))"
    mv "$staging/out" "$out"
    say "pause: built in $((SECONDS - started))s into $out"
}

# -- the chart's Redis, from Debian's redis-server on the runtime base -------------------

build_redis() {
    ensure_base
    local started=$SECONDS reference="localhost/redis:${REDIS_TAG}"
    say "redis: ${REDIS_PACKAGES} from ${DEBIAN_SUITE} on $runtime_ref as $reference"
    container="$(bah from "$runtime_ref")"
    # The user the chart runs it as (its podSecurityContext: uid and gid ${REDIS_UID}, the
    # official image's), made before the package so its postinst adopts it.
    bah run --network host "$container" -- sh -c \
        "groupadd --system --gid ${REDIS_UID} redis \
         && useradd --system --uid ${REDIS_UID} --gid redis --home-dir /data --no-create-home \
              --shell /usr/sbin/nologin redis \
         && apt-get update -qq && apt-get install -y -qq --no-install-recommends ${REDIS_PACKAGES} >/dev/null \
         && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/* \
         && install -d -o redis -g redis -m 0750 /data \
         && redis-server --version" 2>&1 | sed -u 's/^/image: redis: /' >&2
    bah config --user "${REDIS_UID}:${REDIS_UID}" --workingdir /data --port 6379/tcp \
        --volume /data --entrypoint '[]' --cmd redis-server \
        --label "org.opencontainers.image.description=Debian ${DEBIAN_SUITE}'s redis-server, run as uid ${REDIS_UID}" \
        "$container"
    bah commit --rm --quiet "$container" "$reference" >/dev/null
    container=""
    mkdir -p "$staging/out"
    bah push --quiet --digestfile "$staging/out/digest" "$reference" \
        "oci-archive:$staging/out/image.tar:$reference"
    write_info "$staging/out/image.tar" "$reference" "$staging/out/digest" "$((SECONDS - started))"
    mv "$staging/out" "$out"
    say "redis: built in $((SECONDS - started))s into $out"
}

case "$target" in
    stowage) build_stowage ;;
    pause) build_pause ;;
    redis) build_redis ;;
esac
echo "$out/image.tar"
