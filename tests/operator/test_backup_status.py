"""What the backup and drill Jobs ended with reaches the Tenant's status.backup and the metrics.

There is no kubelet or Job controller in the test control plane, so each test
leaves a Job and its pod the way a real run leaves them (``finished_job``:
the container's termination message carries the JSON result, the Job's
status its conditions) through the real API server, and watches the
in-process operator pick them up on its resync.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from prometheus_client import REGISTRY
from stowage_operator._backup_status import finished_runs, fold

from stowage_testing.kube import KubeCluster
from stowage_testing.operator import (
    API,
    condition,
    finished_job,
    make_region,
    tenant_doc,
    wait_for_tenant,
)
from stowage_testing.postgres import PostgresServer
from stowage_testing.tools import eventually

NOW = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
BACKUP_ID = "20261123T020012Z-744a"


def _ago(minutes: float) -> datetime.datetime:
    return NOW - datetime.timedelta(minutes=minutes)


def _stamp(at: datetime.datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def backup_result(taken: datetime.datetime, backup: str = BACKUP_ID, size: int = 15201) -> Any:
    """What ``stowage backup run`` writes to /dev/termination-log when it succeeds."""
    return {
        "command": "run",
        "time": taken.isoformat(),
        "result": "Succeeded",
        "seconds": 1.4,
        "backup": backup,
        "backupTime": taken.isoformat(),
        "sizeBytes": size,
        "revision": "0002",
        "pruned": 0,
    }


def drill_result(backup: str = BACKUP_ID, failure: tuple[str, str] | None = None) -> Any:
    """What ``stowage backup drill`` writes: its backup if it passed, else reason and message."""
    outcome: dict[str, Any] = {"command": "drill", "time": NOW.isoformat()}
    if failure is None:
        outcome.update(result="Succeeded", seconds=0.4, backup=backup, sizeBytes=15201)
    else:
        outcome.update(result="Failed", reason=failure[0], message=failure[1])
    return outcome


def sample(metric: str, namespace: str) -> float | None:
    return REGISTRY.get_sample_value(metric, {"namespace": namespace, "tenant": "acme"})


def backup_status(kube: KubeCluster, namespace: str) -> dict[str, Any]:
    tenant = kube.get(API, "Tenant", "acme", namespace) or {}
    found: dict[str, Any] = (tenant.get("status") or {}).get("backup") or {}
    return found


@pytest.fixture
def backup_region(kube: KubeCluster, postgres: PostgresServer) -> str:
    return make_region(kube, postgres, backup={"persistentVolumeClaim": {"claimName": "backups"}})


@pytest.fixture
def tenant(kube: KubeCluster, namespace: str, backup_region: str) -> dict[str, Any]:
    kube.apply(tenant_doc("acme", namespace, backup_region))
    found = wait_for_tenant(kube, namespace, "acme")
    assert condition(found, "BackupScheduled")["status"] == "True"
    return found


@pytest.mark.kube
def test_a_finished_backup_and_drill_reach_the_tenant_status_and_the_metrics(
    kube: KubeCluster, namespace: str, tenant: dict[str, Any]
) -> None:
    # Before any Job ran: backups are scheduled, no success is known.
    eventually(
        lambda: sample("stowage_backup_scheduled_since_timestamp_seconds", namespace),
        timeout=30,
        what="the scheduled-since metric of a Tenant with backups",
    )
    assert sample("stowage_backup_last_success_timestamp_seconds", namespace) is None
    assert "backup" not in (tenant.get("status") or {})

    taken = _ago(30)
    finished_job(
        kube,
        namespace,
        "acme",
        "backup",
        succeeded=True,
        finished=_ago(29),
        result=backup_result(taken),
    )
    drill = finished_job(
        kube,
        namespace,
        "acme",
        "drill",
        succeeded=True,
        finished=_ago(5),
        result=drill_result(),
    )

    eventually(
        lambda: backup_status(kube, namespace).get("lastDrill"),
        timeout=30,
        what="status.backup.lastDrill after a finished drill Job",
    )
    assert backup_status(kube, namespace) == {
        "lastSuccessTime": _stamp(taken),  # the snapshot's time, not the Job's end
        "lastBackup": BACKUP_ID,
        "sizeBytes": 15201,
        "lastDrill": {
            "time": _stamp(_ago(5)),
            "result": "Succeeded",
            "reason": "Verified",
            "message": f"backup {BACKUP_ID} restored into the scratch database and matched its "
            "manifest (sha256, schema revision, row count per table)",
            "backup": BACKUP_ID,
            "job": drill,
        },
    }
    eventually(
        lambda: sample("stowage_backup_last_drill_success", namespace) == 1,
        timeout=30,
        what="the drill metric",
    )
    assert sample("stowage_backup_last_success_timestamp_seconds", namespace) == taken.timestamp()
    assert sample("stowage_backup_size_bytes", namespace) == 15201
    assert sample("stowage_backup_last_drill_timestamp_seconds", namespace) == _ago(5).timestamp()


@pytest.mark.kube
def test_a_failed_drill_is_reported_failed_with_its_reason_and_the_backup_stays_known(
    kube: KubeCluster, namespace: str, tenant: dict[str, Any]
) -> None:
    taken = _ago(120)
    finished_job(
        kube,
        namespace,
        "acme",
        "backup",
        succeeded=True,
        finished=_ago(119),
        result=backup_result(taken),
    )
    finished_job(
        kube,
        namespace,
        "acme",
        "drill",
        succeeded=True,
        finished=_ago(60),
        result=drill_result(),
    )
    corrupt = (
        f"{BACKUP_ID}.dump has sha256 1969ac0c9be2…, its manifest says 35f9718c7997…: "
        "the archive is corrupt; do not restore it"
    )
    failed = finished_job(
        kube,
        namespace,
        "acme",
        "drill",
        succeeded=False,
        finished=_ago(2),
        result=drill_result(failure=("Corrupt", corrupt)),
    )

    eventually(
        lambda: (backup_status(kube, namespace).get("lastDrill") or {}).get("result") == "Failed",
        timeout=30,
        what="status.backup.lastDrill Failed after a failed drill Job",
    )
    status = backup_status(kube, namespace)
    assert status["lastDrill"] == {
        "time": _stamp(_ago(2)),
        "result": "Failed",
        "reason": "Corrupt",
        "message": corrupt,
        "job": failed,
    }
    assert (status["lastSuccessTime"], status["lastBackup"]) == (_stamp(taken), BACKUP_ID)
    eventually(
        lambda: sample("stowage_backup_last_drill_success", namespace) == 0,
        timeout=30,
        what="stowage_backup_last_drill_success 0 after a failed drill",
    )
    assert sample("stowage_backup_last_drill_timestamp_seconds", namespace) == _ago(2).timestamp()
    assert sample("stowage_backup_last_success_timestamp_seconds", namespace) == taken.timestamp()


@pytest.mark.kube
def test_a_drill_killed_without_a_result_fails_with_the_jobs_reason(
    kube: KubeCluster, namespace: str, tenant: dict[str, Any]
) -> None:
    job = finished_job(
        kube,
        namespace,
        "acme",
        "drill",
        succeeded=False,
        finished=_ago(1),
        job_reason="DeadlineExceeded",
        job_message="Job was active longer than specified deadline",
    )
    eventually(
        lambda: backup_status(kube, namespace).get("lastDrill"),
        timeout=30,
        what="status.backup.lastDrill after a drill killed at its deadline",
    )
    assert backup_status(kube, namespace)["lastDrill"] == {
        "time": _stamp(_ago(1)),
        "result": "Failed",
        "reason": "DeadlineExceeded",
        "message": "Job was active longer than specified deadline; Error",
        "job": job,
    }
    eventually(
        lambda: sample("stowage_backup_last_drill_success", namespace) == 0,
        timeout=30,
        what="the drill metric 0",
    )
    # A drill ran, but no backup ever succeeded: that fact stays absent, not zero.
    assert sample("stowage_backup_last_success_timestamp_seconds", namespace) is None


@pytest.mark.kube
def test_switching_backups_off_removes_the_metrics_and_keeps_the_status(
    kube: KubeCluster, namespace: str, tenant: dict[str, Any]
) -> None:
    finished_job(
        kube,
        namespace,
        "acme",
        "backup",
        succeeded=True,
        finished=_ago(9),
        result=backup_result(_ago(10)),
    )
    eventually(
        lambda: sample("stowage_backup_last_success_timestamp_seconds", namespace),
        timeout=30,
        what="the last-success metric",
    )
    kube.patch(API, "Tenant", "acme", {"spec": {"backup": {"enabled": False}}}, namespace)
    wait_for_tenant(kube, namespace, "acme", generation=tenant["metadata"]["generation"] + 1)
    for metric in (
        "stowage_backup_last_success_timestamp_seconds",
        "stowage_backup_size_bytes",
        "stowage_backup_scheduled_since_timestamp_seconds",
    ):
        assert sample(metric, namespace) is None, metric
    assert backup_status(kube, namespace)["lastBackup"] == BACKUP_ID


def _job(task: str, uid: str, finished: datetime.datetime, complete: bool) -> dict[str, Any]:
    kind = "Complete" if complete else "Failed"
    return {
        "metadata": {"name": f"j-{uid}", "uid": uid, "labels": {"stowage.dev/task": task}},
        "status": {
            "conditions": [{"type": kind, "status": "True", "lastTransitionTime": _stamp(finished)}]
        },
    }


def _pod(uid: str, result: Any, task: str) -> dict[str, Any]:
    return {
        "metadata": {"ownerReferences": [{"kind": "Job", "uid": uid, "controller": True}]},
        "status": {
            "containerStatuses": [
                {"name": task, "state": {"terminated": {"message": json.dumps(result)}}}
            ]
        },
    }


def test_an_older_job_never_replaces_a_newer_result_and_gone_jobs_are_not_forgotten() -> None:
    newer = fold(
        {},
        finished_runs(
            [_job("backup", "b2", _ago(10), True)],
            [_pod("b2", backup_result(_ago(11), "new", 2), "backup")],
        ),
    )
    assert newer["lastBackup"] == "new"
    # An older successful backup (its Job still kept by the CronJob) is read again later.
    again = fold(
        newer,
        finished_runs(
            [_job("backup", "b1", _ago(100), True), _job("drill", "d1", _ago(50), False)],
            [_pod("b1", backup_result(_ago(101), "old", 1), "backup")],
        ),
    )
    assert (again["lastBackup"], again["sizeBytes"]) == ("new", 2)
    assert again["lastDrill"]["result"] == "Failed"
    # The Jobs are gone (history limits, a deleted CronJob): the status keeps what they proved.
    assert fold(again, finished_runs([], [])) == again
    # A running Job has no outcome yet.
    running = {"metadata": {"uid": "r", "labels": {"stowage.dev/task": "drill"}}, "status": {}}
    assert finished_runs([running], []) == []


def _reads(kube: KubeCluster, resource: str, verb: str, scope: str) -> float:
    """How often the API server answered ``verb`` on ``resource`` (its own request counter)."""
    total = 0.0
    for line in str(kube.request("GET", "/metrics")).splitlines():
        if line.startswith("apiserver_request_total{") and all(
            f'{k}="{v}"' in line
            for k, v in (("resource", resource), ("verb", verb), ("scope", scope))
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _resyncs() -> float:
    return sum(
        REGISTRY.get_sample_value(
            "stowage_operator_reconciliations_total", {"trigger": "resync", "outcome": result}
        )
        or 0.0
        for result in ("ok", "retry", "invalid", "error")
    )


@pytest.mark.kube
def test_resyncs_read_the_backup_jobs_from_a_watch_not_a_list_per_tenant(
    kube: KubeCluster, namespace: str, tenant: dict[str, Any]
) -> None:
    lists_before = {kind: _reads(kube, kind, "LIST", "namespace") for kind in ("jobs", "pods")}
    resyncs_before = _resyncs()
    # A run that finishes now reaches the status through the watch ...
    finished_job(
        kube,
        namespace,
        "acme",
        "backup",
        succeeded=True,
        finished=_ago(3),
        result=backup_result(_ago(4)),
    )
    eventually(
        lambda: backup_status(kube, namespace).get("lastBackup") == BACKUP_ID,
        timeout=30,
        what="the finished backup in the status",
    )
    # ... and resyncs (this Tenant's and the tier's others) list neither kind per Tenant.
    eventually(lambda: _resyncs() >= resyncs_before + 3, timeout=30, what="three resyncs")
    assert {kind: _reads(kube, kind, "LIST", "namespace") for kind in ("jobs", "pods")} == (
        lists_before
    )
