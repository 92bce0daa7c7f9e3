"""Running the worker: the gRPC server, health, metrics and its background loops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from prometheus_client import start_http_server
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from stowage.runtime.supervisor import ListenError
from stowage.tracing.sql import trace_statements
from stowage.v1 import worker_pb2_grpc
from tenant_worker import _metrics
from tenant_worker._policy import PolicyError, Quotas, TenantPolicy, load_policy
from tenant_worker._records import CallContext
from tenant_worker._settings import WorkerSettings
from tenant_worker.files import (
    Bucket,
    FileErasure,
    FileLinks,
    Files,
    FileTransfers,
    ObjectDeletions,
)
from tenant_worker.housekeeping._housekeeping import Housekeeping, Measurements
from tenant_worker.objects._objects import Objects
from tenant_worker.people._access import Access
from tenant_worker.people._people import People
from tenant_worker.rpc._servicer import WorkerServicer
from tenant_worker.spaces import Handles, SpaceErasure, SpaceObjects, Spaces
from tenant_worker.storage._db import create_engine, read_session_factory, session_factory
from tenant_worker.storage._store import Store

log = logging.getLogger(__name__)

SERVICE_NAME = "stowage.v1.TenantWorker"


class PolicyFile:
    """The tenant's policy, re-read when its file changes (a mounted ConfigMap).

    A change that does not parse is logged and ignored: the worker keeps
    serving with the last good policy.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._stamp = self._stat()
        self._policy = load_policy(path)

    def _stat(self) -> tuple[float, int] | None:
        if self.path is None:
            return None
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime, st.st_size)

    def current(self) -> TenantPolicy:
        return self._policy

    def refresh(self) -> bool:
        stamp = self._stat()
        if stamp == self._stamp or stamp is None:
            return False
        self._stamp = stamp
        try:
            self._policy = load_policy(self.path)
        except (PolicyError, OSError) as e:
            _metrics.POLICY_RELOADS.labels("invalid").inc()
            log.error("policy file rejected; keeping the previous policy: %s", e)
            return False
        _metrics.POLICY_RELOADS.labels("applied").inc()
        log.info("policy reloaded", extra={"policy_file": str(self.path)})
        return True


async def _attempt(work: str, step: Callable[[], Awaitable[None]]) -> None:
    try:
        await step()
    except Exception:
        log.exception("background %s failed; will retry", work)


async def _every(seconds: float, work: str, step: Callable[[], Awaitable[None]]) -> None:
    while True:
        await asyncio.sleep(seconds)
        await _attempt(work, step)


def _publish(measured: Measurements, quotas: Quotas) -> None:
    """Set the quota and purge-backlog gauges from one measurement."""
    for limit, used, quota in (
        ("objects", measured.objects, quotas.max_objects),
        ("bytes", measured.bytes, quotas.max_bytes),
    ):
        _metrics.QUOTA_USED.labels(limit).set(used)
        _metrics.QUOTA_LIMIT.labels(limit).set(quota)
        _metrics.QUOTA_USED_RATIO.labels(limit).set(used / quota if quota > 0 else 0.0)
    _metrics.EXPIRED_OBJECTS.set(measured.expired)


async def _check_database(engine: AsyncEngine, health: health_aio.HealthServicer) -> None:
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as e:
        _metrics.DATABASE_UP.set(0)
        status = health_pb2.HealthCheckResponse.NOT_SERVING
        log.warning("database check failed: %s", type(e).__name__)
    else:
        _metrics.DATABASE_UP.set(1)
        status = health_pb2.HealthCheckResponse.SERVING
    # The overall status ("") last: whoever waits for it finds the named service set too.
    for service in (SERVICE_NAME, ""):
        await health.set(service, status)


def _servicer(settings: WorkerSettings, policy: PolicyFile, engine: AsyncEngine) -> WorkerServicer:
    """The worker's services on one store, behind the gRPC surface."""
    store = Store(
        session_factory(engine),
        policy.current,
        timedelta(seconds=settings.idempotency_ttl),
        read_session_factory(engine),
    )
    handles = Handles()
    object_store = settings.object_store()
    bucket = Bucket(object_store) if object_store is not None else None
    links = FileLinks(store, handles)
    return WorkerServicer(
        settings.tenant,
        Objects(store, settings.default_page_size, settings.max_page_size, links.check),
        People(store, erasure_steps=(SpaceErasure(store), FileErasure(store))),
        Housekeeping(store, settings.purge_batch),
        Access(store),
        Spaces(store, handles),
        SpaceObjects(
            store, handles, settings.default_page_size, settings.max_page_size, links.check
        ),
        settings.instance,
        files=Files(
            store,
            settings.default_page_size,
            settings.max_page_size,
            ObjectDeletions(store, bucket),
            handles,
        ),
        transfers=FileTransfers(store, bucket, handles),
        links=links,
        max_message_bytes=settings.max_message_bytes,
    )


