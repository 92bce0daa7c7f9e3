"""Replaying erasures into a restored database (``stowage backup restore``).

A backup taken before a user erased their data still holds that data. After a
restore, every erasure the restored database does not know about is run again
with the worker's own erasure (``People.erase``), so what it deletes, and how
it pseudonymises the audit trail, is said once. Each replay is audited as a
``user.erase`` under the restore's correlation id.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from tenant_worker._policy import TenantPolicy
from tenant_worker._records import CallContext, UserId
from tenant_worker.people._people import People
from tenant_worker.storage._db import create_engine
from tenant_worker.storage._models import User
from tenant_worker.storage._store import Store


@dataclass(frozen=True)
class ReplayedErasure:
    """One user erased again: what the restored database still held of them."""

    user_id: str
    objects_deleted: int
    preferences_deleted: bool


async def replay_erasures(
    database_url: str, user_ids: Iterable[str], correlation_id: str
) -> list[ReplayedErasure]:
    """Erase each of ``user_ids`` that the database at ``database_url`` still knows.

    Ids it does not know (users created after the backup, or already erased in
    it) are left alone: there is nothing of them to delete.
    """
    wanted = sorted(set(user_ids))
    if not wanted:
        return []
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    try:
        store = Store(async_sessionmaker(engine, expire_on_commit=False), TenantPolicy)
        async with store.reading() as s:
            present = set((await s.scalars(select(User.id).where(User.id.in_(wanted)))).all())
        people = People(store)
        replayed = []
        for user_id in wanted:
            if user_id not in present:
                continue
            ctx = CallContext(correlation_id=correlation_id, user_id=UserId(user_id))
            result = await people.erase(ctx, confirm=True)
            replayed.append(
                ReplayedErasure(user_id, result.objects_deleted, result.preferences_deleted)
            )
        return replayed
    finally:
        await engine.dispose()
