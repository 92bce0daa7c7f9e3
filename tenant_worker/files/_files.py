"""Files as metadata: create (an upload to come), get, list, delete; usage, export, purge.

A file is the caller's own, or lives in a shared space (``space``): then creating
one, or deleting it, needs the editor role there, reading it the viewer role
(``_rows.file_row``), and its bytes count against the space's size and its
owner's quota. Deleting a file whose bytes are in the Region's bucket notes its
object for deletion in the same transaction and deletes it once that commits
(``_objects``).
"""

from __future__ import annotations

import base64
import builtins
import logging
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, func, insert, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from stowage.values import MAX_TTL_SECONDS, string_problem
from tenant_worker._errors import InvalidArgument
from tenant_worker._records import CallContext
from tenant_worker.files._objects import ORPHANED, ObjectDeletions
from tenant_worker.files._rows import (
    COLUMNS,
    Holder,
    charge,
    check_file_id,
    check_quota,
    expired_clause,
    expiry,
    file_row,
    records,
    retention,
    settings,
    space_for_upload,
)
from tenant_worker.files._sniff import media_type
from tenant_worker.files._values import (
    CHUNK_BYTES,
    IN_BUCKET,
    MAX_NAME_LENGTH,
    FileRecord,
    FilesUsage,
    object_name,
)
from tenant_worker.spaces import Handles, Role, role_in
from tenant_worker.storage._models import FileChunk, Space, StoredFile, utcnow
from tenant_worker.storage._store import Store, require_user

log = logging.getLogger(__name__)

_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_EXPORT_BATCH = 200
MAX_BATCH = 1000


def _check_name(name: str) -> None:
    if not name or len(name) > MAX_NAME_LENGTH:
        raise InvalidArgument("name", f"must be 1-{MAX_NAME_LENGTH} characters")
    if (problem := string_problem(name)) is not None:
        raise InvalidArgument("name", problem)
    if _CONTROL.search(name) or "/" in name or "\\" in name:
        raise InvalidArgument("name", "a file name, without control characters, / or \\")


def _cursor(row_created: datetime, file_id: str) -> str:
    raw = f"{row_created.isoformat()}|{file_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _after(cursor: str) -> tuple[datetime, str] | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, file_id = raw.split("|", 1)
        check_file_id(file_id)
        return datetime.fromisoformat(when), file_id
    except (ValueError, InvalidArgument) as e:
        raise InvalidArgument("cursor", "not a cursor from an earlier files_list") from e


