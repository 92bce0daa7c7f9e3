"""Moving a file's bytes: an upload streamed into chunks in one transaction, or part by
part into an object of the Region's bucket; a download streamed out of either.
Memory stays flat in the file's size: at most a chunk, a few chunks or one part
are held at once.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from stowage.tenant_spec import Files as FilesSettings
from tenant_worker._errors import InvalidArgument, NotFound, QuotaExceeded
from tenant_worker._records import CallContext
from tenant_worker.files._bucket import Bucket, BucketUnavailable
from tenant_worker.files._objects import ORPHANED, UPLOADING, ObjectDeletions, ObjectWriter
from tenant_worker.files._rows import (
    Access,
    charge,
    check_file_id,
    check_quota,
    file_row,
    records,
    retention,
    settings,
)
from tenant_worker.files._sniff import GENERIC, HEAD_BYTES, sniff
from tenant_worker.files._values import (
    CHUNK_BYTES,
    IN_BUCKET,
    IN_DATABASE,
    PENDING_LIFETIME,
    SHA256,
    ByteRange,
    DownloadHead,
    FileRecord,
    UploadHeader,
    object_name,
)
from tenant_worker.spaces import Handles, Role
from tenant_worker.storage._db import translated_errors
from tenant_worker.storage._models import FileChunk, StoredFile, utcnow
from tenant_worker.storage._store import Store, require_user

log = logging.getLogger(__name__)

#: Chunks read per statement on the way out (a megabyte at the default chunk size).
_READ_BATCH = 4


@dataclass(frozen=True)
class _Content:
    """A version's bytes once stored: where, how many, their digest and sniffed type."""

    content: str
    storage: str
    size: int
    sha256: str
    sniffed: str


class _Chunks:
    """Cuts the arriving bytes into full chunks and inserts each as it fills."""

    def __init__(self, conn: AsyncConnection, file_id: str, content: str) -> None:
        self.conn, self.file_id, self.content = conn, file_id, content
        self.pending = bytearray()
        self.seq = 0

    async def add(self, piece: bytes) -> int:
        """Take ``piece``; returns how many full chunks were written."""
        self.pending += piece
        written = 0
        while len(self.pending) >= CHUNK_BYTES:
            await self._write(bytes(self.pending[:CHUNK_BYTES]))
            del self.pending[:CHUNK_BYTES]
            written += 1
        return written

    async def close(self) -> None:
        if self.pending:
            await self._write(bytes(self.pending))
            self.pending.clear()

    async def _write(self, data: bytes) -> None:
        await self.conn.execute(
            insert(FileChunk).values(
                content=self.content, seq=self.seq, file_id=self.file_id, data=data
            )
        )
        self.seq += 1


class _Received:
    """What an upload has sent so far: its length, digest and first bytes."""

    def __init__(self, header: UploadHeader) -> None:
        self.header = header
        self.digest, self.head, self.size = hashlib.sha256(), bytearray(), 0

    def take(self, piece: bytes) -> None:
        """Count ``piece``; refused (nothing is kept) past the size the upload declared."""
        self.size += len(piece)
        if self.size > self.header.size:
            raise QuotaExceeded(
                "files.size",
                f"the upload sent more than the {self.header.size} bytes it declared; "
                "nothing was kept",
            )
        self.digest.update(piece)
        if len(self.head) < HEAD_BYTES:
            self.head += piece[: HEAD_BYTES - len(self.head)]

    def finish(self, limits: FilesSettings) -> tuple[str, str]:
        """(sha256, sniffed type) of the whole upload, once it is checked complete and accepted."""
        if self.size < self.header.size:
            raise InvalidArgument(
                "size",
                f"the upload ended after {self.size} of the {self.header.size} bytes it "
                "declared (truncated); nothing was kept",
            )
        sha256 = self.digest.hexdigest()
        if self.header.sha256 and sha256 != self.header.sha256:
            raise InvalidArgument(
                "sha256",
                f"the bytes have sha256 {sha256}, not the {self.header.sha256} declared; "
                "nothing was kept",
            )
        sniffed = sniff(bytes(self.head))
        if sniffed not in GENERIC and not limits.allows(sniffed):
            raise InvalidArgument(
                "content",
                f"the bytes are {sniffed}, which this app does not accept "
                "(files.allowedContentTypes); nothing was kept",
            )
        return sha256, sniffed


