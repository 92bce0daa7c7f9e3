"""Backups per Tenant: two CronJobs in the tenant's region, with its Secret only, kept in step."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import psycopg
import pytest

from stowage_testing.kube import KubeCluster, KubeError
from stowage_testing.operator import (
    API,
    condition,
    make_region,
    tenant_doc,
    wait_for_tenant,
    wait_gone,
)
from stowage_testing.postgres import PostgresServer

pytestmark = pytest.mark.kube

BACKUP = {"persistentVolumeClaim": {"claimName": "region-backups"}}


@pytest.fixture
def backup_region(kube: KubeCluster, postgres: PostgresServer) -> str:
    return make_region(
        kube,
        postgres,
        backup={**BACKUP, "schedule": "0 2 * * *", "keep": {"count": 7}},
        tolerations=[{"key": "region", "operator": "Equal", "value": "eu", "effect": "NoSchedule"}],
    )


def _cron_jobs(kube: KubeCluster, namespace: str, name: str) -> dict[str, dict[str, Any]]:
    found = {}
    for task in ("backup", "drill"):
        job = kube.get("batch/v1", "CronJob", f"tenant-{name}-{task}", namespace)
        if job is not None:
            found[task] = job
    return found


def _pod(job: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return spec


def _env(job: dict[str, Any]) -> dict[str, Any]:
    (container,) = _pod(job)["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def _secret_refs(node: Any) -> list[str]:
    """Every Secret a pod spec names, wherever it names it."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in {"secretKeyRef", "secretRef"}:
                found.append(value["name"])
            elif key == "secret":
                found.append(value["secretName"])
            else:
                found += _secret_refs(value)
    elif isinstance(node, list):
        for item in node:
            found += _secret_refs(item)
    return found


def test_a_tenant_gets_backup_and_drill_cron_jobs_in_its_region_with_its_secret_only(
    kube: KubeCluster, namespace: str, backup_region: str, postgres: PostgresServer
) -> None:
    kube.apply(tenant_doc("acme", namespace, backup_region, backup={"drillSchedule": "30 4 * * 0"}))
    tenant = wait_for_tenant(kube, namespace, "acme")
    scheduled = condition(tenant, "BackupScheduled")
    assert (scheduled["status"], scheduled["reason"]) == ("True", "Scheduled")
    assert "PersistentVolumeClaim region-backups" in scheduled["message"]

    jobs = _cron_jobs(kube, namespace, "acme")
    assert jobs["backup"]["spec"]["schedule"] == "0 2 * * *"  # the Region's default
    assert jobs["drill"]["spec"]["schedule"] == "30 4 * * 0"  # the Tenant's own
    database = tenant["status"]["database"]["name"]
    for task, job in jobs.items():
        pod = _pod(job)
        assert job["spec"]["concurrencyPolicy"] == "Forbid"
        assert pod["nodeSelector"] == {"topology.kubernetes.io/region": backup_region}
        assert pod["tolerations"] == [
            {"key": "region", "operator": "Equal", "value": "eu", "effect": "NoSchedule"}
        ]
        assert _secret_refs(pod) == ["tenant-acme-db"]
        assert _env(job)["STOWAGE_DATABASE_URL"] == {
            "secretKeyRef": {"name": "tenant-acme-db", "key": "url"}
        }
        assert pod["automountServiceAccountToken"] is False
        assert {v["name"]: v for v in pod["volumes"]} == {
            "backups": {
                "name": "backups",
                "persistentVolumeClaim": {"claimName": "region-backups"},
            },
            "tmp": {"name": "tmp", "emptyDir": {}},
        }
        (container,) = pod["containers"]
        assert container["args"] == ["backup", "run" if task == "backup" else "drill"]
        mount = next(m for m in container["volumeMounts"] if m["name"] == "backups")
        assert (mount["subPath"], mount.get("readOnly", False)) == ("acme", task == "drill")
    assert _env(jobs["backup"])["STOWAGE_BACKUP_KEEP_COUNT"] == "7"
    assert _env(jobs["drill"])["STOWAGE_BACKUP_SCRATCH_DATABASE"] == f"{database}_drill"
    # The scratch database exists and is the tenant role's, so the drill needs no CREATEDB.
    with psycopg.connect(postgres.dsn(), autocommit=True) as conn:
        owner = conn.execute(
            "SELECT r.rolname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba "
            "WHERE d.datname = %s",
            (f"{database}_drill",),
        ).fetchall()
    assert owner == [(tenant["status"]["database"]["user"],)]


