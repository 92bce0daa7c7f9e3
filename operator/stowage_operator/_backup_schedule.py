"""A Tenant's backups: the backup and drill CronJobs, their scratch database, their results.

Backups are not on the serving path: nothing here fails a reconcile. A
CronJob that cannot be applied is reported in ``BackupScheduled`` and tried
again by the resync; Jobs that cannot be listed leave the last
``status.backup`` as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from stowage_operator import _backup_status, _backups, _metrics, _naming, _postgres
from stowage_operator._applying import Applier
from stowage_operator._backup_jobs import BackupJobs
from stowage_operator._errors import OperatorError
from stowage_operator._kube import Kube
from stowage_operator._regions import Regions
from stowage_operator._settings import OperatorSettings
from stowage_operator._types import (
    AdminCredentials,
    Condition,
    ConditionBody,
    Region,
    TenantName,
    TenantRef,
    Trigger,
)

log = logging.getLogger(__name__)

#: The backup objects (CronJobs), by name; removed with the Tenant or when backups stop.
BACKUP_SCHEDULED = "BackupScheduled"


def _backup_objects(name: TenantName) -> tuple[tuple[str, str, str], ...]:
    return (
        ("batch/v1", "CronJob", _naming.backup_name(name)),
        ("batch/v1", "CronJob", _naming.drill_name(name)),
    )


def export_metrics(
    ref: TenantRef, backup: Mapping[str, Any], conditions: list[ConditionBody]
) -> None:
    """The backup metrics of a Tenant whose backups are scheduled; none for one whose are not."""
    scheduled = next((c for c in conditions if c.get("type") == BACKUP_SCHEDULED), None)
    if scheduled is None or scheduled.get("status") != "True":
        _metrics.forget_backup(ref.namespace, ref.name)
        return
    facts = _backup_status.facts(backup, scheduled.get("lastTransitionTime"))
    _metrics.report_backup(ref.namespace, ref.name, facts)


class BackupSchedule:
    """Schedules each Tenant's backups and drills, reads what they ended with, removes them."""

    def __init__(
        self,
        kube: Kube,
        applier: Applier,
        regions: Regions,
        settings: OperatorSettings,
        backup_jobs: BackupJobs | None = None,
    ) -> None:
        self._kube = kube
        self._applier = applier
        self._regions = regions
        self._settings = settings
        # The backup Jobs and pods from their watches; without them, listed per reconcile.
        self._backup_jobs = backup_jobs

    async def apply(
        self,
        ref: TenantRef,
        spec: Mapping[str, Any],
        region: Region,
        admin: AdminCredentials,
        trigger: Trigger,
        extra: Mapping[str, Any],
    ) -> Condition:
        """The backup and drill CronJobs per the plan, or none; never fails the reconcile.

        Backups are not on the serving path: a failure here (e.g. RBAC without
        cronjobs) is reported in ``BackupScheduled`` and retried by the resync.
        """
        plan = _backups.plan(ref, spec, region)
        try:
            if isinstance(plan, _backups.NoPlan):
                for api_version, kind, name in _backup_objects(ref.name):
                    await self._applier.delete(api_version, kind, ref.namespace, name, trigger)
                return Condition(BACKUP_SCHEDULED, "False", plan.reason, plan.message)
            scratch = _naming.scratch_database_name(ref.namespace, ref.name)
            if trigger is not Trigger.RESYNC or not (await self._regions.catalog(admin)).exists(
                scratch
            ):
                await _postgres.ensure_scratch_database(
                    admin,
                    scratch,
                    _naming.role_name(ref.namespace, ref.name),
                    self._settings.postgres_timeout,
                )
            for task in ("backup", "drill"):
                await self._applier.apply(
                    _backups.cron_job(task, ref, spec, plan, region, self._settings), trigger
                )
        except OperatorError as e:
            log.warning("backup CronJobs not applied: %s", e.message, extra=extra)
            return Condition(BACKUP_SCHEDULED, "False", e.reason, e.message)
        keep = ", ".join(
            part
            for part in (
                f"{plan.keep_count} backups" if plan.keep_count else "",
                f"{plan.keep_days} days" if plan.keep_days else "",
            )
            if part
        )
        return Condition(
            BACKUP_SCHEDULED,
            "True",
            "Scheduled",
            f"backups at '{plan.schedule}' (UTC) to PersistentVolumeClaim {plan.claim} of "
            f"region {region.name}, drills at '{plan.drill_schedule}'; keeping {keep}",
        )

    async def read(
        self, ref: TenantRef, old_status: Mapping[str, Any], extra: Mapping[str, Any]
    ) -> dict[str, Any]:
        """``status.backup`` from the finished backup and drill Jobs, read-only.

        The Jobs and pods come from their watches (``_backup_jobs``); while
        those are not current they are listed. Like the CronJobs, never fails
        the reconcile: when the Jobs or pods cannot be listed (e.g. RBAC
        without them) the last status stays.
        """
        previous: Mapping[str, Any] = old_status.get("backup") or {}
        watched = self._backup_jobs.of(ref) if self._backup_jobs is not None else None
        if watched is not None:
            jobs, pods = watched
        else:
            selector = _backups.job_selector(ref)
            try:
                jobs = await self._kube.list("batch/v1", "Job", ref.namespace, selector)
                pods = await self._kube.list("v1", "Pod", ref.namespace, selector) if jobs else []
            except OperatorError as e:
                log.warning("backup results not read: %s", e.message, extra=extra)
                return dict(previous)
        return _backup_status.fold(previous, _backup_status.finished_runs(jobs, pods))

    async def delete(self, ref: TenantRef) -> None:
        """Delete the backup and drill CronJobs, asking the API server for each."""
        for api_version, kind, obj_name in _backup_objects(ref.name):
            await self._applier.delete(api_version, kind, ref.namespace, obj_name, None)

    async def drop_scratch(self, ref: TenantRef, admin: AdminCredentials) -> None:
        """Drop the drills' scratch database (before the role that owns it)."""
        await _postgres.drop_scratch_database(
            admin,
            _naming.scratch_database_name(ref.namespace, ref.name),
            self._settings.postgres_timeout,
        )


__all__ = ["BACKUP_SCHEDULED", "BackupSchedule", "export_metrics"]
