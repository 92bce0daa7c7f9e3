"""A real OCI registry (CNCF distribution), for charts and images pushed in tests.

It listens on loopback unless told another address (the e2e tier's cluster
pulls from one on the machine's end of the node's link).

The ``registry`` binary comes from ``hack/build-release-tools.sh`` (built from
its Go module into ``$STOWAGE_TOOLS_DIR/<tag>/bin``); the tag is derived from
``hack/release-tools/versions.env`` exactly as the script does.
"""

from __future__ import annotations

import os
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from stowage_testing.tls import Authority
from stowage_testing.tools import eventually, free_port, missing, terminate

REPO = Path(__file__).resolve().parents[1]
VERSIONS = REPO / "hack" / "release-tools" / "versions.env"


def release_tools() -> Path:
    """Where hack/build-release-tools.sh caches registry and helm-docs; fails if absent."""
    pins = dict(
        line.split("=", 1)
        for line in VERSIONS.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    root = Path(os.environ.get("STOWAGE_TOOLS_DIR") or "/var/cache/stowage/tools")
    tag = (
        f"release-distribution-{pins['DISTRIBUTION_VERSION']}-helm-docs-{pins['HELM_DOCS_VERSION']}"
    )
    bin_dir = root / tag / "bin"
    if not ((bin_dir / "registry").is_file() and (bin_dir / "helm-docs").is_file()):
        missing("the release tools (registry, helm-docs)", "run hack/build-release-tools.sh")
    return bin_dir


@dataclass(frozen=True)
class Registry:
    """A running registry: its ``host:port`` and, when it serves TLS, the CA that signed it."""

    address: str
    #: PEM of the CA (a directory holding it as ``ca.crt``, as skopeo's ``--*-cert-dir``
    #: reads it); None when the registry speaks plain HTTP.
    ca_file: Path | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.ca_file else 'http'}://{self.address}"

    @property
    def cert_dir(self) -> Path | None:
        return self.ca_file.parent if self.ca_file else None


@contextmanager
def running_registry(
    workdir: Path, *, tls: bool = False, host: str = "127.0.0.1"
) -> Iterator[Registry]:
    """Start a registry with its storage in ``workdir``; with ``tls``, behind a CA made here.

    It listens on ``host`` (an address of this machine), loopback by default; its TLS
    certificate names localhost and 127.0.0.1 only, so elsewhere serve plain HTTP.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    address = f"{host}:{free_port()}"
    http: dict[str, object] = {"addr": address}
    ca_file: Path | None = None
    if tls:
        authority = Authority.make("stowage-test-registry")
        cert, key = authority.server("localhost")
        (workdir / "tls.crt").write_bytes(cert)
        (workdir / "tls.key").write_bytes(key)
        (workdir / "certs").mkdir()
        ca_file = workdir / "certs" / "ca.crt"
        ca_file.write_text(authority.pem)
        http["tls"] = {"certificate": str(workdir / "tls.crt"), "key": str(workdir / "tls.key")}
    config = workdir / "config.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "version": 0.1,
                "log": {"level": "warn"},
                "storage": {"filesystem": {"rootdirectory": str(workdir / "data")}},
                "http": http,
            }
        )
    )
    registry = Registry(address, ca_file)
    verify: ssl.SSLContext | bool = (
        ssl.create_default_context(cafile=str(ca_file)) if ca_file else False
    )
    log_file = workdir / "registry.log"
    with log_file.open("wb") as log:
        proc = subprocess.Popen(
            [str(release_tools() / "registry"), "serve", str(config)], stdout=log, stderr=log
        )

    def answers() -> bool:
        assert proc.poll() is None, log_file.read_text()
        try:
            return httpx.get(f"{registry.url}/v2/", timeout=1.0, verify=verify).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        eventually(answers, 15, "the registry answers /v2/")
        yield registry
    finally:
        terminate(proc, grace=10)
