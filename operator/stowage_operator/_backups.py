"""A Tenant's backup plan and the two CronJobs that carry it out. No I/O here.

The plan joins the Tenant's ``spec.backup`` (schedule, drill schedule, what to
keep, or ``enabled: false``) with its Region's ``spec.backup`` (the storage and
the defaults). The storage is only ever the Region's: a Tenant cannot name a
volume, so it is never backed up outside its region.

Both CronJobs run ``stowage backup`` in the worker's image, on the Region's
nodes, with nothing but the tenant's own database URL (from its Secret) and
the tenant's directory of the Region's volume (``subPath`` = tenant name); the
pods fit the restricted Pod Security Standard and get no service-account
token. Each writes its one-line JSON outcome to ``/dev/termination-log``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from stowage_operator import _naming
from stowage_operator._manifests import (
    _meta,
    container_security,
    mount_object_store_ca,
    mount_region_ca,
    object_store_env,
    place_in_region,
    pod_security,
    tracing_env,
    worker_image,
)
from stowage_operator._settings import OperatorSettings
from stowage_operator._spec import parsed
from stowage_operator._types import Body, Region, TenantRef

Task = Literal["backup", "drill"]

#: Backups kept when neither the Tenant nor its Region says.
DEFAULT_KEEP_COUNT = 14
MOUNT = "/backups"
RESOURCES: dict[str, dict[str, str]] = {
    "requests": {"cpu": "100m", "memory": "128Mi"},
    "limits": {"memory": "512Mi"},
}


@dataclass(frozen=True)
class BackupPlan:
    """When a Tenant is backed up and drilled, where to, and what is kept."""

    claim: str
    schedule: str
    drill_schedule: str
    keep_count: int | None
    keep_days: int | None


@dataclass(frozen=True)
class NoPlan:
    """Why a Tenant has no backups: ``Disabled`` or ``NoBackupStorage``."""

    reason: str
    message: str


def _staggered(ref: TenantRef, hour: int) -> str:
    """A daily cron at a minute derived from the Tenant, so tenants do not all start at once."""
    minute = int(hashlib.sha256(f"{ref.namespace}/{ref.name}".encode()).hexdigest(), 16) % 60
    return f"{minute} {hour} * * *"


def plan(ref: TenantRef, spec: Mapping[str, Any], region: Region) -> BackupPlan | NoPlan:
    tenant = parsed(spec).backup
    if not tenant.enabled:
        return NoPlan("Disabled", "spec.backup.enabled is false; no backups are taken")
    claim = str((region.backup.get("persistentVolumeClaim") or {}).get("claimName") or "")
    if not claim:
        return NoPlan(
            "NoBackupStorage",
            f"Region {region.name!r} names no backup storage (spec.backup.persistentVolumeClaim)",
        )
    # The Tenant's keep replaces the Region's as a whole: two half-policies would keep more
    # than either says.
    if tenant.keep is not None:
        count, days = tenant.keep.count, tenant.keep.days
    else:
        keep: Mapping[str, Any] = region.backup.get("keep") or {}
        count, days = keep.get("count"), keep.get("days")
    if count is None and days is None:
        count = DEFAULT_KEEP_COUNT
    return BackupPlan(
        claim=claim,
        schedule=str(tenant.schedule or region.backup.get("schedule") or _staggered(ref, 3)),
        drill_schedule=str(
            tenant.drill_schedule or region.backup.get("drillSchedule") or _staggered(ref, 5)
        ),
        keep_count=None if count is None else int(count),
        keep_days=None if days is None else int(days),
    )


#: The label that tells a backup Job (and its pod) from a drill's.
TASK_LABEL = "stowage.dev/task"


def job_labels(ref: TenantRef, task: Task) -> dict[str, str]:
    """The tenant's labels, but not the worker's name: the worker's Service, PodDisruptionBudget,
    NetworkPolicy and PodMonitor select ``app.kubernetes.io/name=stowage-worker``, and a backup
    pod must not be taken for a worker by any of them."""
    return {
        **_naming.labels(ref.name),
        "app.kubernetes.io/name": "stowage-backup",
        "app.kubernetes.io/component": f"tenant-{task}",
        TASK_LABEL: task,
    }


def job_selector(ref: TenantRef) -> str:
    """A label selector for the Jobs and pods of both CronJobs of one Tenant."""
    return f"stowage.dev/tenant={ref.name},{TASK_LABEL} in (backup,drill)"


def _env(task: Task, ref: TenantRef, backup: BackupPlan) -> list[dict[str, Any]]:
    """What ``stowage backup run`` or ``drill`` reads: the database, the directory, the task's
    own settings (how many backups to keep; the drill's scratch database)."""
    env: list[dict[str, Any]] = [
        {
            "name": "STOWAGE_DATABASE_URL",
            "valueFrom": {"secretKeyRef": {"name": _naming.secret_name(ref.name), "key": "url"}},
        },
        {"name": "STOWAGE_BACKUP_DIR", "value": MOUNT},
        {"name": "STOWAGE_BACKUP_RESULT_FILE", "value": "/dev/termination-log"},
    ]
    if task == "backup":
        if backup.keep_count is not None:
            env.append({"name": "STOWAGE_BACKUP_KEEP_COUNT", "value": str(backup.keep_count)})
        if backup.keep_days is not None:
            env.append({"name": "STOWAGE_BACKUP_KEEP_DAYS", "value": str(backup.keep_days)})
    else:
        env.append(
            {
                "name": "STOWAGE_BACKUP_SCRATCH_DATABASE",
                "value": _naming.scratch_database_name(ref.namespace, ref.name),
            }
        )
    return env


def cron_job(
    task: Task,
    ref: TenantRef,
    spec: Mapping[str, Any],
    backup: BackupPlan,
    region: Region,
    settings: OperatorSettings,
) -> Body:
    # The rest is one declarative object, the CronJob as the API server stores it; split
    # into pieces it would read as a puzzle, so only the task's environment is apart.
    name = _naming.backup_name(ref.name) if task == "backup" else _naming.drill_name(ref.name)
    image = worker_image(spec, settings)
    # The drill reads files stored in the Region's object store back, as the worker does.
    env = [*_env(task, ref, backup), *tracing_env(settings), *object_store_env(ref, region)]
    labels = job_labels(ref, task)
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pod_security(),
        "containers": [
            {
                "name": task,
                "image": image,
                "args": ["backup", "run" if task == "backup" else "drill"],
                "env": env,
                "resources": RESOURCES,
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "FallbackToLogsOnError",
                "securityContext": container_security(),
                "volumeMounts": [
                    {
                        "name": "backups",
                        "mountPath": MOUNT,
                        "subPath": ref.name,
                        "readOnly": task == "drill",
                    },
                    {"name": "tmp", "mountPath": "/tmp"},
                ],
            }
        ],
        "volumes": [
            {"name": "backups", "persistentVolumeClaim": {"claimName": backup.claim}},
            {"name": "tmp", "emptyDir": {}},
        ],
    }
    place_in_region(pod_spec, region)
    mount_region_ca(pod_spec, ref, region)
    mount_object_store_ca(pod_spec, ref, region)
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {**_meta(ref, name), "labels": labels},
        "spec": {
            "schedule": backup.schedule if task == "backup" else backup.drill_schedule,
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 3600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "metadata": {"labels": labels},
                "spec": {
                    "backoffLimit": 0,
                    "activeDeadlineSeconds": 6 * 3600,
                    "template": {
                        "metadata": {
                            "labels": labels,
                            "annotations": {"stowage.dev/region": region.name},
                        },
                        "spec": pod_spec,
                    },
                },
            },
        },
    }
