"""The service: what a Tenant needs, in order, and what its deletion removes.

One ``reconcile`` brings a Tenant to its spec, idempotently: region check →
Secret (the password's only home) → database and role → migrations → worker
objects → backup CronJobs → what the backup Jobs ended with → status. Every
trigger (create, update, resume, the resync timer) runs the same steps, so
the timer repairs drift and picks up finished backups by simply running again.
Calls for one Tenant never overlap (a lock per Tenant). While tracing is on
(``stowage.tracing``), a reconciliation is a ``tenant.reconcile`` trace with a
span per step (``tenant.region``, ``tenant.database``, ``tenant.worker``,
``tenant.backups``, ``tenant.status``), a failed one saying why.

``Reconciler`` is the sequence; each step is a collaborator's: ``Regions``
(the Region, its admin credentials, catalog and health), ``TenantDatabase``
(Secret, database, role, migrations), ``WorkerObjects`` (the worker's
Deployment, Service, NetworkPolicy, PDB and policy ConfigMap),
``BackupSchedule`` (CronJobs, scratch database, ``status.backup``) and
``TenantStatus`` (conditions and readiness). Objects are written through one
``Applier``.

A resync pass of a settled Tenant is nearly free: one read (its Secret). Its
objects are re-applied only when their watch (``_owned``) shows them changed
or gone, its database is checked against one catalog read per region shared
by every Tenant's pass, and the Region and its admin Secret are read at most
once per freshness window (the resync interval, at most 15 s). Every other
trigger applies and checks everything; it too shares the Region's reads, with
the reconciles of the same second (a burst of new Tenants reads its Region and
admin Secret a few times, not once per Tenant).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stowage import tracing
from stowage_operator import _backup_schedule, _metrics, _naming, _tenant_database
from stowage_operator._applying import Applier
from stowage_operator._backup_jobs import BackupJobs
from stowage_operator._backup_schedule import BackupSchedule
from stowage_operator._conditions import DATABASE_READY, WORKER_READY
from stowage_operator._errors import OperatorError, PermanentError
from stowage_operator._kube import Kube
from stowage_operator._owned import Owned
from stowage_operator._regions import Regions
from stowage_operator._settings import OperatorSettings
from stowage_operator._status import TenantStatus
from stowage_operator._tenant_database import TenantDatabase
from stowage_operator._types import (
    Body,
    Condition,
    Namespace,
    Result,
    TenantName,
    TenantRef,
    Trigger,
)
from stowage_operator._worker_objects import WorkerObjects

log = logging.getLogger(__name__)
_SPANS = tracing.Tracer("stowage_operator")


def tenant_ref(body: Mapping[str, Any]) -> TenantRef:
    meta = body["metadata"]
    return TenantRef(
        namespace=Namespace(meta["namespace"]),
        name=TenantName(meta["name"]),
        uid=meta.get("uid", ""),
        generation=int(meta.get("generation", 0)),
    )


@dataclass(frozen=True)
class Outcome:
    """What one reconciliation ended with."""

    ready: bool
    conditions: tuple[Condition, ...]


class Reconciler:
    """Reconciles and deletes Tenants, one at a time per Tenant; checks Regions."""

    def __init__(
        self,
        kube: Kube,
        settings: OperatorSettings,
        backup_jobs: BackupJobs | None = None,
        owned: Owned | None = None,
    ) -> None:
        applier = Applier(kube, owned)
        self._regions = Regions(kube, settings)
        self._database = TenantDatabase(kube, applier, self._regions, settings)
        self._worker = WorkerObjects(applier, settings, kube, self._regions)
        self._backups = BackupSchedule(kube, applier, self._regions, settings, backup_jobs)
        self._status = TenantStatus(kube)
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    def start(self) -> None:
        """Start the migration processes, before the first Tenant needs them."""
        self._database.start()

    def close(self) -> None:
        """Stop what the reconciler started (the migration processes)."""
        self._database.close()

    def _lock(self, ref: TenantRef) -> asyncio.Lock:
        return self._locks.setdefault((ref.namespace, ref.name), asyncio.Lock())

    # -- reconcile ------------------------------------------------------------------------

    async def reconcile(self, body: Mapping[str, Any], trigger: Trigger) -> Outcome:
        ref = tenant_ref(body)
        started = time.monotonic()
        async with self._lock(ref):
            if body["metadata"].get("deletionTimestamp"):
                # Being deleted: creating anything now would race the finalizer.
                return Outcome(False, ())
            outcome = Result.OK
            attributes = {
                "stowage.tenant": ref.name,
                "k8s.namespace.name": ref.namespace,
                "stowage.trigger": trigger.value,
            }
            try:
                with _SPANS.span("tenant.reconcile", attributes, record_exception=False):
                    result = await self._reconcile(ref, body, trigger)
            except OperatorError as e:
                outcome = Result.INVALID if isinstance(e, PermanentError) else Result.RETRY
                _metrics.ERRORS.labels(ref.namespace, ref.name, e.reason).inc()
                raise
            except Exception:
                outcome = Result.ERROR
                _metrics.ERRORS.labels(ref.namespace, ref.name, "Unexpected").inc()
                raise
            finally:
                _metrics.RECONCILIATIONS.labels(trigger.value, outcome.value).inc()
                _metrics.DURATION.labels(trigger.value).observe(time.monotonic() - started)
            return result

    async def _reconcile(
        self, ref: TenantRef, body: Mapping[str, Any], trigger: Trigger
    ) -> Outcome:
        spec: Mapping[str, Any] = body.get("spec") or {}
        old_status: Mapping[str, Any] = body.get("status") or {}
        extra = {"tenant": ref.name, "namespace": ref.namespace, "trigger": trigger.value}
        status: dict[str, Any] = {"observedGeneration": ref.generation}
        conditions: list[Condition] = []
        stage = DATABASE_READY
        try:
            # 1. What the schema could not check, and the region.
            with _SPANS.span("tenant.region"):
                self._worker.policy(ref, spec)  # validates the spec (once per generation)
                await self._worker.check_bundles(ref, spec)  # components' ConfigMaps, each pass
                region = await self._regions.accepting(
                    str(spec.get("region", "")), old_status, trigger
                )
                admin = await self._regions.admin(region, trigger)
                await self._regions.harden(admin)
            # 2. Database, role, Secret, migrations.
            with _SPANS.span("tenant.database"):
                creds = await self._database.ensure(ref, region, admin, old_status, trigger, extra)
            status.update(_tenant_database.status_of(ref, region, creds))
            conditions.append(_tenant_database.ready_condition(region, creds))
            # 3. The worker.
            stage = WORKER_READY
            with _SPANS.span("tenant.worker"):
                message = await self._worker.apply(ref, spec, region, trigger)
            # The gateways send it with every call; only this Tenant's worker on this
            # database answers (a stale endpoint after a restore or a move refuses).
            status["instance"] = _naming.instance(ref, region)
            with _SPANS.span("tenant.backups"):
                conditions.append(
                    await self._backups.apply(ref, spec, region, admin, trigger, extra)
                )
                backup = await self._backups.read(ref, old_status, extra)
            if backup:
                status["backup"] = backup
        except OperatorError as e:
            await self._status.report_failure(
                ref, old_status, status, conditions, stage, e, trigger
            )
            raise
        conditions.append(Condition(WORKER_READY, "True", "Applied", message))
        with _SPANS.span("tenant.status"):
            merged = await self._status.report_ready(ref, old_status, status, conditions)
        _backup_schedule.export_metrics(ref, status.get("backup") or {}, merged)
        log.info("tenant reconciled", extra=extra)
        return Outcome(True, tuple(conditions))

    # -- delete ---------------------------------------------------------------------------

    async def delete(self, body: Mapping[str, Any]) -> None:
        """Remove the worker objects and the Secret; drop the database if the policy says so."""
        ref = tenant_ref(body)
        spec: Mapping[str, Any] = body.get("spec") or {}
        policy = spec.get("deletionPolicy", "Retain")
        extra = {"tenant": ref.name, "namespace": ref.namespace, "deletionPolicy": policy}
        async with self._lock(ref):
            await self._worker.delete(ref)
            await self._backups.delete(ref)
            if policy == "Delete":
                region = await self._regions.region(str(spec.get("region", "")))
                admin = await self._regions.admin(region)
                # The scratch database first: the role cannot be dropped while it owns one.
                await self._backups.drop_scratch(ref, admin)
                await self._database.drop(ref, admin)
            await self._database.remove_secret(ref)
            self._worker.forget(ref)
            _metrics.DELETIONS.labels(policy).inc()
            self._status.forget(ref)
            _metrics.forget_backup(ref.namespace, ref.name)
            log.info("tenant deleted", extra=extra)

    # -- regions --------------------------------------------------------------------------

    async def check_region(self, body: Mapping[str, Any]) -> None:
        """Report in the Region's status whether its PostgreSQL answers the admin."""
        await self._regions.check(body)


__all__ = ["Body", "Outcome", "Reconciler", "tenant_ref"]
