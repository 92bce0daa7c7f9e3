"""Replaying erasures into a restored database (``stowage backup restore``).

A backup taken before a user erased their data still holds that data. After a
restore, every erasure the restored database does not know about is run again
with the worker's own erasure (``People.erase``), so what it deletes, and how
it pseudonymises the audit trail, is said once. Each replay is audited as a
``user.erase`` under the restore's correlation id.

What an erasure does in shared spaces depends on the tenant's
``spaces.erasure`` at the time, which the erasure's audit row records
(``space_erasure``). A replay does what was done: the caller passes the
recorded policy of each user. An erasure with none recorded (erased before
spaces existed, or named by an operator with ``--erase-user-id``) replays as
``delete``, the choice that keeps nothing of the user.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from stowage.tenant_spec import SpaceErasure as SpacePolicy
from tenant_worker._policy import TenantPolicy
from tenant_worker._records import CallContext, UserId
from tenant_worker.files import FileErasure
from tenant_worker.people._people import People
from tenant_worker.spaces import SpaceErasure
from tenant_worker.storage._db import create_engine
from tenant_worker.storage._models import User
from tenant_worker.storage._store import Store


@dataclass(frozen=True)
class ReplayedErasure:
    """One user erased again: what the restored database still held of them."""

    user_id: str
    objects_deleted: int
    preferences_deleted: bool
    #: What was done to what they wrote in shared spaces.
    space_erasure: SpacePolicy = SpacePolicy.DELETE
    #: Their files deleted, with every chunk of their bytes.
    files_deleted: int = 0


def replay_policy(recorded: str | None) -> SpacePolicy:
    """The policy a replay applies: the recorded one, else (none, or unknown) ``delete``."""
    try:
        return SpacePolicy(recorded) if recorded else SpacePolicy.DELETE
    except ValueError:
        return SpacePolicy.DELETE


async def replay_erasures(
    database_url: str, erasures: Mapping[str, str | None], correlation_id: str
) -> list[ReplayedErasure]:
    """Erase each user of ``erasures`` that the database at ``database_url`` still knows.

    ``erasures`` maps each internal user id to the ``spaces.erasure`` policy its
    erasure recorded (``delete``, ``pseudonymise``), or None when none was
    recorded: that user's shared content is deleted (:func:`replay_policy`).
    Ids the database does not know (users created after the backup, or already
    erased in it) are left alone: there is nothing of them to delete.
    """
    wanted = sorted(erasures)
    if not wanted:
        return []
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    try:
        store = Store(async_sessionmaker(engine, expire_on_commit=False), TenantPolicy)
        async with store.reading() as s:
            present = set((await s.scalars(select(User.id).where(User.id.in_(wanted)))).all())
        replayed = []
        for user_id in wanted:
            if user_id not in present:
                continue
            policy = replay_policy(erasures[user_id])
            people = People(store, erasure_steps=(SpaceErasure(store, policy), FileErasure(store)))
            ctx = CallContext(correlation_id=correlation_id, user_id=UserId(user_id))
            result = await people.erase(ctx, confirm=True)
            files = int(result.steps.get("files_deleted", 0))
            replayed.append(
                ReplayedErasure(
                    user_id, result.objects_deleted, result.preferences_deleted, policy, files
                )
            )
        return replayed
    finally:
        await engine.dispose()
