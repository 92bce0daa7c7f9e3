"""What the files services share: the tenant's files settings, who may act on a file,
rows as records, liveness, the quota checks and charges of a file's bytes.

A file is the user's own (``space_id`` NULL: only its ``owner`` reaches it) or
lives in a shared space: then the caller's membership and role are read in the
caller's transaction (:func:`file_row`), a non-member gets the same NotFound as
for a file that does not exist, and its bytes count against the space's size
and the space owner's quota (:class:`Holder`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from stowage.tenant_spec import Files as FilesSettings
from tenant_worker._errors import InvalidArgument, NotFound
from tenant_worker._records import Author
from tenant_worker.files._values import FILE_ID, PENDING_LIFETIME, FileRecord
from tenant_worker.spaces import SPACE_OWNER, Handles, Role, SpaceRow, require, role_in
from tenant_worker.storage._models import Space, StoredFile
from tenant_worker.storage._store import Store, Totals, quota_refusal

COLUMNS = (
    StoredFile.id,
    StoredFile.owner,
    StoredFile.name,
    StoredFile.declared_type,
    StoredFile.sniffed_type,
    StoredFile.size_bytes,
    StoredFile.sha256,
    StoredFile.version,
    StoredFile.content,
    StoredFile.chunk_bytes,
    StoredFile.created_at,
    StoredFile.updated_at,
    StoredFile.expires_at,
    StoredFile.correlation_id,
    StoredFile.storage,
    StoredFile.space_id,
    StoredFile.created_by,
    StoredFile.updated_by,
)


def settings(store: Store) -> FilesSettings:
    """The tenant's ``spec.files``; NotFound when the tenant stores no files."""
    files = store.policy().spec.files
    if files is None:
        raise NotFound("this app stores no files (its Tenant spec has no files section)")
    return files


def check_file_id(file_id: str) -> None:
    if not FILE_ID.match(file_id):
        raise InvalidArgument("id", "a file id is 32 lower-case hex characters (from files_list)")


def retention(store: Store) -> timedelta | None:
    days = store.policy().spec.retention.default_days
    return timedelta(days=days) if days is not None else None


def expiry(row: Any, kept: timedelta | None) -> datetime | None:
    """When the file stops existing: its TTL, the tenant's retention, or an upload never made."""
    candidates: list[datetime] = [row.expires_at] if row.expires_at is not None else []
    if kept is not None:
        candidates.append(row.updated_at + kept)
    if row.version == 0:
        candidates.append(row.created_at + PENDING_LIFETIME)
    return min(candidates) if candidates else None


def expired_clause(kept: timedelta | None, now: datetime) -> ColumnElement[bool]:
    """Files whose time is up (the SQL twin of :func:`expiry`)."""
    clauses: list[ColumnElement[bool]] = [
        and_(StoredFile.expires_at.is_not(None), StoredFile.expires_at <= now),
        and_(StoredFile.version == 0, StoredFile.created_at <= now - PENDING_LIFETIME),
    ]
    if kept is not None:
        clauses.append(StoredFile.updated_at <= now - kept)
    return or_(*clauses)


def to_record(
    row: Any, kept: timedelta | None, authors: dict[str, Author] | None = None
) -> FileRecord:
    """``row`` as callers see it; a space file's authors from ``authors`` (:func:`records`)."""
    known = authors or {}
    return FileRecord(
        id=row.id,
        name=row.name,
        declared_type=row.declared_type,
        sniffed_type=row.sniffed_type,
        size_bytes=row.size_bytes,
        sha256=row.sha256,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        expires_at=expiry(row, kept),
        correlation_id=row.correlation_id,
        space=row.space_id,
        created_by=known.get(row.created_by) if row.created_by else None,
        updated_by=known.get(row.updated_by) if row.updated_by else None,
    )


async def records(
    conn: AsyncConnection,
    store: Store,
    handles: Handles,
    rows: Sequence[Any],
    kept: timedelta | None,
) -> list[FileRecord]:
    """``rows`` as records, a space file's authors named as its space's members see them."""
    ids = {a for r in rows if r.space_id for a in (r.created_by, r.updated_by) if a}
    authors = await handles.authors(conn, store, ids) if ids else {}
    return [to_record(r, kept, authors) for r in rows]


