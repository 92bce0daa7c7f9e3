"""The Regions: each one's resource, admin credentials, catalog, hardening and health.

What every Tenant of a Region shares. A resync pass reads the Region, its
admin Secret and its catalog at most once per freshness window
(``RecentReads``; the resync interval, at most 15 s); every other trigger
reads the Region and its Secrets at most once a second (``SHARED_SECONDS``),
and joins a read of them already under way. Admin connections are limited
per region server, and a region's shared databases are hardened once per
process (and again by the Region's own handler, which also reports whether
its PostgreSQL answers).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from typing import Any

from stowage_operator import _conditions, _naming, _postgres
from stowage_operator._conditions import READY
from stowage_operator._errors import OperatorError, TemporaryError
from stowage_operator._kube import Kube
from stowage_operator._recent import RecentReads
from stowage_operator._settings import OperatorSettings
from stowage_operator._types import (
    AdminCredentials,
    Condition,
    ObjectStoreCredentials,
    Region,
    Trigger,
)

#: The longest a resync pass trusts a Region, its admin Secret or a region's catalog.
FRESH_SECONDS = 15.0


def fingerprint(password: str) -> str:
    """What the operator keeps of a password to notice it changed: a short digest."""
    return hashlib.blake2b(password.encode(), digest_size=16).hexdigest()


class Regions:
    """The Regions as the Tenants' reconciles need them, and each Region's health."""

    def __init__(self, kube: Kube, settings: OperatorSettings) -> None:
        self._kube = kube
        self._settings = settings
        # What a resync reads at most once per window, with when it was read.
        self._recent = RecentReads(min(FRESH_SECONDS, settings.resync_seconds))
        # Admin connections open at once, per region server (settings.max_admin_connections).
        self._admin_slots: dict[tuple[str, int], asyncio.Semaphore] = {}
        # Regions whose shared databases this process has hardened, and their locks.
        self._hardened: set[tuple[str, int, str]] = set()
        self._region_locks: dict[tuple[str, int, str], asyncio.Lock] = {}

    async def region(self, name: str, trigger: Trigger | None = None) -> Region:
        body = await self._recent.get(
            ("region", name), lambda: self._kube.get_region(name), trigger
        )
        if body is None:
            raise TemporaryError(
                f"Region {name!r} does not exist; create it or fix spec.region",
                reason="RegionNotFound",
                delay=5,
            )
        return Region.from_body(body)

    async def accepting(self, name: str, old_status: Mapping[str, Any], trigger: Trigger) -> Region:
        """The Tenant's Region, if it accepts new tenants or already holds this one's database."""
        region = await self.region(name, trigger)
        if not region.accepting_tenants and not old_status.get("database"):
            raise TemporaryError(
                f"Region {region.name!r} does not accept new tenants (spec.acceptingTenants)",
                reason="RegionNotAccepting",
                delay=30,
            )
        return region

    async def admin(self, region: Region, trigger: Trigger | None = None) -> AdminCredentials:
        namespace, name = region.admin_secret_namespace, region.admin_secret_name
        data = await self._recent.get(
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
            ca_cert=await self.ca_cert(region, trigger),
        )

    async def ca_cert(self, region: Region, trigger: Trigger | None = None) -> str:
        """The PEM of ``spec.postgres.caSecretRef``, or "" when the Region names none."""
        if not region.ca_secret_name:
            return ""
        namespace, name = region.ca_secret_namespace, region.ca_secret_name
        data = await self._recent.get(
            ("secret", namespace, name),
            lambda: self._kube.secret_data(namespace, name),
            trigger,
        )
        where = f"CA Secret {namespace}/{name}"
        if data is None:
            raise TemporaryError(
                f"Region {region.name!r}: {where} does not exist",
                reason="CASecretMissing",
                delay=10,
            )
        pem = data.get(region.ca_secret_key) or ""
        if "-----BEGIN CERTIFICATE-----" not in pem:
            raise TemporaryError(
                f"Region {region.name!r}: {where} holds no PEM certificate under "
                f"{region.ca_secret_key!r}",
                reason="CASecretInvalid",
                delay=30,
            )
        return pem

    async def object_store(
        self, region: Region, trigger: Trigger | None = None
    ) -> ObjectStoreCredentials | None:
        """The credentials (and CA) of ``spec.objectStore``, or None when the Region has none.

        Read like the admin Secret: at most once per freshness window on a resync.
        """
        store = region.object_store
        if store is None:
            return None
        namespace, name = store.credentials_secret_namespace, store.credentials_secret_name
        data = await self._recent.get(
            ("secret", namespace, name),
            lambda: self._kube.secret_data(namespace, name),
            trigger,
        )
        where = f"objectStore Secret {namespace}/{name}"
        if data is None:
            raise TemporaryError(
                f"Region {region.name!r}: {where} does not exist",
                reason="ObjectStoreSecretMissing",
                delay=10,
            )
        keys = (store.access_key_id_key, store.secret_access_key_key)
        if not all(data.get(k) for k in keys):
            raise TemporaryError(
                f"Region {region.name!r}: {where} needs the keys {keys[0]} and {keys[1]}",
                reason="ObjectStoreSecretInvalid",
                delay=30,
            )
        ca = ""
        if store.ca_secret_name:
            ca_namespace, ca_name = store.ca_secret_namespace, store.ca_secret_name
            ca_data = await self._recent.get(
                ("secret", ca_namespace, ca_name),
                lambda: self._kube.secret_data(ca_namespace, ca_name),
                trigger,
            )
            ca = (ca_data or {}).get(store.ca_secret_key) or ""
            if "-----BEGIN CERTIFICATE-----" not in ca:
                raise TemporaryError(
                    f"Region {region.name!r}: objectStore CA Secret {ca_namespace}/{ca_name} "
                    f"holds no PEM certificate under {store.ca_secret_key!r}",
                    reason="ObjectStoreCASecretInvalid",
                    delay=30,
                )
        return ObjectStoreCredentials(data[keys[0]], data[keys[1]], ca)

    async def catalog(self, admin: AdminCredentials) -> _postgres.Catalog:
        """The region's tenant databases and roles, read at most once per freshness window.

        Kept per server and admin credentials, not per server alone: a region whose
        admin password stopped working must fail its resyncs, even while another
        region on the same server reads the same catalog fine.
        """
        return await self._recent.get(
            ("catalog", admin.host, str(admin.port), admin.user, fingerprint(admin.password)),
            lambda: _postgres.catalog(
                admin, self._settings.postgres_timeout, _naming.DATABASE_PREFIX
            ),
            Trigger.RESYNC,
        )

    async def harden(self, admin: AdminCredentials, *, recheck: bool = False) -> None:
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

    async def check(self, body: Mapping[str, Any]) -> None:
        """Report in the Region's status whether its PostgreSQL answers the admin."""
        region = Region.from_body(body)
        generation = int(body["metadata"].get("generation", 0))
        old = (body.get("status") or {}).get("conditions")
        try:
            admin = await self.admin(region)
            await _postgres.check(admin, self._settings.postgres_timeout)
            await self.harden(admin, recheck=True)
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


__all__ = ["FRESH_SECONDS", "Regions", "fingerprint"]
