"""Files as metadata: create (an upload to come), get, list, delete; usage, export, purge.

Deleting a file whose bytes are in the Region's bucket notes its object for
deletion in the same transaction and deletes it once that commits (``_objects``).
"""

from __future__ import annotations

import base64
import logging
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, select, tuple_, update

from stowage.values import MAX_TTL_SECONDS, string_problem
from tenant_worker._errors import InvalidArgument
from tenant_worker._records import CallContext
from tenant_worker.files._objects import ORPHANED, ObjectDeletions
from tenant_worker.files._rows import (
    COLUMNS,
    check_file_id,
    check_quota,
    expired_clause,
    expiry,
    owned_row,
    retention,
    settings,
    to_record,
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
from tenant_worker.storage._models import FileChunk, StoredFile, utcnow
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
    ) -> None:
        self.store = store
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
    ) -> FileRecord:
        """A file the caller will upload ``size`` bytes to (or, with ``file_id``, a new version).

        Nothing is stored of the bytes yet; the file counts as one object from now
        on, and an upload that never comes is purged after a day.
        """
        owner = require_user(ctx)
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
        now, kept = utcnow(), retention(self.store)
        async with self.store.core_transaction() as conn:
            if file_id:
                check_file_id(file_id)
                row = await owned_row(conn, owner, file_id, now, kept)
                await check_quota(self.store, conn, owner, size - row.size_bytes)
                await conn.execute(
                    update(StoredFile)
                    .where(StoredFile.id == file_id)
                    .values(name=name, declared_type=declared, correlation_id=ctx.correlation_id)
                )
            else:
                file_id = uuid.uuid4().hex
                await check_quota(self.store, conn, owner, size)
                await conn.execute(
                    insert(StoredFile).values(
                        id=file_id,
                        owner=owner,
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
                    )
                )
                await self.store.charge(conn, 1, 0, owner=owner)
                await self.store.audit_now(conn, ctx, "file.create", object_id=file_id, version=0)
            row = await owned_row(conn, owner, file_id, now, kept)
        return to_record(row, kept)

    async def get(self, ctx: CallContext, file_id: str) -> FileRecord:
        owner = require_user(ctx)
        settings(self.store)
        check_file_id(file_id)
        kept = retention(self.store)
        async with self.store.core_transaction() as conn:
            row = await owned_row(conn, owner, file_id, utcnow(), kept)
        return to_record(row, kept)

    async def list(
        self, ctx: CallContext, page_size: int = 0, cursor: str = ""
    ) -> tuple[list[FileRecord], str]:
        """The caller's live files, oldest first, one page; and the next page's cursor."""
        owner = require_user(ctx)
        settings(self.store)
        if page_size < 0:
            raise InvalidArgument("page_size", "must not be negative")
        size = min(page_size or self.default_page, self.max_page)
        now, kept = utcnow(), retention(self.store)
        query = (
            select(*COLUMNS)
            .where(StoredFile.owner == owner, ~expired_clause(kept, now))
            .order_by(StoredFile.created_at, StoredFile.id)
            .limit(size + 1)
        )
        if (after := _after(cursor)) is not None:
            query = query.where(tuple_(StoredFile.created_at, StoredFile.id) > after)
        async with self.store.core_transaction() as conn:
            rows = (await conn.execute(query)).all()
        page = [to_record(r, kept) for r in rows[:size]]
        more = len(rows) > size
        return page, _cursor(rows[size - 1].created_at, rows[size - 1].id) if more else ""

    async def delete(self, ctx: CallContext, file_id: str) -> FileRecord:
        """Delete the caller's file and its bytes; returns it as it was."""
        owner = require_user(ctx)
        settings(self.store)
        check_file_id(file_id)
        kept = retention(self.store)
        async with self.store.core_transaction() as conn:
            row = await owned_row(conn, owner, file_id, utcnow(), kept)
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
            await self.store.charge(conn, -1, -locked.size_bytes, owner=owner, enforce=False)
            await self.store.audit_now(
                conn,
                ctx,
                "file.delete",
                object_id=file_id,
                version=row.version,
                detail={"bytes": locked.size_bytes},
            )
        await self.deletions.flush()
        return to_record(row, kept)

    async def usage(self, ctx: CallContext) -> FilesUsage:
        """The caller's files and their bytes (expired ones until the purge removes them)."""
        owner = require_user(ctx)
        limits = self.store.policy().spec.files
        async with self.store.reading() as s:
            count, used = (
                await s.execute(
                    select(func.count(), func.coalesce(func.sum(StoredFile.size_bytes), 0)).where(
                        StoredFile.owner == owner
                    )
                )
            ).one()
        return FilesUsage(int(count), int(used), limits.max_file_bytes if limits else 0)

    async def export(self, ctx: CallContext) -> AsyncIterator[FileRecord]:
        """The caller's live files with their digests, in one consistent read."""
        owner = require_user(ctx)
        if self.store.policy().spec.files is None:
            return
        now, kept = utcnow(), retention(self.store)
        async with self.store.core_transaction() as conn:
            after: tuple[datetime, str] | None = None
            while True:
                query = (
                    select(*COLUMNS)
                    .where(StoredFile.owner == owner)
                    .order_by(StoredFile.created_at, StoredFile.id)
                    .limit(_EXPORT_BATCH)
                )
                if after is not None:
                    query = query.where(tuple_(StoredFile.created_at, StoredFile.id) > after)
                rows = (await conn.execute(query)).all()
                for row in rows:
                    if (until := expiry(row, kept)) is None or until > now:
                        yield to_record(row, kept)
                if len(rows) < _EXPORT_BATCH:
                    break
                after = (rows[-1].created_at, rows[-1].id)

    async def purge_expired(self, ctx: CallContext, limit: int = 50) -> tuple[int, bool]:
        """Delete up to ``limit`` expired files with their bytes; (purged, more remain)."""
        limit = max(1, min(limit, MAX_BATCH))
        kept = retention(self.store)
        async with self.store.core_transaction() as conn:
            rows = (
                await conn.execute(
                    select(
                        StoredFile.id,
                        StoredFile.owner,
                        StoredFile.size_bytes,
                        StoredFile.content,
                        StoredFile.storage,
                    )
                    .where(expired_clause(kept, utcnow()))
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
            freed: Counter[str] = Counter()
            counted: Counter[str] = Counter()
            for r in rows:
                freed[r.owner] += r.size_bytes
                counted[r.owner] += 1
            for owner, n in counted.items():
                await self.store.charge(conn, -n, -freed[owner], owner=owner, enforce=False)
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
