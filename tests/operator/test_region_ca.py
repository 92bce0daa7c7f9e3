"""A Region's own CA: ``verify-full`` against a PostgreSQL whose certificate a private CA signed.

The test makes a CA and a server certificate for ``localhost`` and starts a
real PostgreSQL serving TLS with it. A Region naming that server by
``localhost``, ``verify-full`` and the CA's Secret (``caSecretRef``)
provisions a Tenant: the operator's admin connections and the migrations
verify the server with the CA, the tenant's Secret carries it (``ca.crt``) and
a URL naming it where the worker and backup pods mount it. A Region that
trusts another CA gets no database.
"""

from __future__ import annotations

import dataclasses
import os
import pwd
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from stowage_testing.kube import KubeCluster
from stowage_testing.operator import (
    ADMIN_NAMESPACE,
    condition,
    secret_data,
    tenant_doc,
    wait_for_tenant,
)
from stowage_testing.postgres import PostgresServer, running_own_postgres
from stowage_testing.tls import Authority
from stowage_testing.tools import eventually
from tenant_backup._types import Database

pytestmark = [pytest.mark.kube, pytest.mark.postgres]

API = "stowage.dev/v1alpha1"


@pytest.fixture(scope="module")
def authority() -> Authority:
    return Authority.make("Stowage test region CA")


@pytest.fixture(scope="module")
def tls_postgres(authority: Authority) -> Iterator[PostgresServer]:
    """A PostgreSQL serving TLS with a certificate for localhost that ``authority`` signed."""
    directory = Path(tempfile.mkdtemp(prefix="stowage-pg-tls-"))
    cert, key = authority.server("localhost")
    (directory / "server.crt").write_bytes(cert)
    (directory / "server.key").write_bytes(key)
    (directory / "server.key").chmod(0o600)
    if os.geteuid() == 0:  # the harness runs the server as postgres
        owner = pwd.getpwnam("postgres")
        for path in (directory, directory / "server.crt", directory / "server.key"):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    options = (
        f"-c ssl=on -c ssl_cert_file={directory}/server.crt -c ssl_key_file={directory}/server.key"
    )
    try:
        with running_own_postgres(options) as server:
            yield server
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def tls_region(kube: KubeCluster, server: PostgresServer, ca_pem: str) -> str:
    """A Region reaching ``server`` as localhost with verify-full, trusting ``ca_pem``."""
    name = f"tls-{uuid.uuid4().hex[:8]}"
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"pg-{name}-admin", "namespace": ADMIN_NAMESPACE},
            "stringData": {"username": server.user, "password": server.password},
        }
    )
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"pg-{name}-ca", "namespace": ADMIN_NAMESPACE},
            "stringData": {"ca.crt": ca_pem},
        }
    )
    kube.apply(
        {
            "apiVersion": API,
            "kind": "Region",
            "metadata": {"name": name},
            "spec": {
                "postgres": {
                    "host": "localhost",
                    "port": server.port,
                    "sslMode": "verify-full",
                    "adminSecretRef": {"name": f"pg-{name}-admin", "namespace": ADMIN_NAMESPACE},
                    "caSecretRef": {"name": f"pg-{name}-ca", "namespace": ADMIN_NAMESPACE},
                },
                "backup": {"persistentVolumeClaim": {"claimName": "region-backups"}},
            },
        }
    )
    return name


def mounts_the_ca(pod_spec: dict[str, Any], secret: str) -> bool:
    volumes = {v["name"]: v for v in pod_spec.get("volumes") or []}
    ca = volumes.get("postgres-ca", {}).get("secret") or {}
    mounted = {
        m["mountPath"]
        for c in pod_spec["containers"]
        for m in c.get("volumeMounts") or []
        if m["name"] == "postgres-ca"
    }
    return ca.get("secretName") == secret and mounted == {"/etc/stowage/postgres-ca"}


def test_a_region_with_its_own_ca_provisions_a_tenant_over_verify_full(
    kube: KubeCluster,
    namespace: str,
    tls_postgres: PostgresServer,
    authority: Authority,
    tmp_path: Path,
) -> None:
    region = tls_region(kube, tls_postgres, authority.pem)
    kube.apply(tenant_doc("acme", namespace, region))
    tenant = wait_for_tenant(kube, namespace, "acme", ready=True, timeout=60)
    assert condition(tenant, "DatabaseReady")["status"] == "True"

    # The tenant's Secret: the CA, and a URL that verifies the server with it.
    data = secret_data(kube, namespace, "tenant-acme-db")
    assert data["ca.crt"] == authority.pem
    assert data["sslmode"] == "verify-full"
    assert data["url"].endswith("?sslmode=verify-full&sslrootcert=/etc/stowage/postgres-ca/ca.crt")

    # The worker and the backup Jobs mount it where the URL says.
    worker = kube.get("apps/v1", "Deployment", "tenant-acme-worker", namespace)
    assert worker is not None
    assert mounts_the_ca(worker["spec"]["template"]["spec"], "tenant-acme-db")
    for task in ("backup", "drill"):
        cronjob = kube.get("batch/v1", "CronJob", f"tenant-acme-{task}", namespace)
        assert cronjob is not None, task
        job_pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        assert mounts_the_ca(job_pod, "tenant-acme-db"), task

    # What a worker or backup pod does with them: the Secret's URL, read as the backup
    # tool reads it, with the CA where the pod has it mounted (here: a local file).
    database = Database.from_url(data["url"])
    assert database.environment()["PGSSLROOTCERT"] == "/etc/stowage/postgres-ca/ca.crt"
    ca_file = tmp_path / "ca.crt"
    ca_file.write_text(data["ca.crt"])
    here = dataclasses.replace(database, sslrootcert=str(ca_file))
    with psycopg.connect(**here.conninfo()) as conn:
        row = conn.execute(
            "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        ).fetchone()
        assert row is not None and row[0] is True
        # The operator's migrations ran over the same verified connection.
        revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        assert revision
    url = data["url"].replace(data["password"], "***")
    print(f"\nRegion {region} (verify-full, caSecretRef): Tenant acme Ready,")
    print(f"  {[(c['type'], c['status']) for c in tenant['status']['conditions']]}")
    print(f"  tenant Secret url: {url}")
    print(f"  the tenant role's connection: ssl={row[0]} {row[1]}; migrated to {revision[0]}")


def test_a_region_trusting_another_ca_gets_no_database(
    kube: KubeCluster, namespace: str, tls_postgres: PostgresServer
) -> None:
    stranger = Authority.make("Some other CA")
    region = tls_region(kube, tls_postgres, stranger.pem)
    kube.apply(tenant_doc("acme", namespace, region))

    def refused() -> bool:
        found = kube.get(API, "Tenant", "acme", namespace)
        ready = condition(found, "DatabaseReady") if found else {}
        return (ready.get("status"), ready.get("reason")) == ("False", "DatabaseUnreachable")

    eventually(refused, 30, "DatabaseReady=False (DatabaseUnreachable) with the wrong CA")
    assert kube.get("v1", "Secret", "tenant-acme-db", namespace) is not None  # written first
    assert kube.get("apps/v1", "Deployment", "tenant-acme-worker", namespace) is None
