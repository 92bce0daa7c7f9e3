"""What erasing a user does in spaces; runs inside the erasure's transaction.

Their memberships end (a space they were the last member of goes with its
objects; one they owned passes to the remaining owner, or the earliest member,
with its quota). What they wrote in shared spaces follows ``spaces.erasure``:

- ``delete``: every object in a space that they created or last changed is
  deleted (a ``delete`` change in the space's feed, by "a former member");
- ``pseudonymise``: those objects stay, their authorship becomes a pseudonym
  (``~`` + random hex, one per erasure: it groups their work, names nobody).

The files they created or last uploaded in spaces follow the same policy: deleted
with their bytes (chunks, and the bucket's objects noted for deletion in this
transaction), or kept under the same pseudonym. A kept file they created now
belongs to its space's owner (after the hand-over above), so it outlives them.

Either way the feed's and the objects' authorship never names them again. The
policy applied is recorded in the erasure's audit row (``space_erasure``), so a
restore from backup replays what was done (``tenant_worker._erasures``).
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from stowage.tenant_spec import SpaceErasure as Policy
from tenant_worker._records import CallContext, UserId
from tenant_worker.spaces._access import (
    MEMBERS,
    PSEUDONYM_PREFIX,
    SpaceRow,
    drop_files,
    hand_over,
)
from tenant_worker.storage._models import (
    Space,
    SpaceChange,
    SpaceMember,
    SpaceObject,
    StoredFile,
    utcnow,
)
from tenant_worker.storage._store import Store

_OBJECTS = SpaceObject.__table__
_COLUMNS = (
    Space.id,
    Space.name,
    Space.kind,
    Space.owner,
    Space.seq,
    Space.objects,
    Space.bytes,
    Space.created_at,
)


class SpaceErasure:
    """An erasure step (``People(erasure_steps=…)``) for spaces.

    ``policy`` overrides the tenant's ``spaces.erasure`` (a replay after a
    restore applies the policy the original erasure recorded).
    """

    def __init__(self, store: Store, policy: Policy | None = None) -> None:
        self.store = store
        self.policy = policy

    async def __call__(self, s: AsyncSession, ctx: CallContext, user: UserId) -> dict[str, Any]:
        policy = self.policy or self.store.policy().spec.spaces.erasure
        pseudonym = PSEUDONYM_PREFIX + secrets.token_hex(20)
        conn = await s.connection()
        mine = or_(_OBJECTS.c.created_by == user, _OBJECTS.c.updated_by == user)
        touched = (
            (await conn.execute(select(_OBJECTS.c.space_id).where(mine).distinct())).scalars().all()
        )
        files_touched = (
            (await conn.execute(select(StoredFile.space_id).where(_files_of(user)).distinct()))
            .scalars()
            .all()
        )
        member_of = (
            (await conn.execute(select(MEMBERS.c.space_id).where(MEMBERS.c.user_id == user)))
            .scalars()
            .all()
        )
        spaces = {
            r.id: SpaceRow(*r)
            for r in await conn.execute(
                select(*_COLUMNS)
                .where(Space.id.in_(sorted(set(touched) | set(files_touched) | set(member_of))))
                .order_by(Space.id)
                .with_for_update()
            )
        }
        deleted = files_deleted = 0
        if policy is Policy.DELETE:
            files_deleted = await self._delete_files(conn, spaces, user)
            for space in spaces.values():
                deleted += await self._delete_written(conn, ctx, space, user, pseudonym)
        else:
            for model in (SpaceObject, StoredFile):
                for column in ("created_by", "updated_by"):
                    await conn.execute(
                        update(model)
                        .where(getattr(model, column) == user)
                        .values({column: pseudonym})
                    )
        await conn.execute(
            update(SpaceChange).where(SpaceChange.author == user).values(author=pseudonym)
        )
        gone = 0
        for space_id in member_of:
            found = (
                await conn.execute(select(*_COLUMNS).where(Space.id == space_id))
            ).one_or_none()
            if found is None:
                continue
            await conn.execute(
                delete(SpaceMember).where(
                    SpaceMember.space_id == space_id, SpaceMember.user_id == user
                )
            )
            if await hand_over(conn, self.store, SpaceRow(*found), user) is None:
                gone += 1
        # The space files kept that they created pass to their space's (new) owner.
        space_owner = select(Space.owner).where(Space.id == StoredFile.space_id)
        await conn.execute(
            update(StoredFile)
            .where(StoredFile.owner == user, StoredFile.space_id.is_not(None))
            .values(owner=space_owner.scalar_subquery())
        )
        return {
            "spaces_left": len(member_of),
            "spaces_deleted": gone,
            "space_objects_deleted": deleted,
            "space_files_deleted": files_deleted,
            "space_erasure": policy.value,
        }

    async def _delete_files(self, conn: Any, spaces: dict[str, SpaceRow], user: str) -> int:
        """Delete the space files ``user`` created or last uploaded; their spaces' sizes and
        their owners' quotas shrink by them."""
        gone = await drop_files(conn, _files_of(user))
        for space_id in sorted({r.space_id for r in gone}):
            mine = [r.size_bytes for r in gone if r.space_id == space_id]
            await conn.execute(
                update(Space)
                .where(Space.id == space_id)
                .values(objects=Space.objects - len(mine), bytes=Space.bytes - sum(mine))
            )
            owner = spaces[space_id].owner
            await self.store.charge(conn, -len(mine), -sum(mine), owner=owner, enforce=False)
        return len(gone)

    async def _delete_written(
        self, conn: Any, ctx: CallContext, space: SpaceRow, user: str, pseudonym: str
    ) -> int:
        rows = (
            await conn.execute(
                delete(SpaceObject)
                .where(
                    SpaceObject.space_id == space.id,
                    or_(SpaceObject.created_by == user, SpaceObject.updated_by == user),
                )
                .returning(
                    SpaceObject.collection,
                    SpaceObject.object_id,
                    SpaceObject.version,
                    SpaceObject.size_bytes,
                )
            )
        ).all()
        if not rows:
            return 0
        now = utcnow()
        for i, r in enumerate(rows, start=1):
            await conn.execute(
                insert(SpaceChange).values(
                    space_id=space.id,
                    seq=space.seq + i,
                    collection=r.collection,
                    object_id=r.object_id,
                    version=r.version,
                    action="delete",
                    author=pseudonym,
                    at=now,
                    correlation_id=ctx.correlation_id,
                )
            )
        freed = sum(r.size_bytes for r in rows)
        await conn.execute(
            update(Space)
            .where(Space.id == space.id)
            .values(
                seq=space.seq + len(rows),
                objects=Space.objects - len(rows),
                bytes=Space.bytes - freed,
            )
        )
        await self.store.charge(conn, -len(rows), -freed, owner=space.owner, enforce=False)
        return len(rows)


def _files_of(user: str) -> ColumnElement[bool]:
    """The space files ``user`` created or last uploaded."""
    wrote = or_(StoredFile.created_by == user, StoredFile.updated_by == user)
    return StoredFile.space_id.is_not(None) & wrote
