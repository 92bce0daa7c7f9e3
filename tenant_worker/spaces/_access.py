"""Membership and role checks, authors and the quota moves of a space, on one connection.

Every function runs inside the caller's transaction: a check here and the data
it guards are read or written together.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from tenant_worker._errors import NotFound
from tenant_worker._records import Author, MemberRecord, SpaceRecord
from tenant_worker.spaces._roles import Role
from tenant_worker.storage._models import (
    AUDIT_KEY,
    IN_BUCKET_STORAGE,
    ORPHANED_OBJECT,
    FileChunk,
    FileObjectDeletion,
    Key,
    Space,
    SpaceMember,
    StoredFile,
    UserProfile,
    object_name,
    utcnow,
)
from tenant_worker.storage._store import Store

Conn = AsyncConnection | AsyncSession

SPACES = Space.__table__
MEMBERS = SpaceMember.__table__
#: What a space id looks like; anything else is a space that does not exist.
SPACE_ID = re.compile(r"^[0-9a-f]{32}$")
#: Authorship of an erased user kept under ``spaces.erasure: pseudonymise``.
PSEUDONYM_PREFIX = "~"
FORMER_MEMBER = "a former member"
#: The author of a change the purge made (an object past its retention or TTL).
EXPIRY_AUTHOR = "~expired"
#: What a pseudonym shows of itself: the prefix and 12 hex digits.
PSEUDONYM_SHOWN = 13
#: A member's handle: this prefix, then the first hex digits of an HMAC-SHA256 of
#: ``HANDLE_CONTEXT`` + the user id under the database key.
HANDLE_PREFIX = "m-"
HANDLE_CONTEXT = b"member\x00"
HANDLE_HEX = 16
_HMAC_BLOCK = 64


def no_such_space(space: str) -> NotFound:
    """The one answer for a space that does not exist and for one the caller is not in."""
    return NotFound(f"space {space} does not exist, or the user is not a member of it")


@dataclass(frozen=True)
class SpaceRow:
    id: str
    name: str
    kind: str
    owner: str
    seq: int
    objects: int
    bytes: int
    created_at: datetime


_COLUMNS = (
    SPACES.c.id,
    SPACES.c.name,
    SPACES.c.kind,
    SPACES.c.owner,
    SPACES.c.seq,
    SPACES.c.objects,
    SPACES.c.bytes,
    SPACES.c.created_at,
)


async def role_in(conn: Conn, space: str, user: str, *, lock: bool) -> tuple[SpaceRow, Role]:
    """The space and the caller's role in it, or NotFound; ``lock`` takes both rows for update.

    Locking the space row serialises every write in the space: its changes are
    numbered in the order they commit, and a membership change waits for (or
    is waited on by) a write.
    """
    if not SPACE_ID.match(space):
        raise no_such_space(space)
    stmt = (
        select(*_COLUMNS, MEMBERS.c.role)
        .join(MEMBERS, and_(MEMBERS.c.space_id == SPACES.c.id, MEMBERS.c.user_id == user))
        .where(SPACES.c.id == space)
    )
    if lock:
        stmt = stmt.with_for_update()
    row = (await conn.execute(stmt)).one_or_none()
    if row is None:
        raise no_such_space(space)
    return SpaceRow(*row[:-1]), Role(row.role)


async def is_member(conn: Conn, space: str, user: str) -> bool:
    if not SPACE_ID.match(space):
        return False
    found = await conn.execute(
        select(MEMBERS.c.role).where(MEMBERS.c.space_id == space, MEMBERS.c.user_id == user)
    )
    return found.one_or_none() is not None


class Handles:
    """Stable pseudonyms of members (``m-`` + HMAC of the user id under the database's key)."""

    def __init__(self) -> None:
        self._key: bytes | None = None

    async def key(self, conn: Conn) -> bytes:
        if self._key is None:
            found = (
                await conn.execute(select(Key.secret).where(Key.name == AUDIT_KEY))
            ).scalar_one_or_none()
            if found is None:
                raise RuntimeError("the database key is missing: run `stowage worker migrate`")
            self._key = bytes(found)
        return self._key

    @staticmethod
    def of(key: bytes, user_id: str) -> str:
        digest = hmac.new(key, HANDLE_CONTEXT + user_id.encode(), hashlib.sha256).hexdigest()
        return HANDLE_PREFIX + digest[:HANDLE_HEX]

    @staticmethod
    @functools.lru_cache(maxsize=4)  # one database key per worker: worked out once
    def pads(key: bytes) -> tuple[bytes, bytes]:
        """HMAC-SHA256's padded inner and outer keys (RFC 2104), for a statement that
        computes ``of`` itself: sha256(outer || sha256(inner || message))."""
        if len(key) > _HMAC_BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_HMAC_BLOCK, b"\x00")
        return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)

    @classmethod
    def author(cls, key: bytes, user_id: str, name: str | None) -> Author:
        """``user_id`` as other members see it: ``name`` (the tenant's display name, when
        it names one), else the handle; an erased author's pseudonym; the purge."""
        if user_id == EXPIRY_AUTHOR:
            return Author(user_id, "expiry (retention or TTL)")
        if user_id.startswith(PSEUDONYM_PREFIX):
            return Author(user_id[:PSEUDONYM_SHOWN], FORMER_MEMBER)
        handle = cls.of(key, user_id)
        return Author(handle, name or handle)

    async def authors(self, conn: Conn, store: Store, user_ids: Iterable[str]) -> dict[str, Author]:
        """Each id as other members see it: the tenant's display name, else the handle."""
        ids = {u for u in user_ids if not u.startswith(PSEUDONYM_PREFIX)}
        key = await self.key(conn)
        names: dict[str, str] = {}
        if ids and store.policy().spec.identity.name_claim is not None:
            rows = await conn.execute(
                select(UserProfile.user_id, UserProfile.display_name).where(
                    UserProfile.user_id.in_(sorted(ids)), UserProfile.display_name.is_not(None)
                )
            )
            names = {r.user_id: r.display_name for r in rows}
        return {u: self.author(key, u, names.get(u)) for u in set(user_ids)}

    async def members(
        self, conn: Conn, store: Store, space: str, caller: str | None
    ) -> list[MemberRecord]:
        rows = (
            await conn.execute(
                select(MEMBERS.c.user_id, MEMBERS.c.role, MEMBERS.c.joined_at)
                .where(MEMBERS.c.space_id == space)
                .order_by(MEMBERS.c.joined_at, MEMBERS.c.user_id)
            )
        ).all()
        authors = await self.authors(conn, store, [r.user_id for r in rows])
        return [
            MemberRecord(
                member=authors[r.user_id].member,
                name=authors[r.user_id].name,
                role=r.role,
                joined_at=r.joined_at,
                you=r.user_id == caller,
            )
            for r in rows
        ]

    async def user_of(self, conn: Conn, space: str, handle: str) -> tuple[str, Role] | None:
        """The member of ``space`` whose handle is ``handle`` (spaces are small: compare all)."""
        key = await self.key(conn)
        rows = await conn.execute(
            select(MEMBERS.c.user_id, MEMBERS.c.role).where(MEMBERS.c.space_id == space)
        )
        for r in rows:
            if hmac.compare_digest(self.of(key, r.user_id), handle):
                return str(r.user_id), Role(r.role)
        return None