class Files:
    """The calling user's files, as metadata (their bytes move in :mod:`._transfer`)."""

    def __init__(
        self,
        store: Store,
        default_page: int = 50,
        max_page: int = 200,
        deletions: ObjectDeletions | None = None,
        handles: Handles | None = None,
    ) -> None:
        self.store = store
        #: Space files' authors as the space's members see them.
        self.handles = handles or Handles()
        self.default_page = default_page
        self.max_page = max_page
        #: The objects of the Region's bucket waiting to be deleted (``_objects``).
        self.deletions = deletions or ObjectDeletions(store, None)

    async def create(
        self,
        ctx: CallContext,
        name: str,
        content_type: str,
        size: int,
        file_id: str = "",
        ttl_seconds: int = 0,
        space: str = "",
    ) -> FileRecord:
        """A file the caller will upload ``size`` bytes to (or, with ``file_id``, a new version).

        With ``space``, a new file lives in that shared space (the caller must be an
        editor or owner there). Nothing is stored of the bytes yet; the file counts
        as one object from now on, and an upload that never comes is purged after a day.
        """
        user = require_user(ctx)
        declared = self._check_new(name, content_type, size, ttl_seconds)
        now, kept = utcnow(), retention(self.store)
        async with self.store.core_transaction() as conn:
            if file_id:
                check_file_id(file_id)
                found = await file_row(
                    conn, user, file_id, now, kept, needed=Role.EDITOR, doing="uploading files"
                )
                if space and found.row.space_id != space:
                    raise InvalidArgument(
                        "space", f"file {file_id} is not in space {space}; leave space out"
                    )
                await check_quota(self.store, conn, found.holder, size - found.row.size_bytes)
                await conn.execute(
                    update(StoredFile)
                    .where(StoredFile.id == file_id)
                    .values(name=name, declared_type=declared, correlation_id=ctx.correlation_id)
                )
            else:
                file_id = uuid.uuid4().hex
                holder = Holder(user)
                if space:
                    holder = Holder((await space_for_upload(conn, user, space)).owner, space)
                await check_quota(self.store, conn, holder, size)
                await conn.execute(
                    insert(StoredFile).values(
                        id=file_id,
                        owner=user,
                        name=name,
                        declared_type=declared,
                        sniffed_type=None,
                        size_bytes=0,
                        sha256=None,
                        version=0,
                        content=None,
                        chunk_bytes=CHUNK_BYTES,
                        created_at=now,
                        updated_at=now,
                        expires_at=now + timedelta(seconds=ttl_seconds) if ttl_seconds else None,
                        correlation_id=ctx.correlation_id,
                        space_id=space or None,
                        created_by=user if space else None,
                        updated_by=user if space else None,
                    )
                )
                await charge(self.store, conn, holder, 1, 0)
                await self.store.audit_now(
                    conn,
                    ctx,
                    "file.create",
                    object_id=file_id,
                    version=0,
                    detail={"space": space} if space else None,
                )
            row = (await file_row(conn, user, file_id, now, kept)).row
            return (await records(conn, self.store, self.handles, [row], kept))[0]

    def _check_new(self, name: str, content_type: str, size: int, ttl_seconds: int) -> str:
        """The declared media type, once the name, type, size and TTL are accepted."""
        limits = settings(self.store)
        _check_name(name)
        declared = media_type(content_type)
        if not _MEDIA_TYPE.match(declared):
            raise InvalidArgument("content_type", "a media type such as image/png")
        if not limits.allows(declared):
            allowed = ", ".join(limits.allowed_content_types)
            raise InvalidArgument(
                "content_type",
                f"{declared} is not accepted here (files.allowedContentTypes: {allowed})",
            )
        if not 0 <= size <= limits.max_file_bytes:
            raise InvalidArgument(
                "size",
                f"{size} bytes; files may be at most {limits.max_file_bytes} bytes "
                "(files.maxFileBytes)",
            )
        if not 0 <= ttl_seconds <= MAX_TTL_SECONDS:
            raise InvalidArgument("ttl_seconds", f"must be between 0 and {MAX_TTL_SECONDS}")
        return declared

    async def get(self, ctx: CallContext, file_id: str) -> FileRecord:
        user = require_user(ctx)
        settings(self.store)
        check_file_id(file_id)
        kept = retention(self.store)
        async with self.store.core_transaction() as conn:
            row = (await file_row(conn, user, file_id, utcnow(), kept)).row
            return (await records(conn, self.store, self.handles, [row], kept))[0]

    async def list(
        self, ctx: CallContext, page_size: int = 0, cursor: str = "", space: str = ""
    ) -> tuple[list[FileRecord], str]:
        """The caller's live files (or, with ``space``, that space's), oldest first, one page;
        and the next page's cursor."""
        user = require_user(ctx)
        settings(self.store)
        if page_size < 0:
            raise InvalidArgument("page_size", "must not be negative")
        size = min(page_size or self.default_page, self.max_page)
        now, kept = utcnow(), retention(self.store)
        whose = (
            StoredFile.space_id == space
            if space
            else and_(StoredFile.owner == user, StoredFile.space_id.is_(None))
        )
        query = (
            select(*COLUMNS)
            .where(whose, ~expired_clause(kept, now))
            .order_by(StoredFile.created_at, StoredFile.id)
            .limit(size + 1)
        )
        if (after := _after(cursor)) is not None:
            query = query.where(tuple_(StoredFile.created_at, StoredFile.id) > after)
        async with self.store.core_transaction() as conn:
            if space:
                await role_in(conn, space, user, lock=False)
            rows = (await conn.execute(query)).all()
            page = await records(conn, self.store, self.handles, rows[:size], kept)
        more = len(rows) > size
        return page, _cursor(rows[size - 1].created_at, rows[size - 1].id) if more else ""

    async def delete(self, ctx: CallContext, file_id: str) -> FileRecord:
        """Delete the file and its bytes (in a space: an editor's or owner's); returns it as
        it was."""
        user = require_user(ctx)
        settings(self.store)
        check_file_id(file_id)
        kept = retention(self.store)
        async with self.store.core_transaction() as conn:
            found = await file_row(
                conn,
                user,
                file_id,
                utcnow(),
                kept,
                needed=Role.EDITOR,
                doing="deleting files",
                lock_space=True,
            )
            record = (await records(conn, self.store, self.handles, [found.row], kept))[0]
            freed = await _drop(conn, file_id)
            await charge(self.store, conn, found.holder, -1, -freed, enforce=False)
            await self.store.audit_now(
                conn,
                ctx,
                "file.delete",
                object_id=file_id,
                version=found.row.version,
                detail={"bytes": freed, **({"space": found.space.id} if found.space else {})},
            )
        await self.deletions.flush()
        return record

    async def usage(self, ctx: CallContext) -> FilesUsage:
        """The caller's own files and their bytes (expired ones until the purge removes them);
        space files count in their space's size."""
        owner = require_user(ctx)
        limits = self.store.policy().spec.files
        async with self.store.reading() as s:
            count, used = (
                await s.execute(
                    select(func.count(), func.coalesce(func.sum(StoredFile.size_bytes), 0)).where(
                        _own(owner)
                    )
                )
            ).one()
        return FilesUsage(int(count), int(used), limits.max_file_bytes if limits else 0)

    async def exported(
        self, ctx: CallContext, page_size: int = 0, cursor: str = ""
    ) -> tuple[builtins.list[FileRecord], str]:
        """One page of what the caller's export holds: their own live files and the space
        files they created or last uploaded (marked with their space), oldest first."""
        user = require_user(ctx)
        size = min(page_size or self.max_page, self.max_page)
        now, kept = utcnow(), retention(self.store)
        query = (
            select(*COLUMNS)
            .where(_exported(user))
            .order_by(StoredFile.created_at, StoredFile.id)
            .limit(size + 1)
        )
        if (after := _after(cursor)) is not None:
            query = query.where(tuple_(StoredFile.created_at, StoredFile.id) > after)
        async with self.store.core_transaction() as conn:
            rows = (await conn.execute(query)).all()
            live = [r for r in rows[:size] if (u := expiry(r, kept)) is None or u > now]
            page = await records(conn, self.store, self.handles, live, kept)
        more = len(rows) > size
        return page, _cursor(rows[size - 1].created_at, rows[size - 1].id) if more else ""

    async def export(self, ctx: CallContext) -> AsyncIterator[FileRecord]:
        """The caller's live files with their digests (and the space files they created or
        last uploaded), in one consistent read."""
        user = require_user(ctx)
        if self.store.policy().spec.files is None:
            return
        now, kept = utcnow(), retention(self.store)
        async with self.store.core_transaction() as conn:
            after: tuple[datetime, str] | None = None
            while True:
                query = (
                    select(*COLUMNS)
                    .where(_exported(user))
                    .order_by(StoredFile.created_at, StoredFile.id)
                    .limit(_EXPORT_BATCH)
                )
                if after is not None:
                    query = query.where(tuple_(StoredFile.created_at, StoredFile.id) > after)
                rows = (await conn.execute(query)).all()
                live = [r for r in rows if (until := expiry(r, kept)) is None or until > now]
                for record in await records(conn, self.store, self.handles, live, kept):
                    yield record
                if len(rows) < _EXPORT_BATCH:
                    break
                after = (rows[-1].created_at, rows[-1].id)

    async def purge_expired(self, ctx: CallContext, limit: int = 50) -> tuple[int, bool]:
        """Delete up to ``limit`` expired files with their bytes; (purged, more remain).

        A space file's bytes leave its space's size and its owner's quota. The spaces are
        locked before the files, in the order every write in a space takes them."""
        limit = max(1, min(limit, MAX_BATCH))
        kept = retention(self.store)
        async with self.store.core_transaction() as conn:
            expired = expired_clause(kept, utcnow())
            in_spaces = (
                select(StoredFile.space_id)
                .where(expired, StoredFile.space_id.is_not(None))
                .limit(limit)
            )
            found = (await conn.execute(in_spaces)).scalars()
            owners = await _space_owners(conn, (s for s in found if s))
            rows = (
                await conn.execute(
                    select(
                        StoredFile.id,
                        StoredFile.owner,
                        StoredFile.space_id,
                        StoredFile.size_bytes,
                        StoredFile.content,
                        StoredFile.storage,
                    )
                    .where(expired)
                    .order_by(StoredFile.space_id, StoredFile.id)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0, False
            ids = [r.id for r in rows]
            objects = [
                object_name(r.content)
                for r in rows
                if r.storage == IN_BUCKET and r.content is not None
            ]
            await ObjectDeletions.queue(conn, objects, ORPHANED)
            await conn.execute(delete(FileChunk).where(FileChunk.file_id.in_(ids)))
            await conn.execute(delete(StoredFile).where(StoredFile.id.in_(ids)))
            # A space whose file expired after the first look is locked now (rare).
            late = (r.space_id for r in rows if r.space_id and r.space_id not in owners)
            owners |= await _space_owners(conn, late)
            holders = {
                r.id: Holder(owners[r.space_id], r.space_id) if r.space_id else Holder(r.owner)
                for r in rows
            }
            freed: Counter[Holder] = Counter()
            counted: Counter[Holder] = Counter()
            for r in rows:
                freed[holders[r.id]] += r.size_bytes
                counted[holders[r.id]] += 1
            for holder, n in counted.items():
                await charge(self.store, conn, holder, -n, -freed[holder], enforce=False)
            await self.store.audit_now(
                conn, ctx, "files.purge", detail={"count": len(rows), "bytes": sum(freed.values())}
            )
        log.info("purged expired files", extra={"purged": len(rows)})
        await self.deletions.flush(max(limit, len(objects)))
        return len(rows), len(rows) == limit

    async def delete_objects(self) -> int:
        """Delete every object of the bucket that is due (bounded batches); how many went.

        What a delete, purge or erasure could not delete at once is retried here,
        on every housekeeping pass; so is an interrupted upload's object.
        """
        return await self.deletions.flush_all()


def _own(user: str) -> ColumnElement[bool]:
    """The user's own files (not those they put in spaces)."""
    return and_(StoredFile.owner == user, StoredFile.space_id.is_(None))


def _exported(user: str) -> ColumnElement[bool]:
    """What the user's export holds: their own files, and the space files they wrote."""
    wrote = or_(StoredFile.created_by == user, StoredFile.updated_by == user)
    return or_(_own(user), and_(StoredFile.space_id.is_not(None), wrote))


async def _drop(conn: AsyncConnection, file_id: str) -> int:
    """Delete a file and its chunks, noting its object in the bucket for deletion; its size."""
    locked = (
        await conn.execute(
            select(StoredFile.size_bytes, StoredFile.content, StoredFile.storage)
            .where(StoredFile.id == file_id)
            .with_for_update()
        )
    ).one()
    if locked.storage == IN_BUCKET and locked.content is not None:
        await ObjectDeletions.queue(conn, [object_name(locked.content)], ORPHANED)
    await conn.execute(delete(FileChunk).where(FileChunk.file_id == file_id))
    await conn.execute(delete(StoredFile).where(StoredFile.id == file_id))
    return int(locked.size_bytes)


async def _space_owners(conn: AsyncConnection, spaces: Iterable[str]) -> dict[str, str]:
    """The owners of ``spaces``, whose rows are locked until the transaction ends."""
    wanted = sorted(set(spaces) - {""})
    if not wanted:
        return {}
    found = await conn.execute(
        select(Space.id, Space.owner)
        .where(Space.id.in_(wanted))
        .order_by(Space.id)
        .with_for_update()
    )
    return {r.id: r.owner for r in found}
