# syntax=docker/dockerfile:1
# One image for every Stowage component; the entrypoint is the `stowage` CLI:
#
#   stowage operator                 the kopf operator (chart: the operator Deployment)
#   stowage gateway serve ...        the MCP gateway (chart: the gateway Deployment)
#   stowage worker serve ...         a tenant's worker (created by the operator)
#   stowage backup run|drill ...     a tenant's backup and restore drill (CronJobs
#                                    created by the operator); restore, list, prune
#
#   docker build -t ghcr.io/stowage/stowage:0.1.0 .
#   make image      the same build with buildah, on a Debian bookworm base made
#                   with debootstrap (hack/build-image.sh), into an OCI archive
#
# Two stages: `build` makes the wheel and installs it with its dependencies into
# a virtual environment at /opt/stowage; the final stage copies only that
# environment onto a slim Python, so no compiler, pip cache or source tree
# ships. It runs as uid/gid 10001 (the chart's runAsUser) and writes nothing
# outside /tmp, so readOnlyRootFilesystem works with an emptyDir on /tmp.
#
# PostgreSQL client programs: `stowage backup` runs pg_dump, pg_restore and
# psql, which must be of the Regions' servers' major version OR NEWER (pg_dump
# refuses a newer server; a newer pg_dump reads every older one). The final
# stage installs Debian's postgresql-client-<POSTGRES_CLIENT_MAJOR> from apt:
# 15 on bookworm, for servers up to PostgreSQL 15. For newer servers build on a
# Debian that ships a newer client, e.g.
#   docker build --build-arg PYTHON_IMAGE=python:3.11-slim-trixie \
#                --build-arg POSTGRES_CLIENT_MAJOR=17 .
# The base is pinned to a Debian release so the client version cannot drift.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
# The build stage's base: the same by default; any image of the same Python at
# the same path with pip and venv (the venv's scripts name its interpreter).
ARG BUILD_IMAGE=${PYTHON_IMAGE}
ARG POSTGRES_CLIENT_MAJOR=15

FROM ${BUILD_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# Every dependency ships binary wheels for CPython 3.11 on amd64 and arm64
# (grpcio, psycopg[binary], aiohttp, cryptography), so no compiler is needed here.
# The dependencies come first, read from pyproject.toml alone: their layer is
# rebuilt when they change, not on every change to the sources. pip's download
# cache is a cache mount: rebuilds reuse it and no layer holds it.
COPY pyproject.toml ./
RUN --mount=type=cache,target=/root/.cache/pip \
    python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"], sep="\n")' \
        >/tmp/requirements.txt \
 && python -m venv /opt/stowage \
 && /opt/stowage/bin/pip install --requirement /tmp/requirements.txt \
 && /opt/stowage/bin/python -m compileall -q /opt/stowage/lib
# Then the project: the RUN below builds the wheel, installs it into the venv
# (checking that its dependencies are all there), drops pip and setuptools from
# it, byte-compiles everything (the root filesystem is read-only at run time, so
# nothing could be compiled later) and checks the entry point.
COPY README.md ./
COPY stowage/ stowage/
COPY gateway/ gateway/
COPY stowage_dev/ stowage_dev/
COPY tenant_worker/ tenant_worker/
COPY tenant_backup/ tenant_backup/
COPY operator/ operator/
RUN --mount=type=cache,target=/root/.cache/pip \
    python -m pip wheel --no-deps --wheel-dir /wheels . \
 && /opt/stowage/bin/pip install --no-deps /wheels/stowage-*.whl \
 && /opt/stowage/bin/pip check \
 && /opt/stowage/bin/pip uninstall --yes pip setuptools \
 && /opt/stowage/bin/python -m compileall -q /opt/stowage/lib \
 && /opt/stowage/bin/stowage --help >/dev/null \
 && /opt/stowage/bin/stowage backup --help >/dev/null

FROM ${PYTHON_IMAGE} AS runtime
ARG POSTGRES_CLIENT_MAJOR
LABEL org.opencontainers.image.title="stowage" \
      org.opencontainers.image.description="Stowage: per-tenant storage for ChatGPT apps (operator, gateway, worker, backups)" \
      org.opencontainers.image.source="https://github.com/stowage-dev/stowage" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 stowage \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin stowage
# The PostgreSQL client programs only (no server, no compiler, no apt lists left);
# STOWAGE_PG_BIN points `stowage backup` at this major version's binaries directly.
RUN apt-get update \
 && apt-get install --yes --no-install-recommends "postgresql-client-${POSTGRES_CLIENT_MAJOR}" \
 && rm -rf /var/lib/apt/lists/* \
 && "/usr/lib/postgresql/${POSTGRES_CLIENT_MAJOR}/bin/pg_dump" --version
# The same path as in the build stage: the venv's scripts name its interpreter.
COPY --from=build /opt/stowage /opt/stowage
ENV PATH=/opt/stowage/bin:$PATH \
    STOWAGE_PG_BIN=/usr/lib/postgresql/${POSTGRES_CLIENT_MAJOR}/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
WORKDIR /tmp
USER 10001:10001
# gateway HTTP, worker gRPC, worker metrics, operator metrics, operator health
EXPOSE 8000 50051 9100 9090 8080
ENTRYPOINT ["stowage"]
CMD ["--help"]