def missing(file_id: str) -> NotFound:
    """The one answer for a file that does not exist and for one the caller may not see."""
    return NotFound(
        f"no file {file_id} (it was deleted, has expired, or is not yours or in a space of yours)"
    )


@dataclass(frozen=True)
class Holder:
    """Whose quota a file counts against: its owner's, or (a space file) its space's owner's
    and the space's size."""

    owner: str
    space: str | None = None

    @property
    def whose(self) -> str:
        return SPACE_OWNER if self.space else "this user"


@dataclass(frozen=True)
class Access:
    """A file the caller may act on, as read in the caller's transaction."""

    row: Any
    #: The space the file lives in (locked, when asked); None: the caller's own file.
    space: SpaceRow | None = None

    @property
    def holder(self) -> Holder:
        if self.space is None:
            return Holder(self.row.owner)
        return Holder(self.space.owner, self.space.id)


async def file_row(
    conn: AsyncConnection,
    user: str,
    file_id: str,
    now: datetime,
    kept: timedelta | None,
    *,
    needed: Role = Role.VIEWER,
    doing: str = "reading files",
    lock_space: bool = False,
    authored: bool = False,
) -> Access:
    """The live file ``file_id`` if ``user`` may do ``doing`` with it: their own file, or
    one in a space where their role is at least ``needed`` (PermissionDenied naming the
    role when lower). NotFound for a missing or expired file, another user's, and one
    in a space ``user`` is not a member of. ``lock_space`` locks the space's row (and
    the caller's membership) until the transaction ends, as every write in a space does.
    ``authored`` (the user's export, read only) also lets them read a space file they
    created or last uploaded, member or not, as the export of space objects does.
    """
    row = (await conn.execute(select(*COLUMNS).where(StoredFile.id == file_id))).one_or_none()
    if row is None or ((until := expiry(row, kept)) is not None and until <= now):
        raise missing(file_id)
    if row.space_id is None:
        if row.owner != user:
            raise missing(file_id)
        return Access(row)
    if authored and user in (row.created_by, row.updated_by):
        return Access(row)
    try:
        space, role = await role_in(conn, row.space_id, user, lock=lock_space)
    except NotFound:
        raise missing(file_id) from None
    require(role, needed, doing, row.space_id)
    return Access(row, space)


async def space_for_upload(conn: AsyncConnection, user: str, space: str) -> SpaceRow:
    """The space a new file goes into, locked; the caller must be an editor or owner there."""
    found, role = await role_in(conn, space, user, lock=True)
    require(role, Role.EDITOR, "adding files", space)
    return found


async def check_quota(store: Store, conn: AsyncConnection, holder: Holder, growth: int) -> None:
    """Refuse (QuotaExceeded) when the tenant or the holder cannot store ``growth`` more bytes.

    Read afresh at each call, so an upload sees what other writes committed
    while its bytes were arriving.
    """
    if growth <= 0:
        return
    q = store.policy().quotas
    objects, used = await store.totals(conn)
    totals = Totals(objects, used)
    if q.per_user_max_bytes is not None:
        totals = Totals(objects, used, *await store.user_totals(conn, holder.owner))
    refusal = quota_refusal(q, totals, 0, growth, whose=holder.whose)
    if refusal is not None:
        raise refusal


async def charge(
    store: Store,
    conn: AsyncConnection,
    holder: Holder,
    d_objects: int,
    d_bytes: int,
    *,
    enforce: bool = True,
) -> None:
    """Move the tenant's and the holder's totals (and a space's size) by a file's change."""
    await store.charge(
        conn, d_objects, d_bytes, owner=holder.owner, enforce=enforce, whose=holder.whose
    )
    if holder.space is not None and (d_objects or d_bytes):
        await conn.execute(
            update(Space)
            .where(Space.id == holder.space)
            .values(objects=Space.objects + d_objects, bytes=Space.bytes + d_bytes)
        )
