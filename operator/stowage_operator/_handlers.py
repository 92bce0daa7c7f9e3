"""Entry point: kopf handlers for Tenants (and Regions), registered into a fresh registry.

Handlers translate the operator's errors into kopf's retry types and do nothing
else; the work is in ``_reconcile``. Each call of ``build_registry`` makes an
independent registry, so tests can run several operators in one process.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable
from typing import Any

import kopf
from prometheus_client import REGISTRY

from stowage.crd import GROUP, REGION_PLURAL, TENANT_PLURAL, VERSION
from stowage_operator import _kube
from stowage_operator._backup_jobs import BackupJobs
from stowage_operator._errors import OperatorError, PermanentError
from stowage_operator._owned import Owned
from stowage_operator._reconcile import Reconciler
from stowage_operator._settings import OperatorSettings
from stowage_operator._types import Trigger
from stowage_operator._worker_pods import WorkerPods

log = logging.getLogger(__name__)

FINALIZER = f"{GROUP}/tenant-cleanup"


def kopf_settings(settings: OperatorSettings) -> kopf.OperatorSettings:
    """kopf's settings: our finalizer, state in annotations (status has a strict schema)."""
    ks = kopf.OperatorSettings()
    ks.persistence.finalizer = FINALIZER
    ks.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    ks.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    ks.peering.standalone = True
    ks.posting.level = logging.WARNING
    ks.watching.server_timeout = 300
    ks.networking.request_timeout = 60
    return ks


def _translate(e: OperatorError) -> Exception:
    if isinstance(e, PermanentError):
        return kopf.PermanentError(f"{e.reason}: {e.message}")
    return kopf.TemporaryError(f"{e.reason}: {e.message}", delay=getattr(e, "delay", 10.0))


async def _translated(work: Awaitable[object]) -> None:
    """Await ``work``; the operator's own errors become kopf's retry types."""
    try:
        await work
    except OperatorError as e:
        raise _translate(e) from e


async def _run(memo: Any, body: Any, trigger: Trigger) -> None:
    reconciler: Reconciler = memo.reconciler
    await _translated(reconciler.reconcile(body, trigger))


async def _resync_forever(memo: Any, body: Any, stopped: Any, interval: float) -> None:
    """Reconcile one Tenant again every ``interval`` seconds, at its own phase.

    The create or resume handler has just reconciled the Tenant when this
    starts, so the first pass comes one to two intervals later, at a random
    point: a thousand Tenants created (or resumed after a restart) at once
    are spread over an interval instead of all resyncing together, and none
    resyncs while the burst is still being provisioned (a pass then would
    compete with the Tenants not yet Ready). Every later pass is jittered by
    ±10 %. A failed pass is tried again after the error's delay. ``body`` is
    kopf's live view of the Tenant, so every pass sees its latest state.
    """
    await stopped.wait(interval * random.uniform(1.0, 2.0))
    while not stopped:
        delay = interval * random.uniform(0.9, 1.1)
        try:
            await memo.reconciler.reconcile(body, Trigger.RESYNC)
        except OperatorError as e:
            if not isinstance(e, PermanentError):
                delay = min(delay, getattr(e, "delay", delay))
            log.warning("resync of %s/%s failed: %s", body["metadata"].get("namespace"),
                        body["metadata"].get("name"), e.message)  # fmt: skip
        await stopped.wait(delay)


def _connection_info(configuration: Any) -> kopf.ConnectionInfo:
    """kopf's credentials from the same kubernetes_asyncio configuration our client uses."""
    authorization = (configuration.api_key or {}).get("authorization") or (
        configuration.api_key or {}
    ).get("BearerToken")
    scheme, token = None, None
    if authorization:
        scheme, _, token = str(authorization).partition(" ")
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
        scheme=scheme or None,
        token=token or None,
    )


def build_registry(settings: OperatorSettings) -> kopf.OperatorRegistry:
    """A fresh registry with the operator's lifecycle, Tenant and (cluster-wide) Region handlers."""
    registry = kopf.OperatorRegistry()
    _register_lifecycle(registry, settings)
    _register_tenants(registry, settings)
    if not settings.namespaces:
        # Regions are cluster-scoped: only a cluster-wide operator reports on them.
        _register_regions(registry, settings)
    return registry


