"""Adapter: the worker's Alembic migrations, applied to tenant databases side by side.

Alembic keeps its context in process-global state, so one process can run one
migration at a time. A small pool of processes (``settings.migration_processes``)
runs them in parallel: a burst of new tenants waits on its share of the pool,
not on a single lock for the whole operator. The processes start with the
operator (``warm``), so the first new Tenant does not wait for them to load,
and are stopped with it.

The head revision (which names a region's template database, ``_templates``)
is read from the revision files' literals in this process, without running
them; Alembic in a pool process reads it only when they are not plain.
"""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from stowage_operator._errors import TemporaryError

log = logging.getLogger(__name__)


def _migrate(url: str, migrations: str | None) -> bool:
    """In a pool process: apply the migrations; False when the worker is not installed.

    ``migrations``: another Alembic script directory than the worker's (a copy with a
    revision more, as a newer worker would ship).
    """
    try:
        from tenant_worker import migrate
    except ImportError:  # an operator image without the worker: the worker migrates itself
        return False
    if migrations is None:
        migrate(url)
        return True
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", migrations)
    config.attributes["database_url"] = url
    command.upgrade(config, "head")
    return True


def _worker_migrations() -> Path | None:
    """Where the worker's migrations are, found without importing the worker; None: absent."""
    try:
        spec = importlib.util.find_spec("tenant_worker")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    migrations = Path(next(iter(spec.submodule_search_locations))) / "migrations"
    return migrations if (migrations / "versions").is_dir() else None


def _literal(node: ast.expr) -> object:
    try:
        return ast.literal_eval(node)
    except ValueError:
        return ...  # not a literal: the caller asks Alembic instead


def _declared_head(versions: Path) -> str | None:
    """The single head of the revision files' ``revision``/``down_revision`` literals, read
    without running them; None when they are not plain literals or there is not one head."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in versions.glob("*.py"):
        found: dict[str, object] = {}
        for node in ast.parse(path.read_text(), str(path)).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value = node.targets[0], node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                target, value = node.target, node.value
            else:
                continue
            if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
                found[target.id] = _literal(value)
        revision, down = found.get("revision"), found.get("down_revision")
        if not isinstance(revision, str):
            return None
        revisions.add(revision)
        if isinstance(down, str):
            parents.add(down)
        elif isinstance(down, tuple | list) and all(isinstance(d, str) for d in down):
            parents.update(down)
        elif down is not None:
            return None
    heads = revisions - parents
    return next(iter(heads)) if len(heads) == 1 else None


def _head(migrations: str) -> str | None:
    """In a pool process: the head revision of ``migrations``, as Alembic reads it."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory(migrations).get_current_head()


def _load() -> bool:
    """In a pool process: load the migrations' code now; False when the worker is not installed."""
    try:
        from tenant_worker import migrate  # noqa: F401
    except ImportError:
        return False
    return True


class Migrator:
    """Runs the worker's migrations (or those of ``migrations``, an Alembic script directory)."""

    def __init__(self, processes: int, migrations: Path | None = None) -> None:
        self._processes = max(1, processes)
        self._migrations = migrations
        self._pool: ProcessPoolExecutor | None = None
        #: The head revision once a pool process has named it (None inside: no worker).
        self._head: tuple[str | None] | None = None

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
            location = None if self._migrations is None else str(self._migrations)
            applied = await loop.run_in_executor(self._executor(), _migrate, url, location)
        except Exception as e:
            raise TemporaryError(
                f"migrations of database {database} failed: {type(e).__name__}",
                reason="MigrationFailed",
                delay=30,
            ) from e
        if not applied:
            log.warning("tenant_worker is not installed; skipping migrations of %s", database)

    async def head(self) -> str | None:
        """The revision every migrated database ends at; None when the worker is not installed.

        Read from the revision files' literals (milliseconds, in this process), else asked
        of a pool process (which loads Alembic and the migrations); then remembered: the
        migrations ship with the operator.
        """
        if self._head is None:
            migrations = self._migrations or await asyncio.to_thread(_worker_migrations)
            if migrations is None:
                self._head = (None,)
            else:
                versions = migrations / "versions"
                declared = await asyncio.to_thread(_declared_head, versions)
                self._head = (declared or await self._alembic_head(migrations),)
        return self._head[0]

    async def _alembic_head(self, migrations: Path) -> str | None:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor(), _head, str(migrations))
        except Exception as e:
            raise TemporaryError(
                f"cannot read the migrations' head revision: {type(e).__name__}",
                reason="MigrationFailed",
                delay=30,
            ) from e

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
