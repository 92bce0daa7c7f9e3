"""Background work on the whole tenant: purging expired objects, upgrading schemas."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, delete, func, literal, or_, select, true, tuple_
from sqlalchemy.sql.elements import ColumnElement

from tenant_worker._errors import InvalidArgument
from tenant_worker._policy import TenantPolicy
from tenant_worker._records import CallContext
from tenant_worker.storage._json import dumps
from tenant_worker.storage._models import IdempotencyKey, StoredObject, utcnow
from tenant_worker.storage._store import Store

log = logging.getLogger(__name__)

MAX_BATCH = 5000
#: Counting expired objects stops here: enough to say "far behind", bounded in cost.
BACKLOG_COUNT_CAP = 100_000


@dataclass(frozen=True)
class Measurements:
    """What the tenant stores and how much of it is expired but not yet purged."""

    objects: int
    bytes: int
    #: Expired objects still stored, counted up to BACKLOG_COUNT_CAP.
    expired: int


def _expired_clause(policy: TenantPolicy) -> ColumnElement[bool]:
    now = utcnow()
    clauses: list[ColumnElement[bool]] = [
        and_(StoredObject.expires_at.is_not(None), StoredObject.expires_at <= now)
    ]
    explicit = dict(policy.spec.retention.collections)
    for name in explicit:
        retention = policy.retention(name)
        assert retention is not None
        clauses.append(
            and_(StoredObject.collection == name, StoredObject.updated_at <= now - retention)
        )
    if policy.spec.retention.default_days is not None:
        default = timedelta(days=policy.spec.retention.default_days)
        others = StoredObject.collection.not_in(list(explicit)) if explicit else true()
        clauses.append(and_(others, StoredObject.updated_at <= now - default))
    return or_(*clauses)


class Housekeeping:
    def __init__(self, store: Store, default_batch: int = 500) -> None:
        self.store = store
        self.default_batch = default_batch

    async def purge_expired(self, ctx: CallContext, limit: int = 0) -> tuple[int, bool]:
        """Delete up to ``limit`` expired objects; returns (purged, more remain)."""
        if limit < 0:
            raise InvalidArgument("limit", "must not be negative")
        limit = min(limit or self.default_batch, MAX_BATCH)
        policy = self.store.policy()
        async with self.store.transaction() as s:
            rows = (
                await s.execute(
                    select(
                        StoredObject.owner,
                        StoredObject.collection,
                        StoredObject.object_id,
                        StoredObject.size_bytes,
                    )
                    .where(_expired_clause(policy))
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if rows:
                keys = [(r.owner, r.collection, r.object_id) for r in rows]
                await s.execute(
                    delete(StoredObject).where(
                        tuple_(
                            StoredObject.owner, StoredObject.collection, StoredObject.object_id
                        ).in_(keys)
                    )
                )
                per_collection = Counter(r.collection for r in rows)
                self.store.audit(
                    s, ctx, "objects.purge", detail={"count": len(rows), **per_collection}
                )
                await s.flush()
                freed: dict[str, list[int]] = {}
                for r in rows:
                    freed.setdefault(r.owner, []).append(r.size_bytes)
                for owner, sizes in freed.items():
                    await self.store.charge(s, -len(sizes), -sum(sizes), owner=owner, enforce=False)
            cutoff = utcnow() - self.store.idempotency_ttl
            await s.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff))
        if rows:
            log.info("purged expired objects", extra={"purged": len(rows)})
        return len(rows), len(rows) == limit

    async def measure(self) -> Measurements:
        """The usage totals and the purge backlog: two cheap reads, for metrics."""
        async with self.store.reading() as s:
            objects, used = await self.store.totals(s)
        backlog = (
            select(literal(1))
            .select_from(StoredObject)
            .where(_expired_clause(self.store.policy()))
            .limit(BACKLOG_COUNT_CAP)
            .subquery()
        )
        async with self.store.reading() as s:
            expired = int(await s.scalar(select(func.count()).select_from(backlog)) or 0)
        return Measurements(objects, used, expired)

    async def upgrade(self, ctx: CallContext, collection: str, limit: int = 0) -> tuple[int, bool]:
        """Rewrite up to ``limit`` stored objects at the collection's current schema version.

        The object version is not bumped: the data means the same, and a caller
        holding a version must not see a conflict because of an upgrade.
        """
        policy = self.store.policy()
        coll = policy.collection(collection)
        if limit < 0:
            raise InvalidArgument("limit", "must not be negative")
        limit = min(limit or self.default_batch, MAX_BATCH)
        async with self.store.transaction() as s:
            rows = (
                await s.scalars(
                    select(StoredObject)
                    .where(
                        StoredObject.collection == collection,
                        StoredObject.schema_version < coll.schema_version,
                    )
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            grown: Counter[str] = Counter()
            for row in rows:
                data = coll.upgrade(dict(row.data), row.schema_version)
                size = len(dumps(data))
                grown[row.owner] += size - row.size_bytes
                row.data, row.schema_version, row.size_bytes = data, coll.schema_version, size
            if rows:
                await s.flush()
                self.store.audit(
                    s,
                    ctx,
                    "objects.upgrade",
                    collection=collection,
                    detail={"count": len(rows), "to_version": coll.schema_version},
                )
                await s.flush()
                for owner, growth in grown.items():
                    await self.store.charge(s, 0, growth, owner=owner, enforce=False)
        return len(rows), len(rows) == limit
