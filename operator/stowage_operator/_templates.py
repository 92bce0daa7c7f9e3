"""Template databases: one migrated copy of the worker's schema per region server.

A new tenant database is a copy of its region's template (``CREATE DATABASE …
TEMPLATE``, a file copy inside PostgreSQL) instead of an empty database that
the migrations then fill: the schema's DDL runs once per region and schema
version, not once per tenant. The template is named by the migrations' head
revision (``stowage-template-<revision>``), so a worker whose schema moved on
gets a new template, built from scratch, and the older ones are dropped.

A template is built under a name of its own (``…-building``): the admin
creates it, the migrations run in it as :data:`~stowage_operator._postgres.TEMPLATE_ROLE`,
and only then is it closed to connections and renamed, so a clone never
copies a half-migrated schema and no session is ever left in it (a copy
needs none there). One build at a time per region: a lock per region in this
process, and a PostgreSQL advisory lock across operators. The advisory lock's
session takes one of the region's admin slots and the build another, so an
operator capped at one admin connection per region builds no template. A build that
fails is not tried again for a while; meanwhile tenants are provisioned the
old way (an empty database, then the migrations).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time

from stowage_operator import _postgres
from stowage_operator._errors import OperatorError
from stowage_operator._migrating import Migrator
from stowage_operator._types import AdminCredentials, DatabaseCredentials

log = logging.getLogger(__name__)

#: Every template database's name starts with this (not ``stowage_``: no tenant's database).
TEMPLATE_PREFIX = "stowage-template-"
#: How long a failed build is not tried again.
RETRY_SECONDS = 60.0

_UNSAFE = re.compile(r"[^a-z0-9_]")


def template_name(revision: str) -> str:
    """``stowage-template-<revision>``, the revision made safe and short (63 bytes in all)."""
    return TEMPLATE_PREFIX + _UNSAFE.sub("_", revision.lower())[:32]


def building_name(name: str) -> str:
    return f"{name}-building"


class Templates:
    """Each region server's template database, built on first use and when the schema moves on."""

    def __init__(self, migrator: Migrator, connect_timeout: float, max_connections: int) -> None:
        self._migrator = migrator
        self._timeout = connect_timeout
        #: The lock's session and the build's, each in an admin slot of their own.
        self._enabled = max_connections >= 2
        #: Per region server, the template known to be ready.
        self._ready: dict[tuple[str, int], str] = {}
        #: Per region server, until when a failed build is not tried again.
        self._failed_until: dict[tuple[str, int], float] = {}
        self._locks: dict[tuple[str, int], asyncio.Lock] = {}

    async def template(self, admin: AdminCredentials) -> str | None:
        """The region's ready template database; None when there is none to copy (the
        worker's migrations are not installed, or the build failed a moment ago)."""
        key = (admin.host, admin.port)
        if not self._enabled:
            return None
        if (ready := self._ready.get(key)) is not None:
            return ready
        if time.monotonic() < self._failed_until.get(key, 0.0):
            return None
        revision = await self._migrator.head()
        if revision is None:
            return None
        name = template_name(revision)
        async with self._locks.setdefault(key, asyncio.Lock()):
            if (ready := self._ready.get(key)) is not None:
                return ready
            if time.monotonic() < self._failed_until.get(key, 0.0):
                return None
            try:
                await self._ensure(admin, name)
            except OperatorError as e:
                self._failed_until[key] = time.monotonic() + RETRY_SECONDS
                log.warning(
                    "template database %s not built (%s); creating databases without it",
                    name,
                    e.message,
                )
                return None
            self._ready[key] = name
            return name

    def forget(self, admin: AdminCredentials) -> None:
        """Look for the region's template again on next use (a copy of it failed)."""
        self._ready.pop((admin.host, admin.port), None)

    async def _ensure(self, admin: AdminCredentials, name: str) -> None:
        """Build ``name`` unless it exists; drop the region's other templates (older
        schemas, interrupted builds). Both under the lock: no build is then under way."""
        existing = await _postgres.databases_named(admin, self._timeout, TEMPLATE_PREFIX)
        if existing == [name]:
            return
        async with _postgres.template_lock(admin, self._timeout, TEMPLATE_PREFIX):
            # Another operator may have built it while this one waited for the lock.
            existing = await _postgres.databases_named(admin, self._timeout, TEMPLATE_PREFIX)
            if name not in existing:
                await self._build(admin, name)
            for stale in existing:
                if stale != name:
                    await _postgres.drop_template(admin, stale, self._timeout)

    async def _build(self, admin: AdminCredentials, name: str) -> None:
        building = building_name(name)
        started = time.monotonic()
        await _postgres.prepare_template(admin, building, self._timeout)
        await self._migrator.migrate(_as_template_role(admin, building), building)
        await _postgres.publish_template(admin, building, name, self._timeout)
        log.info("built template database %s in %.1f s", name, time.monotonic() - started)


def _as_template_role(admin: AdminCredentials, database: str) -> str:
    """The migrations' URL: the admin's login acting as the template role from the start
    (libpq's ``options=-c role=…``), so everything they create is the template role's."""
    creds = DatabaseCredentials(
        host=admin.host,
        port=admin.port,
        database=database,
        user=admin.user,
        ssl_mode=admin.ssl_mode,
        password=admin.password,
        ca_cert=admin.ca_cert,
    )
    root_cert = str(_postgres.ca_file(admin.ca_cert)) if admin.ca_cert else ""
    return creds.url(root_cert) + f"&options=-c%20role%3D{_postgres.TEMPLATE_ROLE}"


__all__ = ["TEMPLATE_PREFIX", "Templates", "template_name"]
