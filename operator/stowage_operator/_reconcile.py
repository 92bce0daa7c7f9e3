"""The service: what a Tenant needs, in order, and what its deletion removes.

One ``reconcile`` brings a Tenant to its spec, idempotently: region check →
Secret (the password's only home) → database and role → migrations → worker
objects → backup CronJobs → what the backup Jobs ended with → status. Every
trigger (create, update, resume, the resync timer) runs the same steps, so
the timer repairs drift and picks up finished backups by simply running again.
Calls for one Tenant never overlap (a lock per Tenant).

A resync pass of a settled Tenant is nearly free: one read (its Secret). Its
objects are re-applied only when their watch (``_owned``) shows them changed
or gone, its database is checked against one catalog read per region shared
by every Tenant's pass, and the Region and its admin Secret are read at most
once per freshness window (the resync interval, at most 15 s). Every other
trigger applies and checks everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from stowage_operator import (
    _backup_status,
    _backups,
    _conditions,
    _manifests,
    _metrics,
    _naming,
    _postgres,
    _spec,
)
from stowage_operator._backup_jobs import BackupJobs
from stowage_operator._conditions import DATABASE_READY, READY, WORKER_READY
from stowage_operator._errors import OperatorError, PermanentError, TemporaryError
from stowage_operator._kube import GROUP, VERSION, Kube, decoded
from stowage_operator._migrating import Migrator
from stowage_operator._owned import Owned
from stowage_operator._settings import OperatorSettings
from stowage_operator._types import (
    AdminCredentials,
    Body,
    Condition,
    ConditionBody,
    DatabaseCredentials,
    Namespace,
    Region,
    Result,
    TenantName,
    TenantRef,
    Trigger,
)

log = logging.getLogger(__name__)

_T = TypeVar("_T")

# (apiVersion, kind) of the worker objects, in the order they are deleted.
WORKER_KINDS = (
    ("apps/v1", "Deployment"),
    ("policy/v1", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("v1", "Service"),
    ("v1", "ConfigMap"),
)

#: The backup objects (CronJobs), by name; removed with the Tenant or when backups stop.
BACKUP_SCHEDULED = "BackupScheduled"


def _backup_objects(name: TenantName) -> tuple[tuple[str, str, str], ...]:
    return (
        ("batch/v1", "CronJob", _naming.backup_name(name)),
        ("batch/v1", "CronJob", _naming.drill_name(name)),
    )


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


TENANT_API = f"{GROUP}/{VERSION}"

#: A Ready tenant is reported unready after this many failed resyncs in a row.
RESYNC_FAILURES_BEFORE_UNREADY = 3
#: The longest a resync pass trusts a Region, its admin Secret or a region's catalog.
FRESH_SECONDS = 15.0


def _fingerprint(password: str) -> str:
    """What the operator keeps of a password to notice it changed: a short digest."""
    return hashlib.blake2b(password.encode(), digest_size=16).hexdigest()


def _is_ready(status: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") == READY and c.get("status") == "True" for c in status.get("conditions") or ()
    )


def _export_backups(
    ref: TenantRef, backup: Mapping[str, Any], conditions: list[ConditionBody]
) -> None:
    """The backup metrics of a Tenant whose backups are scheduled; none for one whose are not."""
    scheduled = next((c for c in conditions if c.get("type") == BACKUP_SCHEDULED), None)
    if scheduled is None or scheduled.get("status") != "True":
        _metrics.forget_backup(ref.namespace, ref.name)
        return
    facts = _backup_status.facts(backup, scheduled.get("lastTransitionTime"))
    _metrics.report_backup(ref.namespace, ref.name, facts)


def _database_status(ref: TenantRef, region: Region, creds: DatabaseCredentials) -> dict[str, Any]:
    """Where the Tenant's database is, for ``status`` (never its password)."""
    return {
        "region": region.name,
        "database": {
            "host": creds.host,
            "port": creds.port,
            "name": creds.database,
            "user": creds.user,
            "secretName": _naming.secret_name(ref.name),
        },
    }


def _database_ready(region: Region, creds: DatabaseCredentials) -> Condition:
    return Condition(
        DATABASE_READY,
        "True",
        "Provisioned",
        f"database {creds.database} on {creds.host}:{creds.port} "
        f"(region {region.name}) is owned by the tenant's role and migrated",
    )