def test_the_jobs_pods_are_admitted_under_the_restricted_pod_security_standard(
    kube: KubeCluster, namespace: str, backup_region: str
) -> None:
    kube.apply(tenant_doc("acme", namespace, backup_region))
    wait_for_tenant(kube, namespace, "acme")
    jobs = _cron_jobs(kube, namespace, "acme")
    restricted = f"psa-{uuid.uuid4().hex[:8]}"
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": restricted,
                "labels": {
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": "latest",
                },
            },
        }
    )
    for task, job in jobs.items():
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"{task}-pod", "namespace": restricted},
            "spec": copy.deepcopy(_pod(job)),
        }
        kube.apply(pod)  # refused (403) if the template breaks the restricted standard
        assert kube.get("v1", "Pod", f"{task}-pod", restricted) is not None
    # The check is real: the same pod with a writable root filesystem and root is refused.
    bad = copy.deepcopy(_pod(jobs["backup"]))
    bad["securityContext"].pop("runAsNonRoot")
    bad["containers"][0]["securityContext"]["capabilities"] = {"add": ["NET_ADMIN"]}
    with pytest.raises(KubeError):
        kube.apply(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "bad-pod", "namespace": restricted},
                "spec": bad,
            }
        )


def test_changing_spec_backup_updates_the_cron_jobs_and_disabling_removes_them(
    kube: KubeCluster, namespace: str, backup_region: str
) -> None:
    kube.apply(tenant_doc("acme", namespace, backup_region))
    tenant = wait_for_tenant(kube, namespace, "acme")
    generation = tenant["metadata"]["generation"]

    kube.patch(
        API,
        "Tenant",
        "acme",
        {"spec": {"backup": {"schedule": "15 1 * * *", "keep": {"days": 30}}}},
        namespace,
    )
    wait_for_tenant(kube, namespace, "acme", generation=generation + 1)
    job = _cron_jobs(kube, namespace, "acme")["backup"]
    assert job["spec"]["schedule"] == "15 1 * * *"
    env = _env(job)
    assert env["STOWAGE_BACKUP_KEEP_DAYS"] == "30"
    assert "STOWAGE_BACKUP_KEEP_COUNT" not in env  # the Tenant's keep replaces the Region's

    kube.patch(API, "Tenant", "acme", {"spec": {"backup": {"enabled": False}}}, namespace)
    tenant = wait_for_tenant(kube, namespace, "acme", generation=generation + 2)
    assert _cron_jobs(kube, namespace, "acme") == {}
    assert condition(tenant, "BackupScheduled")["reason"] == "Disabled"
    assert condition(tenant, "Ready")["status"] == "True"


def test_deleting_the_tenant_removes_its_cron_jobs(
    kube: KubeCluster, namespace: str, backup_region: str, postgres: PostgresServer
) -> None:
    kube.apply(tenant_doc("acme", namespace, backup_region, deletionPolicy="Delete"))
    tenant = wait_for_tenant(kube, namespace, "acme")
    database = tenant["status"]["database"]["name"]
    assert set(_cron_jobs(kube, namespace, "acme")) == {"backup", "drill"}

    kube.delete(API, "Tenant", "acme", namespace)
    wait_gone(kube, API, "Tenant", "acme", namespace)
    assert _cron_jobs(kube, namespace, "acme") == {}
    with psycopg.connect(postgres.dsn(), autocommit=True) as conn:
        left = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (f"{database}%",)
        ).fetchall()
    assert left == []


def test_a_region_without_backup_storage_schedules_no_backups(
    kube: KubeCluster, namespace: str, region: str
) -> None:
    kube.apply(tenant_doc("acme", namespace, region, backup={"schedule": "0 1 * * *"}))
    tenant = wait_for_tenant(kube, namespace, "acme")
    scheduled = condition(tenant, "BackupScheduled")
    assert (scheduled["status"], scheduled["reason"]) == ("False", "NoBackupStorage")
    assert _cron_jobs(kube, namespace, "acme") == {}


def test_the_api_server_refuses_a_malformed_backup_spec(
    kube: KubeCluster, namespace: str, backup_region: str
) -> None:
    for backup, field in (
        ({"schedule": "every day"}, "spec.backup.schedule"),
        ({"keep": {}}, "spec.backup.keep"),
        ({"keep": {"count": 0}}, "spec.backup.keep.count"),
    ):
        with pytest.raises(KubeError) as refused:
            kube.apply(
                tenant_doc(f"bad-{uuid.uuid4().hex[:6]}", namespace, backup_region, backup=backup)
            )
        assert field in str(refused.value)


def test_a_region_backup_needs_its_storage(kube: KubeCluster, postgres: PostgresServer) -> None:
    with pytest.raises(KubeError) as refused:
        make_region(kube, postgres, backup={"schedule": "0 2 * * *"})
    assert "spec.backup.persistentVolumeClaim" in str(refused.value)
