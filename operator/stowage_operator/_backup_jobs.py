"""The tenants' backup and drill Jobs and their pods, kept in memory by two watches.

A reconcile reads what its Tenant's backup runs ended with (``_backup_status``).
Listing both kinds for that cost two API calls per Tenant per resync pass,
two thousand a minute at a thousand Tenants, almost all answering "nothing
new". Instead one watch per kind (``_watches``), across namespaces and
narrowed by the backup task's label on the server, keeps every backup Job and
pod here, and a reconcile reads its Tenant's from memory. While either watch
is not current, ``of`` answers None and the caller lists as before.
"""

from __future__ import annotations

from stowage_operator._backups import TASK_LABEL
from stowage_operator._kube import Kube
from stowage_operator._types import Body, TenantRef
from stowage_operator._watches import Watched

#: Every Job and pod of the two CronJobs, of every Tenant.
SELECTOR = f"{TASK_LABEL} in (backup,drill)"


class BackupJobs:
    """Backup Jobs and pods in the namespaces the operator watches (``patterns``, as kopf's)."""

    def __init__(self, kube: Kube, patterns: tuple[str, ...] = ()) -> None:
        self._jobs = Watched(kube, "batch/v1", "Job", SELECTOR, patterns)
        self._pods = Watched(kube, "v1", "Pod", SELECTOR, patterns)

    def start(self) -> None:
        """Start both watches (on the running loop); they run until ``stop``."""
        self._jobs.start()
        self._pods.start()

    async def stop(self) -> None:
        await self._jobs.stop()
        await self._pods.stop()

    def of(self, ref: TenantRef) -> tuple[list[Body], list[Body]] | None:
        """The Tenant's backup Jobs and their pods, or None while the watches are not current."""
        if not (self._jobs.synced and self._pods.synced):
            return None
        namespace, name = str(ref.namespace), str(ref.name)
        return self._jobs.of_tenant(namespace, name), self._pods.of_tenant(namespace, name)