class FileTransfers:
    """Uploads into and downloads out of the tenant's database, or the Region's bucket.

    With a ``bucket``, new uploads go there; every file is read from where its
    current version was stored (``files.storage``), so files stored before the
    bucket was configured stay readable.
    """

    def __init__(
        self, store: Store, bucket: Bucket | None = None, handles: Handles | None = None
    ) -> None:
        self.store = store
        self.bucket = bucket
        self.deletions = ObjectDeletions(store, bucket)
        self.handles = handles or Handles()

    async def _writable(self, conn: AsyncConnection, user: str, file_id: str) -> Access:
        """The file, if ``user`` may upload to it (theirs, or an editor's in its space)."""
        kept = retention(self.store)
        return await file_row(
            conn, user, file_id, utcnow(), kept, needed=Role.EDITOR, doing="uploading files"
        )

    async def upload(
        self, ctx: CallContext, header: UploadHeader, pieces: AsyncIterator[bytes]
    ) -> FileRecord:
        """Store the bytes of ``pieces`` as the next version of the caller's file (or of a
        space file, by an editor or owner of its space: checked at the start and again,
        with the space locked, when the upload commits).

        The size limit and the quotas are checked as the bytes arrive, the length
        and the sha256 at the end; any refusal, and a stream that breaks off,
        keeps nothing.
        """
        owner = require_user(ctx)
        limits = settings(self.store)
        check_file_id(header.file_id)
        if header.sha256 and not SHA256.match(header.sha256):
            raise InvalidArgument("sha256", "64 lower-case hex characters")
        if not 0 <= header.size <= limits.max_file_bytes:
            raise _too_large(header.size, limits.max_file_bytes)
        if self.bucket is not None:
            return await self._upload_to_bucket(ctx, owner, limits, header, pieces, self.bucket)
        return await self._upload_to_database(ctx, owner, limits, header, pieces)

    async def _upload_to_database(
        self,
        ctx: CallContext,
        owner: str,
        limits: FilesSettings,
        header: UploadHeader,
        pieces: AsyncIterator[bytes],
    ) -> FileRecord:
        """Chunks in one transaction: a refusal or a broken stream rolls them all back."""
        async with self.store.core_transaction() as conn:
            before = await self._writable(conn, owner, header.file_id)
            content = uuid.uuid4().hex
            chunks = _Chunks(conn, header.file_id, content)
            received = _Received(header)
            async for piece in pieces:
                received.take(piece)
                if await chunks.add(piece):
                    growth = received.size - before.row.size_bytes
                    await check_quota(self.store, conn, before.holder, growth)
            sha256, sniffed = received.finish(limits)
            await chunks.close()
            new = _Content(content, IN_DATABASE, received.size, sha256, sniffed)
            record, old = await self._commit(conn, ctx, owner, header, new)
        await self._drop(old)
        return record

    async def _upload_to_bucket(
        self,
        ctx: CallContext,
        owner: str,
        limits: FilesSettings,
        header: UploadHeader,
        pieces: AsyncIterator[bytes],
        bucket: Bucket,
    ) -> FileRecord:
        """An object under a fresh key, streamed part by part with no transaction open; the
        metadata points at it in one short transaction at the end. The key is noted for
        deletion before the first byte (due a day later) and taken off in that last
        transaction, so an upload that fails or is cut off anywhere keeps nothing."""
        content = uuid.uuid4().hex
        key = object_name(content)
        async with self.store.core_transaction() as conn:
            before = await self._writable(conn, owner, header.file_id)
            await ObjectDeletions.queue(conn, [key], UPLOADING, utcnow() + PENDING_LIFETIME)
        writer = ObjectWriter(bucket, key)
        received = _Received(header)
        try:
            async for piece in pieces:
                received.take(piece)
                if await writer.add(piece):
                    async with self.store.core_transaction() as conn:
                        growth = received.size - before.row.size_bytes
                        await check_quota(self.store, conn, before.holder, growth)
            sha256, sniffed = received.finish(limits)
            await writer.finish()
            async with self.store.core_transaction() as conn:
                new = _Content(content, IN_BUCKET, received.size, sha256, sniffed)
                record, old = await self._commit(conn, ctx, owner, header, new)
                await ObjectDeletions.forget(conn, [key])
        except BaseException:
            await self._discard(writer)
            raise
        await self._drop(old)
        return record

    async def _discard(self, writer: ObjectWriter) -> None:
        """Keep nothing of a failed upload; what cannot be undone now, the key's row undoes
        at a later housekeeping pass."""
        try:
            await writer.discard()
        except BucketUnavailable as e:
            log.warning("a failed upload's object waits for a later purge: %s", e)
            return
        async with self.store.core_transaction() as conn:
            await ObjectDeletions.forget(conn, [writer.key])

    async def _drop(self, old: str | None) -> None:
        """Delete a replaced version's object now (else at the next housekeeping pass)."""
        if old is not None:
            await self.deletions.flush()

    async def _commit(
        self,
        conn: AsyncConnection,
        ctx: CallContext,
        owner: str,
        header: UploadHeader,
        new: _Content,
    ) -> tuple[FileRecord, str | None]:
        """Point the file at the new content, drop the previous one, count the bytes, audit.

        The caller's right to upload is read again, a space file's space locked (a
        member removed or made a viewer meanwhile keeps nothing). Returns the file
        and the key of the previous version's object, if it had one (it
        is noted for deletion in this transaction; deleted once it commits).
        """
        kept = retention(self.store)
        try:
            allowed = await file_row(
                conn,
                owner,
                header.file_id,
                utcnow(),
                kept,
                needed=Role.EDITOR,
                doing="uploading files",
                lock_space=True,
            )
        except NotFound as e:
            raise NotFound(
                f"file {header.file_id} was deleted during the upload, or is no longer "
                "yours or in a space of yours; nothing was kept"
            ) from e
        current = (
            await conn.execute(
                select(
                    StoredFile.content,
                    StoredFile.storage,
                    StoredFile.size_bytes,
                    StoredFile.version,
                )
                .where(StoredFile.id == header.file_id)
                # NO KEY UPDATE: concurrent uploads hold KEY SHARE on the row (their
                # chunks' foreign key); a plain FOR UPDATE would deadlock with them.
                .with_for_update(key_share=True)
            )
        ).one_or_none()
        if current is None:
            raise NotFound(f"file {header.file_id} was deleted during the upload; nothing was kept")
        old: str | None = None
        if current.content is not None and current.storage == IN_BUCKET:
            old = object_name(current.content)
            await ObjectDeletions.queue(conn, [old], ORPHANED)
        elif current.content is not None:
            await conn.execute(delete(FileChunk).where(FileChunk.content == current.content))
        version = current.version + 1
        now = utcnow()
        await conn.execute(
            update(StoredFile)
            .where(StoredFile.id == header.file_id)
            .values(
                content=new.content,
                storage=new.storage,
                size_bytes=new.size,
                sha256=new.sha256,
                sniffed_type=new.sniffed,
                version=version,
                chunk_bytes=CHUNK_BYTES,
                updated_at=now,
                correlation_id=ctx.correlation_id,
                **({"updated_by": owner} if allowed.space is not None else {}),
            )
        )
        await charge(self.store, conn, allowed.holder, 0, new.size - current.size_bytes)
        detail: dict[str, Any] = {"bytes": new.size}
        if allowed.space is not None:
            detail["space"] = allowed.space.id
        await self.store.audit_now(
            conn, ctx, "file.upload", object_id=header.file_id, version=version, detail=detail
        )
        row = (await file_row(conn, owner, header.file_id, now, kept)).row
        return (await records(conn, self.store, self.handles, [row], kept))[0], old

    async def download(
        self,
        ctx: CallContext,
        file_id: str,
        byte_range: ByteRange | None = None,
        *,
        for_export: bool = False,
    ) -> AsyncGenerator[DownloadHead | bytes, None]:
        """The file's head, then (unless the range is unsatisfiable) its bytes in order.

        The caller reads their own file, or one in a space where they are a member
        (any role); ``for_export`` also a space file they created or last uploaded.

        On PostgreSQL one REPEATABLE READ transaction: a new version committed
        meanwhile does not reach this reader. On SQLite each batch is read on
        its own (a long read would hold the database's only write lock); a
        content replaced meanwhile ends the stream with NotFound, never with
        another version's bytes.
        """
        owner = require_user(ctx)
        settings(self.store)
        check_file_id(file_id)
        kept = retention(self.store)
        async with self._snapshot() as read:
            async with read() as conn:
                row = (
                    await file_row(conn, owner, file_id, utcnow(), kept, authored=for_export)
                ).row
                record = (await records(conn, self.store, self.handles, [row], kept))[0]
            head = _head(row, record, byte_range)
            if row.storage != IN_BUCKET:
                yield head
                if head.satisfiable:
                    async for piece in _read(read, row, head.start, head.length):
                        yield piece
                return
        # From the bucket, with no transaction open: a version's object never changes,
        # and one deleted meanwhile ends the stream with NotFound.
        if not head.satisfiable:
            yield head
            return
        bucket = self._bucket_of(row)
        pieces = await bucket.open(object_name(row.content), head.start, head.length)
        yield head
        async for piece in pieces:
            yield piece

    def _bucket_of(self, row: Any) -> Bucket:
        if self.bucket is None:
            raise BucketUnavailable(
                f"file {row.id} is stored in the Region's object store, which this worker "
                "is not configured to reach (spec.objectStore of the Region)"
            )
        return self.bucket

    @asynccontextmanager
    async def _snapshot(self) -> AsyncIterator[Any]:
        """A factory of connections to read one download with (see :meth:`download`)."""
        if self.store.is_postgres:
            async with translated_errors(), self.store.engine.connect() as conn:
                snapshot = await conn.execution_options(isolation_level="REPEATABLE READ")
                async with snapshot.begin():

                    @asynccontextmanager
                    async def same() -> AsyncIterator[AsyncConnection]:
                        yield snapshot

                    yield same
            return

        @asynccontextmanager
        async def each() -> AsyncIterator[AsyncConnection]:
            async with self.store.core_transaction() as conn:
                yield conn

        yield each


