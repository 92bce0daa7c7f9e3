"""Spec changes flow to the worker's settings; drift is repaired; deletion honours the policy."""

from __future__ import annotations

import psycopg
import pytest
import yaml

from stowage_testing.kube import KubeCluster
from stowage_testing.operator import (
    API,
    connect,
    databases,
    roles,
    secret_data,
    tenant_doc,
    wait_for_tenant,
    wait_gone,
)
from stowage_testing.postgres import PostgresServer
from stowage_testing.tools import eventually

pytestmark = pytest.mark.kube


def _database_oid(postgres: PostgresServer, name: str) -> int:
    with psycopg.connect(postgres.dsn(), autocommit=True) as conn:
        row = conn.execute("SELECT oid FROM pg_database WHERE datname = %s", (name,)).fetchone()
    assert row is not None, f"database {name} does not exist"
    return int(row[0])


def test_retention_and_rate_limit_changes_reach_settings_without_touching_the_database(
    kube: KubeCluster, namespace: str, region: str, postgres: PostgresServer
) -> None:
    kube.apply(tenant_doc("acme", namespace, region))
    tenant = wait_for_tenant(kube, namespace, "acme")
    dbname = tenant["status"]["database"]["name"]
    oid = _database_oid(postgres, dbname)
    creds = secret_data(kube, namespace, "tenant-acme-db")
    with connect(creds) as conn:
        conn.execute("CREATE TABLE marker (v text)")
        conn.execute("INSERT INTO marker VALUES ('kept')")

    kube.patch(
        API,
        "Tenant",
        "acme",
        {
            "spec": {
                "retention": {"defaultDays": 30, "collections": {"cache": 2}},
                "rateLimits": {"perUser": {"requestsPerMinute": 60, "burst": 10}},
                "quotas": {"maxObjects": 5000},
            }
        },
        namespace,
    )
    updated = wait_for_tenant(
        kube, namespace, "acme", generation=tenant["metadata"]["generation"] + 1
    )

    config = kube.get("v1", "ConfigMap", "tenant-acme-policy", namespace)
    assert config is not None
    settings = yaml.safe_load(config["data"]["policy.yaml"])
    assert settings["retention"] == {"defaultDays": 30, "collections": {"cache": 2}}
    assert settings["quotas"]["maxObjects"] == 5000
    # Rate limits are the gateway's: they reach it through the Tenant it reads, now observed.
    assert updated["spec"]["rateLimits"]["perUser"] == {"requestsPerMinute": 60, "burst": 10}
    assert updated["status"]["observedGeneration"] == updated["metadata"]["generation"]

    assert _database_oid(postgres, dbname) == oid
    assert secret_data(kube, namespace, "tenant-acme-db")["password"] == creds["password"]
    with connect(creds) as conn:
        assert conn.execute("SELECT v FROM marker").fetchall() == [("kept",)]


def test_dropped_database_deleted_secret_and_edited_deployment_are_repaired(
    kube: KubeCluster, namespace: str, region: str, postgres: PostgresServer
) -> None:
    kube.apply(tenant_doc("acme", namespace, region))
    tenant = wait_for_tenant(kube, namespace, "acme")
    dbname = tenant["status"]["database"]["name"]
    old_password = secret_data(kube, namespace, "tenant-acme-db")["password"]

    postgres.drop_database(dbname)
    kube.delete("v1", "Secret", "tenant-acme-db", namespace)
    kube.patch(
        "apps/v1",
        "Deployment",
        "tenant-acme-worker",
        {
            "spec": {
                "replicas": 7,
                "template": {"spec": {"containers": [{"name": "worker", "image": "evil:latest"}]}},
            }
        },
        namespace,
    )

    def repaired() -> bool:
        if dbname not in databases(postgres.dsn()):
            return False
        if kube.get("v1", "Secret", "tenant-acme-db", namespace) is None:
            return False
        deployment = kube.get("apps/v1", "Deployment", "tenant-acme-worker", namespace)
        assert deployment is not None
        return bool(
            deployment["spec"]["replicas"] == 2
            and deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "stowage:test"
        )

    eventually(repaired, timeout=30, what="database, Secret and Deployment repaired")
    creds = secret_data(kube, namespace, "tenant-acme-db")
    assert creds["password"] != old_password

    def connects_to_migrated_database() -> bool:
        try:
            with connect(creds) as conn:
                return bool(
                    conn.execute("SELECT to_regclass('public.alembic_version')").fetchone()[0]
                )
        except psycopg.OperationalError:
            return False

    eventually(connects_to_migrated_database, timeout=30, what="new credentials connect")
    wait_for_tenant(kube, namespace, "acme")


def _worker_objects(kube: KubeCluster, namespace: str, name: str) -> list[object]:
    worker = f"tenant-{name}-worker"
    return [
        kube.get("apps/v1", "Deployment", worker, namespace),
        kube.get("v1", "Service", worker, namespace),
        kube.get("networking.k8s.io/v1", "NetworkPolicy", worker, namespace),
        kube.get("policy/v1", "PodDisruptionBudget", worker, namespace),
        kube.get("v1", "ConfigMap", f"tenant-{name}-policy", namespace),
        kube.get("v1", "Secret", f"tenant-{name}-db", namespace),
    ]


def test_deleting_with_retain_keeps_the_database_and_role_but_removes_the_worker(
    kube: KubeCluster, namespace: str, region: str, postgres: PostgresServer
) -> None:
    kube.apply(tenant_doc("acme", namespace, region))
    db = wait_for_tenant(kube, namespace, "acme")["status"]["database"]
    assert all(_worker_objects(kube, namespace, "acme"))

    kube.delete(API, "Tenant", "acme", namespace)
    wait_gone(kube, API, "Tenant", "acme", namespace)

    assert _worker_objects(kube, namespace, "acme") == [None] * 6
    assert db["name"] in databases(postgres.dsn())
    assert db["user"] in roles(postgres.dsn())


def test_deleting_with_delete_drops_the_database_and_role_and_removes_the_worker(
    kube: KubeCluster, namespace: str, region: str, postgres: PostgresServer
) -> None:
    kube.apply(tenant_doc("acme", namespace, region, deletionPolicy="Delete"))
    db = wait_for_tenant(kube, namespace, "acme")["status"]["database"]
    with connect(secret_data(kube, namespace, "tenant-acme-db")):
        pass  # an open session does not stop the drop

    kube.delete(API, "Tenant", "acme", namespace)
    wait_gone(kube, API, "Tenant", "acme", namespace)

    assert _worker_objects(kube, namespace, "acme") == [None] * 6
    assert db["name"] not in databases(postgres.dsn())
    assert db["user"] not in roles(postgres.dsn())


def test_a_retained_database_is_adopted_by_a_recreated_tenant(
    kube: KubeCluster, namespace: str, region: str, postgres: PostgresServer
) -> None:
    kube.apply(tenant_doc("acme", namespace, region))
    wait_for_tenant(kube, namespace, "acme")
    with connect(secret_data(kube, namespace, "tenant-acme-db")) as conn:
        conn.execute("CREATE TABLE marker (v text)")
        conn.execute("INSERT INTO marker VALUES ('kept')")
    kube.delete(API, "Tenant", "acme", namespace)
    wait_gone(kube, API, "Tenant", "acme", namespace)

    kube.apply(tenant_doc("acme", namespace, region))
    wait_for_tenant(kube, namespace, "acme")
    with connect(secret_data(kube, namespace, "tenant-acme-db")) as conn:
        assert conn.execute("SELECT v FROM marker").fetchall() == [("kept",)]
