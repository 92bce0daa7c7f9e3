"""The Dockerfile the chart's image is built from carries every component and the backup tools.

No container runtime is needed: these read the Dockerfile and pyproject.toml.
The image itself is built by ``make image`` (buildah, hack/build-image.sh) or
``docker build .``, and run by tests/e2e/test_image.py.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = (REPO / "Dockerfile").read_text()
#: Programs that compile; none may be installed in the image that ships.
BUILD_TOOLS = ("build-essential", "gcc", "g++", "make", "-dev", "clang", "cargo")


def stages() -> list[str]:
    """The Dockerfile's stages, each from its FROM line on."""
    parts = re.split(r"(?m)^(?=FROM )", DOCKERFILE)
    return [p for p in parts if p.startswith("FROM ")]


def test_the_build_stage_copies_every_package_the_wheel_ships() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    assert "tenant_backup" in packages
    build = stages()[0]
    for package in packages:
        top = package.split("/")[0]
        assert re.search(rf"(?m)^COPY {re.escape(top)}/ {re.escape(top)}/$", build), package


def test_the_final_stage_has_the_postgresql_client_programs_and_no_build_tools() -> None:
    final = stages()[-1]
    installs = re.findall(r"apt-get install[^\n]*", final)
    assert any("postgresql-client-${POSTGRES_CLIENT_MAJOR}" in i for i in installs), installs
    for line in installs:
        for tool in BUILD_TOOLS:
            assert tool not in line.replace("postgresql-client", ""), (tool, line)
    assert "rm -rf /var/lib/apt/lists/*" in final
    # `stowage backup` finds pg_dump, pg_restore and psql of that major version.
    assert "STOWAGE_PG_BIN=/usr/lib/postgresql/${POSTGRES_CLIENT_MAJOR}/bin" in final


def test_the_client_version_is_pinned_with_the_debian_release_that_ships_it() -> None:
    base = re.search(r"(?m)^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE)
    major = re.search(r"(?m)^ARG POSTGRES_CLIENT_MAJOR=(\d+)$", DOCKERFILE)
    assert base and major
    # Debian bookworm ships PostgreSQL 15: the base's release decides the client's major.
    assert (base.group(1).rsplit("-", 1)[-1], major.group(1)) == ("bookworm", "15")


def test_the_build_stage_is_the_runtime_python_unless_told_otherwise() -> None:
    # The venv copied into the final stage names its interpreter by path: both stages'
    # bases must have the same Python at the same place, so by default they are one image.
    assert re.search(r"(?m)^ARG BUILD_IMAGE=\$\{PYTHON_IMAGE\}$", DOCKERFILE)
    build, final = stages()[0], stages()[-1]
    assert build.startswith("FROM ${BUILD_IMAGE} AS build")
    assert final.startswith("FROM ${PYTHON_IMAGE} AS runtime")


def test_the_dependencies_install_before_the_sources_are_copied_and_are_checked() -> None:
    # Their layer then survives a change to the sources; the wheel goes in without
    # resolving again, and `pip check` fails the build if it needs anything not there.
    build = stages()[0]
    deps = build.index("--requirement /tmp/requirements.txt")
    assert deps < build.index("COPY stowage/ stowage/")
    assert "COPY pyproject.toml ./" in build[:deps]
    assert "pip install --no-deps /wheels/stowage-*.whl" in build
    assert build.index("pip install --no-deps") < build.index("pip check")
