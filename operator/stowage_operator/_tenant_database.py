"""The Tenant's database: its Secret, role, database and migrations, and dropping them.

The Secret ``tenant-<name>-db`` is the password's only home; it is applied
before the role, so a crash between the two converges on the next run. A
resync trusts a database this process made sure of (same server, role and
password) while the region's catalog still shows it; migrations run again
only when the database is new, on a trigger other than the resync, or when
they never succeeded.

A new database is a copy of the region's migrated template (``_templates``),
its objects handed to the tenant's role: it needs no migrations. The copy is
one of the region's spares (``_spares``), made ahead of demand, while there is
one; the pool is refilled in the background after every pass. Without a
template (the worker's migrations not installed, or its build failing) it is
created empty and migrated.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Mapping
from typing import Any

from stowage_operator import _manifests, _metrics, _naming, _postgres
from stowage_operator._applying import Applier
from stowage_operator._conditions import DATABASE_READY
from stowage_operator._errors import DatabaseError
from stowage_operator._kube import Kube, decoded
from stowage_operator._migrating import Migrator
from stowage_operator._regions import Regions, fingerprint
from stowage_operator._settings import OperatorSettings
from stowage_operator._spares import Spares
from stowage_operator._templates import Templates
from stowage_operator._types import (
    AdminCredentials,
    Condition,
    DatabaseCredentials,
    Region,
    TenantRef,
    Trigger,
)

log = logging.getLogger(__name__)


def status_of(ref: TenantRef, region: Region, creds: DatabaseCredentials) -> dict[str, Any]:
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


def ready_condition(region: Region, creds: DatabaseCredentials) -> Condition:
    return Condition(
        DATABASE_READY,
        "True",
        "Provisioned",
        f"database {creds.database} on {creds.host}:{creds.port} "
        f"(region {region.name}) is owned by the tenant's role and migrated",
    )


class TenantDatabase:
    """Makes sure of each Tenant's database, role, Secret and migrations; drops them."""

    def __init__(
        self, kube: Kube, applier: Applier, regions: Regions, settings: OperatorSettings
    ) -> None:
        self._kube = kube
        self._applier = applier
        self._regions = regions
        self._settings = settings
        # Tenant migrations run in a small pool of processes (Alembic is process-global).
        self._migrator = Migrator(settings.migration_processes)
        self._templates = Templates(
            self._migrator, settings.postgres_timeout, settings.max_admin_connections
        )
        self._spares = Spares(self._templates, settings.postgres_timeout, settings.spare_databases)
        # Per Tenant, the database this process last made sure of: where, whose, which password.
        self._ensured: dict[tuple[str, str], tuple[str, int, str, str, str]] = {}

    def start(self) -> None:
        """Start the migration processes, before the first Tenant needs them."""
        if self._settings.run_migrations:
            self._migrator.warm()

    def close(self) -> None:
        """Stop the spares' refills and the migration processes."""
        self._spares.close()
        self._migrator.close()

    async def ensure(
        self,
        ref: TenantRef,
        region: Region,
        admin: AdminCredentials,
        old_status: Mapping[str, Any],
        trigger: Trigger,
        extra: Mapping[str, Any],
    ) -> DatabaseCredentials:
        """Secret, database and role, migrations; the credentials the worker connects with."""
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
            ca_cert=admin.ca_cert,
        )
        # The Secret first: the role's password always comes from it, so a crash
        # between the two steps converges on the next run.
        await self._applier.apply(_manifests.secret(ref, creds), trigger, live=existing)
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
        # A copy of the template is migrated already.
        needs_migrations = not made.cloned and (
            made.created_database or trigger is not Trigger.RESYNC or not migrated_before
        )
        if self._settings.run_migrations and needs_migrations:
            if not migrated_before and not made.created_database:
                # A copy of a template interrupted before its objects were handed over.
                await _postgres.adopt_template_objects(
                    admin, database, role, self._settings.postgres_timeout
                )
            root_cert = str(_postgres.ca_file(creds.ca_cert)) if creds.ca_cert else ""
            await self._migrator.migrate(creds.url(root_cert), database)
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
        done = (admin.host, admin.port, database, role, fingerprint(password))
        # Without migrations to run here there is no schema to copy, nor spares to keep.
        copies = self._settings.run_migrations
        if copies:
            self._spares.refill(admin)  # after a restart too: the resyncs fill the pool
        if trigger is Trigger.RESYNC and self._ensured.get(key) == done:
            catalog = await self._regions.catalog(admin)
            if catalog.provisioned(database, role):
                return _postgres.Provisioned(created_role=False, created_database=False)
        self._ensured.pop(key, None)
        template = await self._templates.template(admin) if copies else None
        spare = None if template is None else self._spares.take(admin, template)
        made = None
        try:
            # Meanwhile no spare is made; after the burst the pool fills again.
            with self._spares.serving(admin) if copies else contextlib.nullcontext():
                made = await _postgres.ensure_database(
                    admin,
                    database,
                    role,
                    password,
                    self._settings.postgres_timeout,
                    template,
                    spare,
                )
        except DatabaseError:
            if template is not None:  # perhaps gone: look again on the next attempt
                self._templates.forget(admin)
            raise
        finally:
            if spare is not None and (made is None or made.spare != spare):
                self._spares.release(spare)  # not claimed: offered again while it is there
        self._ensured[key] = done
        return made

    async def drop(self, ref: TenantRef, admin: AdminCredentials) -> None:
        """Drop the Tenant's database and role (``deletionPolicy: Delete``)."""
        await _postgres.drop_database(
            admin,
            _naming.database_name(ref.namespace, ref.name),
            _naming.role_name(ref.namespace, ref.name),
            self._settings.postgres_timeout,
        )

    async def remove_secret(self, ref: TenantRef) -> None:
        """Delete the Tenant's database Secret and forget its database (the Tenant is gone)."""
        await self._applier.delete(
            "v1", "Secret", ref.namespace, _naming.secret_name(ref.name), None
        )
        self._ensured.pop((ref.namespace, ref.name), None)


__all__ = ["TenantDatabase", "ready_condition", "status_of"]