def _grpc_server(
    settings: WorkerSettings, servicer: WorkerServicer
) -> tuple[grpc.aio.Server, health_aio.HealthServicer, int]:
    """The gRPC server with the worker and health services, bound to its address."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
            # No port sharing: a second process on a taken port (a stale worker
            # of another platform, another tenant) must fail here, loudly,
            # instead of silently splitting this tenant's traffic with it.
            # Only the siblings a supervisor started, after it found the port
            # free, share it (see _processes).
            ("grpc.so_reuseport", 1 if settings.parent_pid is not None else 0),
            # No window growth by bandwidth probing: with it, an upload's body piled
            # up in the worker's buffers faster than it was stored (10 to 18 MiB of a
            # 25 MiB file, against 5 to 7 without; the same MiB/s either way).
            ("grpc.http2.bdp_probe", 0),
        ]
    )
    worker_pb2_grpc.add_TenantWorkerServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    try:
        port = server.add_insecure_port(settings.listen)
    except RuntimeError as e:
        raise ListenError(
            f"cannot listen on {settings.listen}: the address is in use or not valid ({e})"
        ) from e
    return server, health, port


class _Background:
    """The worker's loops: housekeeping, policy reloads and database checks."""

    def __init__(
        self,
        housekeeping: Housekeeping,
        policy: PolicyFile,
        engine: AsyncEngine,
        health: health_aio.HealthServicer,
        space_objects: SpaceObjects | None = None,
        files: Files | None = None,
    ) -> None:
        self.housekeeping = housekeeping
        self.space_objects = space_objects
        self.files = files
        self.policy = policy
        self.engine = engine
        self.health = health

    async def measure(self) -> None:
        _publish(await self.housekeeping.measure(), self.policy.current().quotas)

    async def purge(self) -> None:
        ctx = CallContext(f"purge-{uuid.uuid4().hex}")
        more = True
        while more:
            purged, more = await self.housekeeping.purge_expired(ctx)
            _metrics.PURGED.inc(purged)
        while self.space_objects is not None:
            purged = await self.space_objects.purge_expired(ctx, self.housekeeping.default_batch)
            _metrics.PURGED.inc(purged)
            if purged < self.housekeeping.default_batch:
                break
        more = self.files is not None
        while self.files is not None and more:
            # A batch of files is a bounded number of chunks: at most 50 files per transaction.
            purged, more = await self.files.purge_expired(ctx, 50)
            _metrics.PURGED.inc(purged)
        if self.files is not None:
            # Objects of the bucket a delete or an upload left to delete (retries, in batches).
            await self.files.delete_objects()
        _metrics.PURGE_LAST_SUCCESS.set_to_current_time()

    async def housekeep(self) -> None:
        """Purge until nothing expired is left, then measure, even when the purge failed."""
        await _attempt("purge", self.purge)
        await _attempt("measurement", self.measure)

    async def reload(self) -> None:
        if self.policy.refresh():
            await self.measure()  # the quota gauges follow a changed limit at once

    async def check(self) -> None:
        await _check_database(self.engine, self.health)

    def start(self, settings: WorkerSettings) -> list[asyncio.Task[None]]:
        return [
            asyncio.create_task(_every(settings.purge_interval, "housekeeping", self.housekeep)),
            asyncio.create_task(
                _every(settings.policy_check_interval, "policy reload", self.reload)
            ),
            asyncio.create_task(_every(5.0, "database check", self.check)),
        ]


def _stop_on_signals() -> asyncio.Event:
    """An event SIGTERM and SIGINT set."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def serve(settings: WorkerSettings, stop: asyncio.Event | None = None) -> None:
    """Serve until ``stop`` is set (or SIGTERM/SIGINT when ``stop`` is None)."""
    policy = PolicyFile(settings.policy_file)
    engine = create_engine(settings.database_url, *settings.pool)
    trace_statements(engine)
    servicer = _servicer(settings, policy, engine)
    server, health, port = _grpc_server(settings, servicer)
    if settings.metrics_port:
        start_http_server(settings.metrics_port)
    await server.start()
    await _check_database(engine, health)
    log.info(
        "worker listening",
        extra={
            "tenant": settings.tenant,
            "instance": settings.instance,
            "port": port,
            "metrics_port": settings.metrics_port,
        },
    )
    background = _Background(
        servicer.housekeeping, policy, engine, health, servicer.space_objects, servicer.files
    )
    await _attempt("measurement", background.measure)
    if stop is None:
        stop = _stop_on_signals()
    tasks = background.start(settings)
    try:
        await stop.wait()
    finally:
        log.info("worker stopping", extra={"tenant": settings.tenant})
        await health.enter_graceful_shutdown()
        servicer.frames.drain()  # the streams' callers move on before the server stops
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await server.stop(grace=5)
        if servicer.transfers is not None and servicer.transfers.bucket is not None:
            await servicer.transfers.bucket.close()
        await engine.dispose()