def _register_lifecycle(registry: kopf.OperatorRegistry, settings: OperatorSettings) -> None:
    """Login, and what the handlers share (clients, watches, the reconciler) from start to stop."""

    @kopf.on.login(registry=registry)
    async def login(**_: Any) -> kopf.ConnectionInfo:
        return _connection_info(await _kube.configure(settings.kubeconfig))

    @kopf.on.startup(registry=registry)
    async def startup(memo: Any, **_: Any) -> None:
        kube = _kube.Kube(await _kube.configure(settings.kubeconfig))
        memo.kube = kube
        memo.backup_jobs = BackupJobs(kube, settings.namespaces)
        memo.backup_jobs.start()
        memo.owned = Owned(kube, settings.namespaces)
        memo.owned.start()
        memo.worker_pods = WorkerPods(kube, settings.namespaces)
        memo.worker_pods.start()
        REGISTRY.register(memo.worker_pods)
        memo.reconciler = Reconciler(kube, settings, memo.backup_jobs, memo.owned)
        memo.reconciler.start()

    @kopf.on.cleanup(registry=registry)
    async def cleanup(memo: Any, **_: Any) -> None:
        worker_pods = getattr(memo, "worker_pods", None)
        if worker_pods is not None:
            REGISTRY.unregister(worker_pods)
        for watches in (
            getattr(memo, "backup_jobs", None),
            getattr(memo, "owned", None),
            worker_pods,
        ):
            if watches is not None:
                await watches.stop()
        reconciler = getattr(memo, "reconciler", None)
        if reconciler is not None:
            await asyncio.to_thread(reconciler.close)
        kube = getattr(memo, "kube", None)
        if kube is not None:
            await kube.close()


def _register_tenants(registry: kopf.OperatorRegistry, settings: OperatorSettings) -> None:
    """Every change to a Tenant, and its periodic resync, runs the same reconcile."""

    @kopf.on.resume(GROUP, VERSION, TENANT_PLURAL, id="tenant-resume", registry=registry)
    async def resume(memo: Any, body: Any, **_: Any) -> None:
        await _run(memo, body, Trigger.RESUME)

    @kopf.on.create(GROUP, VERSION, TENANT_PLURAL, id="tenant-create", registry=registry)
    async def create(memo: Any, body: Any, **_: Any) -> None:
        await _run(memo, body, Trigger.CREATE)

    @kopf.on.update(
        GROUP, VERSION, TENANT_PLURAL, field="spec", id="tenant-update", registry=registry
    )
    async def update(memo: Any, body: Any, **_: Any) -> None:
        await _run(memo, body, Trigger.UPDATE)

    @kopf.daemon(
        GROUP,
        VERSION,
        TENANT_PLURAL,
        id="tenant-resync",
        registry=registry,
        cancellation_timeout=10,
    )
    async def resync(memo: Any, body: Any, stopped: Any, **_: Any) -> None:
        await _resync_forever(memo, body, stopped, settings.resync_seconds)

    @kopf.on.delete(GROUP, VERSION, TENANT_PLURAL, id="tenant-delete", registry=registry)
    async def delete(memo: Any, body: Any, **_: Any) -> None:
        reconciler: Reconciler = memo.reconciler
        await _translated(reconciler.delete(body))


def _register_regions(registry: kopf.OperatorRegistry, settings: OperatorSettings) -> None:
    """A Region's status says whether its PostgreSQL answers, on change and on a timer."""

    @kopf.on.resume(GROUP, VERSION, REGION_PLURAL, id="region-resume", registry=registry)
    @kopf.on.create(GROUP, VERSION, REGION_PLURAL, id="region-create", registry=registry)
    @kopf.on.update(
        GROUP, VERSION, REGION_PLURAL, field="spec", id="region-update", registry=registry
    )
    @kopf.timer(
        GROUP,
        VERSION,
        REGION_PLURAL,
        interval=max(settings.resync_seconds, 30.0),
        id="region-check",
        registry=registry,
    )
    async def region(memo: Any, body: Any, **_: Any) -> None:
        reconciler: Reconciler = memo.reconciler
        await _translated(reconciler.check_region(body))