class Reconciler:
    def __init__(
        self,
        kube: Kube,
        settings: OperatorSettings,
        backup_jobs: BackupJobs | None = None,
        owned: Owned | None = None,
    ) -> None:
        self._kube = kube
        self._settings = settings
        # The backup Jobs and pods from their watches; without them, listed per reconcile.
        self._backup_jobs = backup_jobs
        # The Tenants' own objects from their watches; without them, applied every pass.
        self._owned = owned
        # What a resync reads at most once per window, with when it was read (see ``_recent``).
        self._fresh_seconds = min(FRESH_SECONDS, settings.resync_seconds)
        self._recently_read: dict[tuple[str, ...], tuple[float, Any]] = {}
        self._read_locks: dict[tuple[str, ...], asyncio.Lock] = {}
        # Per Tenant, the generation whose spec passed validation and its policy ConfigMap:
        # a spec changes only with its generation, and rendering it is most of a quiet pass.
        self._spec_seen: dict[tuple[str, str], tuple[str, int, Mapping[str, Any]]] = {}
        # Per Tenant, the database this process last made sure of: where, whose, which password.
        self._ensured: dict[tuple[str, str], tuple[str, int, str, str, str]] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        # Tenant migrations run in a small pool of processes (Alembic is process-global).
        self._migrator = Migrator(settings.migration_processes)
        # Admin connections open at once, per region server (settings.max_admin_connections).
        self._admin_slots: dict[tuple[str, int], asyncio.Semaphore] = {}
        # Regions whose shared databases this process has hardened, and their locks.
        self._hardened: set[tuple[str, int, str]] = set()
        self._region_locks: dict[tuple[str, int, str], asyncio.Lock] = {}
        # Consecutive failed resyncs of Ready tenants.
        self._resync_failures: dict[tuple[str, str], int] = {}

    def start(self) -> None:
        """Start the migration processes, before the first Tenant needs them."""
        if self._settings.run_migrations:
            self._migrator.warm()

    def close(self) -> None:
        """Stop what the reconciler started (the migration processes)."""
        self._migrator.close()

    def _lock(self, ref: TenantRef) -> asyncio.Lock:
        return self._locks.setdefault((ref.namespace, ref.name), asyncio.Lock())

    # -- inputs ---------------------------------------------------------------------------

    async def _recent(
        self, key: tuple[str, ...], read: Callable[[], Awaitable[_T]], trigger: Trigger | None
    ) -> _T:
        """On a resync, what ``read`` answered less than a freshness window ago; else read now.

        One caller reads while the others with the same key wait for its answer, so a
        thousand Tenants' passes share one read per window. A read that failed fails
        every resync in its window the same way (so a region that is down is tried
        once per window, not once per Tenant); other triggers always read.
        """
        if trigger is not Trigger.RESYNC:
            return await self._read_now(key, read)
        async with self._read_locks.setdefault(key, asyncio.Lock()):
            kept = self._recently_read.get(key)
            if kept is None or time.monotonic() - kept[0] >= self._fresh_seconds:
                return await self._read_now(key, read)
            if isinstance(kept[1], OperatorError):
                # A copy: re-raising one instance would grow its traceback with every caller.
                raise copy.copy(kept[1]).with_traceback(None)
            value: _T = kept[1]
            return value

    async def _read_now(self, key: tuple[str, ...], read: Callable[[], Awaitable[_T]]) -> _T:
        started = time.monotonic()
        try:
            value = await read()
        except OperatorError as e:
            self._recently_read[key] = (started, e)
            raise
        self._recently_read[key] = (started, value)
        return value

    async def _region(self, name: str, trigger: Trigger | None = None) -> Region:
        body = await self._recent(("region", name), lambda: self._kube.get_region(name), trigger)
        if body is None:
            raise TemporaryError(
                f"Region {name!r} does not exist; create it or fix spec.region",
                reason="RegionNotFound",
                delay=5,
            )
        return Region.from_body(body)

    async def _admin(self, region: Region, trigger: Trigger | None = None) -> AdminCredentials:
        namespace, name = region.admin_secret_namespace, region.admin_secret_name
        data = await self._recent(
            ("secret", namespace, name),
            lambda: self._kube.secret_data(namespace, name),
            trigger,
        )
        where = f"Secret {region.admin_secret_namespace}/{region.admin_secret_name}"
        if data is None:
            raise TemporaryError(
                f"Region {region.name!r}: admin {where} does not exist",
                reason="AdminSecretMissing",
                delay=10,
            )
        if not data.get("username") or not data.get("password"):
            raise TemporaryError(
                f"Region {region.name!r}: admin {where} needs the keys username and password",
                reason="AdminSecretInvalid",
                delay=30,
            )
        slots = self._admin_slots.setdefault(
            (region.host, region.port),
            asyncio.Semaphore(self._settings.max_admin_connections),
        )
        return AdminCredentials(
            host=region.host,
            port=region.port,
            database=region.database,
            ssl_mode=region.ssl_mode,
            user=data["username"],
            password=data["password"],
            slots=slots,
        )

    # -- reconcile ------------------------------------------------------------------------

    async def reconcile(self, body: Mapping[str, Any], trigger: Trigger) -> Outcome:
        ref = tenant_ref(body)
        started = time.monotonic()
        async with self._lock(ref):
            if body["metadata"].get("deletionTimestamp"):
                # Being deleted: creating anything now would race the finalizer.
                return Outcome(False, ())
            outcome = Result.OK
            try:
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
            region = await self._accepting_region(ref, spec, old_status, trigger)
            admin = await self._admin(region, trigger)
            await self._harden_region(admin)
            # 2. Database, role, Secret, migrations.
            creds = await self._ensure_database(ref, region, admin, old_status, trigger, extra)
            status.update(_database_status(ref, region, creds))
            conditions.append(_database_ready(region, creds))
            # 3. The worker.
            stage = WORKER_READY
            message = await self._apply_worker(ref, spec, region, trigger)
            conditions.append(await self._apply_backups(ref, spec, region, admin, trigger, extra))
            backup = await self._read_backups(ref, old_status, extra)
            if backup:
                status["backup"] = backup
        except OperatorError as e:
            await self._report_failure(ref, old_status, status, conditions, stage, e, trigger)
            raise
        conditions.append(Condition(WORKER_READY, "True", "Applied", message))
        await self._report_ready(ref, old_status, status, conditions)
        log.info("tenant reconciled", extra=extra)
        return Outcome(True, tuple(conditions))

    def _policy(self, ref: TenantRef, spec: Mapping[str, Any]) -> Mapping[str, Any]:
        """The policy ConfigMap of a spec that passed validation, once per generation."""
        key = (ref.namespace, ref.name)
        seen = self._spec_seen.get(key)
        if seen is not None and seen[:2] == (ref.uid, ref.generation):
            return seen[2]
        _spec.validate(spec)
        config_map = _manifests.config_map(ref, spec)
        self._spec_seen[key] = (ref.uid, ref.generation, config_map)
        return config_map

    async def _accepting_region(
        self,
        ref: TenantRef,
        spec: Mapping[str, Any],
        old_status: Mapping[str, Any],
        trigger: Trigger,
    ) -> Region:
        """The Tenant's Region, once the spec passed what its schema could not check."""
        self._policy(ref, spec)  # validates the spec (once per generation)
        region = await self._region(str(spec.get("region", "")), trigger)
        if not region.accepting_tenants and not old_status.get("database"):
            raise TemporaryError(
                f"Region {region.name!r} does not accept new tenants (spec.acceptingTenants)",
                reason="RegionNotAccepting",
                delay=30,
            )
        return region

    async def _report_ready(
        self,
        ref: TenantRef,
        old_status: Mapping[str, Any],
        status: dict[str, Any],
        conditions: list[Condition],
    ) -> None:
        """Ready, with the worker's endpoint for the gateways; the backup metrics with it."""
        self._resync_failures.pop((ref.namespace, ref.name), None)
        status["endpoint"] = _naming.endpoint(ref.namespace, ref.name)
        conditions.append(
            Condition(
                READY,
                "True",
                "Reconciled",
                f"generation {ref.generation} applied; route to {status['endpoint']}",
            )
        )
        merged = await self._report(ref, old_status, status, conditions, ready=True)
        _export_backups(ref, status.get("backup") or {}, merged)

    async def _report(
        self,
        ref: TenantRef,
        old_status: Mapping[str, Any],
        status: Mapping[str, Any],
        conditions: list[Condition],
        *,
        ready: bool,
    ) -> list[ConditionBody]:
        merged = _conditions.merge(old_status.get("conditions"), conditions, ref.generation)
        patch = {**status, "conditions": merged}
        # A resync of a settled Tenant finds its status as it left it: no write, and no
        # watch event for kopf (and the gateways watching Tenants) to process.
        if any(old_status.get(key) != value for key, value in patch.items()):
            await self._kube.patch_tenant_status(ref.namespace, ref.name, patch)
        _metrics.TENANTS_READY.labels(ref.namespace, ref.name).set(1 if ready else 0)
        return merged

    async def _report_failure(
        self,
        ref: TenantRef,
        old_status: Mapping[str, Any],
        status: Mapping[str, Any],
        conditions: list[Condition],
        stage: str,
        e: OperatorError,
        trigger: Trigger,
    ) -> None:
        """Say in the status what failed, unless a resync of a Ready tenant hit a passing fault.

        A periodic resync repairs drift; one transient error there (a dropped
        connection, a busy API server) does not make a serving tenant unready.
        Only ``RESYNC_FAILURES_BEFORE_UNREADY`` failures in a row do.
        """
        extra = {"tenant": ref.name, "namespace": ref.namespace, "trigger": trigger.value}
        key = (ref.namespace, ref.name)
        if (
            trigger is Trigger.RESYNC
            and isinstance(e, TemporaryError)
            and await self._ready_now(ref, old_status)
        ):
            failures = self._resync_failures.get(key, 0) + 1
            self._resync_failures[key] = failures
            if failures < RESYNC_FAILURES_BEFORE_UNREADY:
                log.warning(
                    "resync failed (%d of %d before the tenant is reported unready): %s",
                    failures,
                    RESYNC_FAILURES_BEFORE_UNREADY,
                    e.message,
                    extra=extra,
                )
                return
        conditions.append(Condition(stage, "False", e.reason, e.message))
        if stage == DATABASE_READY:
            conditions.append(
                Condition(WORKER_READY, "False", "DatabaseNotReady", "waiting for the database")
            )
        conditions.append(Condition(READY, "False", e.reason, e.message))
        await self._report(ref, old_status, status, conditions, ready=False)
        log.warning("%s is False: %s", stage, e.message, extra=extra)

    async def _ready_now(self, ref: TenantRef, seen: Mapping[str, Any]) -> bool:
        """Whether the Tenant is Ready in the API server now (the watch may lag behind)."""
        if _is_ready(seen):
            return True
        try:
            current = await self._kube.get(TENANT_API, "Tenant", ref.namespace, ref.name)
        except OperatorError:
            return False
        return current is not None and _is_ready(current.get("status") or {})

    async def _harden_region(self, admin: AdminCredentials, *, recheck: bool = False) -> None:
        """Harden the region's shared databases, one caller at a time per region.

        Tenant reconciles make sure it happened once in this process; the
        Region's own handler (on change and on its timer) ``recheck``s, which
        reads the grants and repairs drift.
        """
        key = (admin.host, admin.port, admin.database)
        if key in self._hardened and not recheck:
            return
        async with self._region_locks.setdefault(key, asyncio.Lock()):
            if recheck or key not in self._hardened:
                await _postgres.harden_shared_databases(admin, self._settings.postgres_timeout)
                self._hardened.add(key)

    async def _ensure_database(
        self,
        ref: TenantRef,
        region: Region,
        admin: AdminCredentials,
        old_status: Mapping[str, Any],
        trigger: Trigger,
        extra: Mapping[str, Any],
    ) -> DatabaseCredentials:
        database = _naming.database_name(ref.namespace, ref.name)
        role = _naming.role_name(ref.namespace, ref.name)
        secret_name = _naming.secret_name(ref.name)
        existing = await self._kube.get("v1", "Secret", ref.namespace, secret_name)
        provisioned_before = bool(old_status.get("database"))
        password = decoded(existing).get("password") if existing else None
        if not password:
            password = secrets.token_urlsafe(32)
            if provisioned_before:
                _metrics.REPAIRS.labels("secret").inc()
                log.warning(
                    "database Secret %s was missing; issuing a new password",
                    secret_name,
                    extra=extra,
                )
        creds = DatabaseCredentials(
            host=region.host,
            port=region.port,
            database=database,
            user=role,
            ssl_mode=region.ssl_mode,
            password=password,
        )
        # The Secret first: the role's password always comes from it, so a crash
        # between the two steps converges on the next run.
        await self._apply(_manifests.secret(ref, creds), trigger, live=existing)
        made = await self._provision(ref, admin, database, role, password, trigger)
        if provisioned_before and made.created_database:
            _metrics.REPAIRS.labels("database").inc()
            log.warning("database %s was missing; created it again", database, extra=extra)
        if provisioned_before and made.created_role:
            _metrics.REPAIRS.labels("role").inc()
            log.warning("role %s was missing; created it again", role, extra=extra)
        # The resync timer skips migrations once they succeeded for this database.
        migrated_before = any(
            c.get("type") == DATABASE_READY and c.get("status") == "True"
            for c in old_status.get("conditions") or ()
        )
        needs_migrations = (
            made.created_database or trigger is not Trigger.RESYNC or not migrated_before
        )
        if self._settings.run_migrations and needs_migrations:
            await self._migrator.migrate(creds.url(), database)
        return creds

    async def _provision(
        self,
        ref: TenantRef,
        admin: AdminCredentials,
        database: str,
        role: str,
        password: str,
        trigger: Trigger,
    ) -> _postgres.Provisioned:
        """``ensure_database``, unless a resync finds it done: by this process, with this
        password, and the region's catalog still showing the database, owner and grants."""
        key = (ref.namespace, ref.name)
        done = (admin.host, admin.port, database, role, _fingerprint(password))
        if trigger is Trigger.RESYNC and self._ensured.get(key) == done:
            catalog = await self._catalog(admin)
            if catalog.provisioned(database, role):
                return _postgres.Provisioned(created_role=False, created_database=False)
        self._ensured.pop(key, None)
        made = await _postgres.ensure_database(
            admin, database, role, password, self._settings.postgres_timeout
        )
        self._ensured[key] = done
        return made

    async def _catalog(self, admin: AdminCredentials) -> _postgres.Catalog:
        """The region's tenant databases and roles, read at most once per freshness window.

        Kept per server and admin credentials, not per server alone: a region whose
        admin password stopped working must fail its resyncs, even while another
        region on the same server reads the same catalog fine.
        """
        return await self._recent(
            ("catalog", admin.host, str(admin.port), admin.user, _fingerprint(admin.password)),
            lambda: _postgres.catalog(
                admin, self._settings.postgres_timeout, _naming.DATABASE_PREFIX
            ),
            Trigger.RESYNC,
        )

    async def _apply(
        self, obj: Mapping[str, Any], trigger: Trigger, live: Mapping[str, Any] | None = None
    ) -> Mapping[str, Any]:
        """Server-side apply; a resync skips an object that is as it was last applied
        (``live`` if the caller read it, else its watch)."""
        owned = self._owned
        if owned is None:
            return await self._kube.apply(obj)
        if trigger is Trigger.RESYNC and (current := owned.unchanged(obj, live)) is not None:
            return current
        stored = await self._kube.apply(obj)
        owned.applied(obj, stored)
        return stored

    async def _delete(
        self, api_version: str, kind: str, namespace: str, name: str, trigger: Trigger | None
    ) -> None:
        """Delete; a reconcile skips an object its watch shows as gone (a new Tenant has no
        PodDisruptionBudget or CronJobs to delete). Deleting the Tenant (``trigger`` None)
        always asks the API server: an object made a moment ago may not be watched yet."""
        owned = self._owned
        if owned is not None:
            if trigger is not None and owned.absent(api_version, kind, namespace, name):
                return
            owned.forget(api_version, kind, namespace, name)
        await self._kube.delete(api_version, kind, namespace, name)

    async def _apply_worker(
        self, ref: TenantRef, spec: Mapping[str, Any], region: Region, trigger: Trigger
    ) -> str:
        await self._apply(self._policy(ref, spec), trigger)
        deployment = await self._apply(
            _manifests.deployment(ref, spec, region, self._settings), trigger
        )
        await self._apply(_manifests.service(ref), trigger)
        await self._apply(_manifests.network_policy(ref, self._settings), trigger)
        replicas = _manifests.replicas(spec)
        if replicas > 1:
            await self._apply(_manifests.pod_disruption_budget(ref), trigger)
        else:
            await self._delete(
                "policy/v1",
                "PodDisruptionBudget",
                ref.namespace,
                _naming.worker_name(ref.name),
                trigger,
            )
        available = int((deployment.get("status") or {}).get("availableReplicas") or 0)
        return (
            f"Deployment, Service, NetworkPolicy and policy ConfigMap match generation "
            f"{ref.generation}; {available}/{replicas} replicas available "
            "(pod availability is the Deployment's to report and does not gate Ready)"
        )

    async def _apply_backups(
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
                    await self._delete(api_version, kind, ref.namespace, name, trigger)
                return Condition(BACKUP_SCHEDULED, "False", plan.reason, plan.message)
            scratch = _naming.scratch_database_name(ref.namespace, ref.name)
            if trigger is not Trigger.RESYNC or not (await self._catalog(admin)).exists(scratch):
                await _postgres.ensure_scratch_database(
                    admin,
                    scratch,
                    _naming.role_name(ref.namespace, ref.name),
                    self._settings.postgres_timeout,
                )
            for task in ("backup", "drill"):
                await self._apply(
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

    async def _read_backups(
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

    # -- delete ---------------------------------------------------------------------------

    async def delete(self, body: Mapping[str, Any]) -> None:
        """Remove the worker objects and the Secret; drop the database if the policy says so."""
        ref = tenant_ref(body)
        spec: Mapping[str, Any] = body.get("spec") or {}
        policy = spec.get("deletionPolicy", "Retain")
        extra = {"tenant": ref.name, "namespace": ref.namespace, "deletionPolicy": policy}
        async with self._lock(ref):
            name = _naming.worker_name(ref.name)
            for api_version, kind in WORKER_KINDS:
                obj_name = _naming.policy_name(ref.name) if kind == "ConfigMap" else name
                await self._delete(api_version, kind, ref.namespace, obj_name, None)
            for api_version, kind, obj_name in _backup_objects(ref.name):
                await self._delete(api_version, kind, ref.namespace, obj_name, None)
            if policy == "Delete":
                region = await self._region(str(spec.get("region", "")))
                admin = await self._admin(region)
                # The scratch database first: the role cannot be dropped while it owns one.
                await _postgres.drop_scratch_database(
                    admin,
                    _naming.scratch_database_name(ref.namespace, ref.name),
                    self._settings.postgres_timeout,
                )
                await _postgres.drop_database(
                    admin,
                    _naming.database_name(ref.namespace, ref.name),
                    _naming.role_name(ref.namespace, ref.name),
                    self._settings.postgres_timeout,
                )
            await self._delete("v1", "Secret", ref.namespace, _naming.secret_name(ref.name), None)
            self._ensured.pop((ref.namespace, ref.name), None)
            self._spec_seen.pop((ref.namespace, ref.name), None)
            _metrics.DELETIONS.labels(policy).inc()
            with contextlib.suppress(KeyError):
                _metrics.TENANTS_READY.remove(ref.namespace, ref.name)
            _metrics.forget_backup(ref.namespace, ref.name)
            log.info("tenant deleted", extra=extra)

    # -- regions --------------------------------------------------------------------------

    async def check_region(self, body: Mapping[str, Any]) -> None:
        """Report in the Region's status whether its PostgreSQL answers the admin."""
        region = Region.from_body(body)
        generation = int(body["metadata"].get("generation", 0))
        old = (body.get("status") or {}).get("conditions")
        try:
            admin = await self._admin(region)
            await _postgres.check(admin, self._settings.postgres_timeout)
            await self._harden_region(admin, recheck=True)
        except OperatorError as e:
            condition = Condition(READY, "False", e.reason, e.message)
            await self._kube.patch_region_status(
                region.name,
                {
                    "observedGeneration": generation,
                    "conditions": _conditions.merge(old, [condition], generation),
                },
            )
            raise
        condition = Condition(
            READY, "True", "Connected", f"PostgreSQL at {region.host}:{region.port} answers"
        )
        await self._kube.patch_region_status(
            region.name,
            {
                "observedGeneration": generation,
                "conditions": _conditions.merge(old, [condition], generation),
            },
        )


__all__ = ["Body", "Outcome", "Reconciler", "tenant_ref"]
