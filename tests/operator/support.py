"""Helpers for operator tests: Tenant documents, waiting on status, reading Secrets."""

from __future__ import annotations

import base64
import time
from typing import Any

import psycopg

from tests.support.kube import KubeCluster

API = "stowage.dev/v1alpha1"


def tenant_doc(name: str, namespace: str, region: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "region": region,
        "auth": {
            "issuer": "https://login.example.com/",
            "audience": f"https://mcp.example.com/t/{name}/mcp",
        },
        "rateLimits": {
            "perUser": {"requestsPerMinute": 120, "burst": 30},
            "perTenant": {"requestsPerMinute": 6000, "burst": 600},
        },
        "retention": {"defaultDays": 365, "collections": {"cache": 1}},
        "quotas": {"maxObjects": 1000, "maxBytes": "10Mi", "maxObjectBytes": "64Ki"},
        "collections": [
            {
                "name": "notes",
                "schemaVersion": 2,
                "schema": {
                    "type": "object",
                    "properties": {"title": {"type": "string"}, "body": {"type": "string"}},
                    "required": ["title"],
                },
                "upgrades": [{"fromVersion": 1, "rename": {"text": "body"}}],
            }
        ],
        "worker": {"replicas": 2},
    }
    body.update(spec)
    return {
        "apiVersion": API,
        "kind": "Tenant",
        "metadata": {"name": name, "namespace": namespace},
        "spec": body,
    }


def condition(tenant: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    for c in ((tenant or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return dict(c)
    return {}


def wait_for_tenant(
    kube: KubeCluster,
    namespace: str,
    name: str,
    *,
    ready: bool | None = True,
    reason: str | None = None,
    generation: int | None = None,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """Poll until the Ready condition says ``ready`` (and ``reason``) for the generation."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        last = kube.get(API, "Tenant", name, namespace)
        if last is not None:
            status = last.get("status") or {}
            want_generation = generation or last["metadata"]["generation"]
            c = condition(last, "Ready")
            if (
                status.get("observedGeneration") == want_generation
                and c
                and (ready is None or c["status"] == str(ready))
                and (reason is None or c.get("reason") == reason)
            ):
                return last
        time.sleep(0.1)
    raise AssertionError(f"Tenant {namespace}/{name} not as expected in {timeout}s: {last}")


def wait_gone(
    kube: KubeCluster,
    api: str,
    kind: str,
    name: str,
    namespace: str | None = None,
    timeout: float = 60.0,
) -> None:
    deadline = time.monotonic() + timeout
    while kube.get(api, kind, name, namespace) is not None:
        if time.monotonic() > deadline:
            raise AssertionError(f"{kind} {namespace}/{name} still exists after {timeout}s")
        time.sleep(0.1)


def secret_data(kube: KubeCluster, namespace: str, name: str) -> dict[str, str]:
    secret = kube.get("v1", "Secret", name, namespace)
    assert secret is not None, f"Secret {namespace}/{name} does not exist"
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


def connect(data: dict[str, str], dbname: str | None = None) -> psycopg.Connection[Any]:
    """Connect with a tenant Secret's credentials (to its own database unless told)."""
    return psycopg.connect(
        host=data["host"],
        port=int(data["port"]),
        dbname=dbname or data["database"],
        user=data["username"],
        password=data["password"],
        connect_timeout=5,
        autocommit=True,
    )


def databases(dsn: str) -> set[str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return {row[0] for row in conn.execute("SELECT datname FROM pg_database")}


def roles(dsn: str) -> set[str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return {row[0] for row in conn.execute("SELECT rolname FROM pg_roles")}
