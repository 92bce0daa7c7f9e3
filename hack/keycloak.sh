#!/usr/bin/env bash
# Install Keycloak (the tenant authorization server of tests/keycloak) into a cache
# outside the repository: Maven Central's keycloak-quarkus-dist at the version and
# SHA-256 pinned in hack/keycloak/versions.env, unpacked, built once for a fast
# `start --optimized` (dev-file database), then started once to leave beside it what
# makes each test session's start quick (a third of a cold one):
#   stowage/template.mv.db  an H2 database already migrated, with the master realm and
#                           a bootstrap admin (loopback tests only; password in
#                           stowage_testing/keycloak.py), copied for each session;
#   stowage/keycloak.jsa    a class-data-sharing archive of that start (read-only after).
# Does nothing when it is already there. Prints the Keycloak home as its last line.
#
#   STOWAGE_TOOLS_DIR   cache root (default /var/cache/stowage/tools)
#   KEYCLOAK_JAVA_HOME  a Java 21+ JDK (default: JAVA_HOME when it is 21+, else the
#                       newest JDK under /usr/lib/jvm that is)
#
# Keycloak lands in $STOWAGE_TOOLS_DIR/keycloak-<version>; stowage_testing/keycloak.py
# computes the same path and finds Java the same way. Only Maven Central is used.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=keycloak/versions.env
source "$here/keycloak/versions.env"

say() { echo "keycloak: $*" >&2; }

root="${STOWAGE_TOOLS_DIR:-/var/cache/stowage/tools}"
dest="$root/keycloak-${KEYCLOAK_VERSION}"
# What the cached install was built with: a change of these options builds again.
build_options=(--db=dev-file --health-enabled=false --metrics-enabled=false)
# The JVM flags of every start (stowage_testing/keycloak.py passes the same ones):
# C1 only and a small heap start faster on two cores than the defaults (kc.sh picks G1).
jvm_flags="-XX:TieredStopAtLevel=1"
heap="-Xms128m -Xmx768m"
stamp_text="${KEYCLOAK_SHA256} ${build_options[*]} ${jvm_flags} primed"

java_major() {  # java-binary -> major version, or nothing
    "$1" -XshowSettings:properties -version 2>&1 \
        | sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p'
}

find_java_home() {
    local candidate major
    for candidate in "${KEYCLOAK_JAVA_HOME:-}" "${JAVA_HOME:-}"; do
        if [[ -n "$candidate" && -x "$candidate/bin/java" ]]; then
            major="$(java_major "$candidate/bin/java")"
            if [[ -n "$major" && "$major" -ge "$KEYCLOAK_MIN_JAVA" ]]; then
                echo "$candidate"
                return
            fi
        fi
    done
    for candidate in $(ls -d /usr/lib/jvm/*/ 2>/dev/null | sort -rV); do
        candidate="${candidate%/}"
        [[ -x "$candidate/bin/java" ]] || continue
        major="$(java_major "$candidate/bin/java")"
        if [[ -n "$major" && "$major" -ge "$KEYCLOAK_MIN_JAVA" ]]; then
            echo "$candidate"
            return
        fi
    done
}

if [[ -x "$dest/bin/kc.sh" ]] && [[ "$(cat "$dest/.stowage-installed" 2>/dev/null)" == "$stamp_text" ]]; then
    say "cached in $dest"
    echo "$dest"
    exit 0
fi

java_home="$(find_java_home)"
if [[ -z "$java_home" ]]; then
    say "no Java ${KEYCLOAK_MIN_JAVA}+ JDK found (set KEYCLOAK_JAVA_HOME, or install one," \
        "e.g. Debian 13: apt-get install openjdk-21-jre-headless)"
    exit 1
fi

url="https://repo1.maven.org/maven2/org/keycloak/keycloak-quarkus-dist/${KEYCLOAK_VERSION}/keycloak-quarkus-dist-${KEYCLOAK_VERSION}.tar.gz"
mkdir -p "$root"
staging="$(mktemp -d "$root/.keycloak-${KEYCLOAK_VERSION}.XXXXXX")"
trap 'rm -rf "$staging"' EXIT

say "downloading keycloak-quarkus-dist ${KEYCLOAK_VERSION} from Maven Central (about 170 MB)"
curl --fail --silent --show-error --location --retry 3 -o "$staging/dist.tar.gz" "$url"
echo "${KEYCLOAK_SHA256}  $staging/dist.tar.gz" | sha256sum --check --quiet - >&2 || {
    say "checksum mismatch for $url (expected ${KEYCLOAK_SHA256})"
    exit 1
}
tar -xzf "$staging/dist.tar.gz" -C "$staging"
rm "$staging/dist.tar.gz"
home="$staging/keycloak-${KEYCLOAK_VERSION}"
[[ -x "$home/bin/kc.sh" ]] || { say "the archive holds no keycloak-${KEYCLOAK_VERSION}/bin/kc.sh"; exit 1; }

# Build once, so each test session's `start --optimized` skips Quarkus' augmentation.
say "building Keycloak for start --optimized with $java_home (about a minute)"
JAVA_HOME="$java_home" "$home/bin/kc.sh" build "${build_options[@]}" >"$staging/build.log" 2>&1 || {
    cat "$staging/build.log" >&2
    say "kc.sh build failed"
    exit 1
}
rm -rf "$dest"
mv "$home" "$dest"

# Start it once (in place: the archive names the jars by path) and stop it.
say "first start, to keep a migrated database and a class-data archive (about half a minute)"
prime="$dest/stowage"
mkdir -p "$prime"
rm -f "$prime"/template.* "$prime/keycloak.jsa"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
JAVA_HOME="$java_home" JAVA_OPTS_KC_HEAP="$heap" \
    JAVA_OPTS_APPEND="$jvm_flags -XX:+AutoCreateSharedArchive -XX:SharedArchiveFile=$prime/keycloak.jsa -Dquarkus.transaction-manager.object-store.directory=$prime/transaction-logs" \
    KC_BOOTSTRAP_ADMIN_USERNAME=admin KC_BOOTSTRAP_ADMIN_PASSWORD=stowage-tests-admin \
    "$dest/bin/kc.sh" start --optimized --cache=local --http-enabled=true --http-host=127.0.0.1 \
    --http-port="$port" --hostname-strict=false \
    --db-url="jdbc:h2:file:$prime/template;NON_KEYWORDS=VALUE" >"$prime/prime.log" 2>&1 &
kc_pid=$!
ready=""
for _ in $(seq 1 1800); do
    if ! kill -0 "$kc_pid" 2>/dev/null; then break; fi
    if [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/realms/master" || true)" == 200 ]]; then
        ready=yes
        break
    fi
    sleep 0.1
done
kill -TERM "$kc_pid" 2>/dev/null || true
wait "$kc_pid" || true
if [[ -z "$ready" || ! -s "$prime/template.mv.db" ]]; then
    tail -n 40 "$prime/prime.log" >&2
    rm -rf "$dest"
    say "the first start failed (log above)"
    exit 1
fi
rm -rf "$prime/transaction-logs"
echo "$stamp_text" >"$dest/.stowage-installed"
say "installed in $dest"
echo "$dest"