async def member_counts(conn: Conn, spaces: list[str]) -> dict[str, int]:
    if not spaces:
        return {}
    rows = await conn.execute(
        select(MEMBERS.c.space_id, func.count())
        .where(MEMBERS.c.space_id.in_(spaces))
        .group_by(MEMBERS.c.space_id)
    )
    return {r[0]: int(r[1]) for r in rows}


def space_record(row: Any, role: str, members: int) -> SpaceRecord:
    return SpaceRecord(
        id=row.id,
        name=row.name,
        kind=row.kind,
        role=role,
        objects=int(row.objects),
        bytes=int(row.bytes),
        created_at=row.created_at,
        members=members,
        last_change=int(row.seq),
    )


async def hand_over(conn: Conn, store: Store, space: SpaceRow, leaving: str) -> str | None:
    """After ``leaving`` left: an owner remains (the earliest member is promoted if none),
    the space's size moves to the remaining owner's quota, or the space goes when empty,
    with its objects and its files.

    Returns the new quota owner, or None when the space was deleted.
    """
    rows = (
        await conn.execute(
            select(MEMBERS.c.user_id, MEMBERS.c.role)
            .where(MEMBERS.c.space_id == space.id, MEMBERS.c.user_id != leaving)
            .order_by(MEMBERS.c.joined_at, MEMBERS.c.user_id)
        )
    ).all()
    if not rows:
        await drop_files(conn, StoredFile.space_id == space.id)
        await conn.execute(delete(Space).where(Space.id == space.id))
        await store.charge(conn, -space.objects, -space.bytes, owner=space.owner, enforce=False)
        return None
    owners = [r.user_id for r in rows if r.role == Role.OWNER]
    if not owners:
        owners = [rows[0].user_id]
        await conn.execute(
            update(SpaceMember)
            .where(SpaceMember.space_id == space.id, SpaceMember.user_id == owners[0])
            .values(role=Role.OWNER.value)
        )
    if space.owner == leaving or space.owner not in {r.user_id for r in rows}:
        await move_quota(conn, store, space, owners[0])
        return str(owners[0])
    return space.owner


async def drop_files(conn: Conn, which: ColumnElement[bool]) -> list[Any]:
    """Delete the files ``which`` selects (of a space that goes, or an erased author's),
    with their chunks; their objects in the Region's bucket are noted for deletion in
    this transaction (the files service deletes them once it commits). Returns each
    one's ``space_id`` and ``size_bytes``; the caller moves the totals."""
    in_bucket = (
        await conn.execute(
            select(StoredFile.content).where(
                which,
                StoredFile.storage == IN_BUCKET_STORAGE,
                StoredFile.content.is_not(None),
            )
        )
    ).scalars()
    keys = [object_name(str(c)) for c in in_bucket]
    if keys:
        now = utcnow()
        await conn.execute(
            insert(FileObjectDeletion),
            [{"key": k, "due_at": now, "reason": ORPHANED_OBJECT} for k in keys],
        )
    files = select(StoredFile.id).where(which)
    await conn.execute(delete(FileChunk).where(FileChunk.file_id.in_(files)))
    gone = await conn.execute(
        delete(StoredFile).where(which).returning(StoredFile.space_id, StoredFile.size_bytes)
    )
    return list(gone.all())


async def move_quota(conn: Conn, store: Store, space: SpaceRow, to: str) -> None:
    """The space now counts against ``to``'s per-user quota instead of its owner's."""
    await conn.execute(update(Space).where(Space.id == space.id).values(owner=to))
    await store.charge(conn, -space.objects, -space.bytes, owner=space.owner, enforce=False)
    await store.charge(conn, space.objects, space.bytes, owner=to, enforce=False)
