"""A Region and a Tenant become a database, a Secret, worker objects and a Ready status."""

from __future__ import annotations

import json
import re

import psycopg
import pytest
import yaml

from stowage_testing.kube import KubeCluster
from stowage_testing.operator import (
    condition,
    connect,
    databases,
    make_region,
    secret_data,
    tenant_doc,
    wait_for_tenant,
)
from stowage_testing.postgres import PostgresServer, running_postgres

pytestmark = pytest.mark.kube


def test_api_server_reports_the_pinned_kubernetes_release(kube: KubeCluster) -> None:
    version = kube.request("GET", "/version")
    assert version["gitVersion"].startswith("v1.")
    assert version["gitVersion"] != "v0.0.0-master+$Format:%H$"


# Over 60 lines on purpose: every object one Tenant gets, checked in one pass against the real
# servers.
def test_tenant_gets_its_own_database_secret_and_worker_and_ends_ready(
    kube: KubeCluster, namespace: str, region: str, postgres: PostgresServer
) -> None:
    kube.apply(tenant_doc("acme", namespace, region))
    kube.apply(tenant_doc("globex", namespace, region, worker={"replicas": 1}))
    tenant = wait_for_tenant(kube, namespace, "acme")
    other = wait_for_tenant(kube, namespace, "globex")

    status = tenant["status"]
    assert status["endpoint"] == f"tenant-acme-worker.{namespace}.svc:50051"
    assert status["observedGeneration"] == tenant["metadata"]["generation"]
    for kind in ("DatabaseReady", "WorkerReady", "Ready"):
        assert condition(tenant, kind)["status"] == "True", condition(tenant, kind)

    # The Secret's credentials reach the tenant's database, migrated by the worker's migrations.
    creds = secret_data(kube, namespace, "tenant-acme-db")
    assert creds["database"] == status["database"]["name"]
    assert creds["database"] in databases(postgres.dsn())
    with connect(creds) as conn:
        tables = {
            r[0]
            for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
        assert "alembic_version" in tables
    # ... and nothing else: not the maintenance database, not another tenant's.
    other_db = other["status"]["database"]["name"]
    for dbname in ("postgres", "template1", other_db):
        with pytest.raises(psycopg.OperationalError, match="permission denied"):
            connect(creds, dbname).close()
    # No password in status.
    assert creds["password"] not in json.dumps(tenant)

    # The worker objects match the spec and the region.
    deployment = kube.get("apps/v1", "Deployment", "tenant-acme-worker", namespace)
    assert deployment is not None
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"topology.kubernetes.io/region": region}
    assert pod["securityContext"]["runAsNonRoot"] is True
    container = pod["containers"][0]
    assert container["image"] == "stowage:test"
    assert container["readinessProbe"]["grpc"]["port"] == 50051
    assert container["livenessProbe"]["grpc"]["port"] == 50051
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    env = {e["name"]: e for e in container["env"]}
    assert env["STOWAGE_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "tenant-acme-db",
        "key": "url",
    }
    assert env["STOWAGE_TENANT"]["value"] == "acme"
    # The worker's identity on its database, published for the gateways that send it.
    assert re.fullmatch(r"[0-9a-f]{24}", status["instance"]), status
    assert env["STOWAGE_WORKER_INSTANCE"]["value"] == status["instance"]
    assert other["status"]["instance"] != status["instance"]
    assert container["resources"]["requests"]

    service = kube.get("v1", "Service", "tenant-acme-worker", namespace)
    assert service is not None
    assert {p["port"] for p in service["spec"]["ports"]} >= {50051}

    policy = kube.get("networking.k8s.io/v1", "NetworkPolicy", "tenant-acme-worker", namespace)
    assert policy is not None
    [rule] = policy["spec"]["ingress"]
    assert rule["from"][0]["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "stowage-gateway"
    }
    assert rule["ports"] == [{"protocol": "TCP", "port": 50051}]

    assert kube.get("policy/v1", "PodDisruptionBudget", "tenant-acme-worker", namespace)
    assert kube.get("policy/v1", "PodDisruptionBudget", "tenant-globex-worker", namespace) is None

    config = kube.get("v1", "ConfigMap", "tenant-acme-policy", namespace)
    assert config is not None
    settings = yaml.safe_load(config["data"]["policy.yaml"])
    assert settings["retention"] == {"defaultDays": 365, "collections": {"cache": 1}}
    assert settings["quotas"]["maxObjects"] == 1000
    assert settings["collections"][0]["name"] == "notes"

    # The second tenant ended the same way, on its own database and Secret.
    for kind in ("DatabaseReady", "WorkerReady", "Ready"):
        assert condition(other, kind)["status"] == "True", condition(other, kind)
    other_creds = secret_data(kube, namespace, "tenant-globex-db")
    assert other_creds["database"] == other_db != creds["database"]
    assert other_db in databases(postgres.dsn())


def test_each_region_keeps_its_tenants_databases_on_its_own_server(
    kube: KubeCluster, namespace: str, postgres: PostgresServer
) -> None:
    with running_postgres() as other_server:
        eu = make_region(kube, postgres)
        us = make_region(kube, other_server)
        kube.apply(tenant_doc("eu-shop", namespace, eu))
        kube.apply(tenant_doc("us-shop", namespace, us))
        eu_db = wait_for_tenant(kube, namespace, "eu-shop")["status"]["database"]["name"]
        us_db = wait_for_tenant(kube, namespace, "us-shop")["status"]["database"]["name"]

        assert eu_db in databases(postgres.dsn())
        assert eu_db not in databases(other_server.dsn())
        assert us_db in databases(other_server.dsn())
        assert us_db not in databases(postgres.dsn())
        with connect(secret_data(kube, namespace, "tenant-us-shop-db")) as conn:
            assert conn.info.port == other_server.port
        # Leave no tenant on a server that is about to stop.
        kube.delete("stowage.dev/v1alpha1", "Tenant", "us-shop", namespace)
