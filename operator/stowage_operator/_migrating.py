"""Adapter: the worker's Alembic migrations, applied to tenant databases side by side.

Alembic keeps its context in process-global state, so one process can run one
migration at a time. A small pool of processes (``settings.migration_processes``)
runs them in parallel: a burst of new tenants waits on its share of the pool,
not on a single lock for the whole operator. The processes start with the
operator (``warm``), so the first new Tenant does not wait for them to load,
and are stopped with it.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

from stowage_operator._errors import TemporaryError

log = logging.getLogger(__name__)


def _migrate(url: str) -> bool:
    """In a pool process: apply the migrations; False when the worker is not installed."""
    try:
        from tenant_worker import migrate
    except ImportError:  # an operator image without the worker: the worker migrates itself
        return False
    migrate(url)
    return True


def _load() -> bool:
    """In a pool process: load the migrations' code now; False when the worker is not installed."""
    try:
        from tenant_worker import migrate  # noqa: F401
    except ImportError:
        return False
    return True


class Migrator:
    def __init__(self, processes: int) -> None:
        self._processes = max(1, processes)
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self._processes, mp_context=multiprocessing.get_context("spawn")
            )
        return self._pool

    def warm(self) -> None:
        """Start every process now, each loading the migrations' code (without waiting)."""
        executor = self._executor()
        for _ in range(self._processes):
            executor.submit(_load)

    async def migrate(self, url: str, database: str) -> None:
        """Bring ``database`` (at ``url``) to the worker's head revision."""
        loop = asyncio.get_running_loop()
        try:
            applied = await loop.run_in_executor(self._executor(), _migrate, url)
        except Exception as e:
            raise TemporaryError(
                f"migrations of database {database} failed: {type(e).__name__}",
                reason="MigrationFailed",
                delay=30,
            ) from e
        if not applied:
            log.warning("tenant_worker is not installed; skipping migrations of %s", database)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