async def _read(read: Any, row: Any, start: int, length: int) -> AsyncIterator[bytes]:
    """``length`` bytes of ``row``'s content from ``start``, a batch of chunks at a time."""
    chunk = row.chunk_bytes
    first, last = start // chunk, (start + length - 1) // chunk
    skip, left = start - first * chunk, length
    seq = first
    while seq <= last:
        upto = min(seq + _READ_BATCH - 1, last)
        async with read() as conn:
            found = (
                await conn.execute(
                    select(FileChunk.seq, FileChunk.data)
                    .where(
                        FileChunk.content == row.content,
                        FileChunk.seq >= seq,
                        FileChunk.seq <= upto,
                    )
                    .order_by(FileChunk.seq)
                )
            ).all()
        if [r.seq for r in found] != list(range(seq, upto + 1)):
            raise NotFound(f"file {row.id} changed while it was read; download it again")
        for r in found:
            data = bytes(r.data)[skip : skip + left]
            skip = 0
            left -= len(data)
            yield data
        seq = upto + 1


def _head(row: Any, record: FileRecord, byte_range: ByteRange | None) -> DownloadHead:
    """What a download of ``row`` says first: the file and the range that follows."""
    if row.version == 0:
        raise NotFound(f"file {row.id} has no bytes yet: upload them first")
    found = (byte_range or ByteRange()).resolve(row.size_bytes)
    if found is None:
        return DownloadHead(record, 0, 0, satisfiable=False)
    return DownloadHead(record, *found)


def _too_large(size: int, limit: int) -> QuotaExceeded:
    return QuotaExceeded(
        "files.maxFileBytes",
        f"{size} bytes; files may be at most {limit} bytes (files.maxFileBytes)",
    )
