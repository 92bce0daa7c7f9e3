"""Moving a file's bytes: an upload streamed into chunks in one transaction, a download
streamed out of them. Memory stays flat in the file's size: at most a chunk or a
few are held at once.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tenant_worker._errors import InvalidArgument, NotFound, QuotaExceeded
from tenant_worker._records import CallContext
from tenant_worker.files._rows import (
    check_file_id,
    check_quota,
    owned_row,
    retention,
    settings,
    to_record,
)
from tenant_worker.files._sniff import GENERIC, HEAD_BYTES, sniff
from tenant_worker.files._values import (
    CHUNK_BYTES,
    SHA256,
    ByteRange,
    DownloadHead,
    FileRecord,
    UploadHeader,
)
from tenant_worker.storage._db import translated_errors
from tenant_worker.storage._models import FileChunk, StoredFile, utcnow
from tenant_worker.storage._store import Store, require_user

log = logging.getLogger(__name__)

#: Chunks read per statement on the way out (a megabyte at the default chunk size).
_READ_BATCH = 4


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


class FileTransfers:
    """Uploads into and downloads out of the tenant's database."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def upload(
        self, ctx: CallContext, header: UploadHeader, pieces: AsyncIterator[bytes]
    ) -> FileRecord:
        """Store the bytes of ``pieces`` as the next version of the caller's file.

        One transaction: the size limit and the quotas are checked as the bytes
        arrive, the length and the sha256 at the end; any refusal, and a stream
        that breaks off, keeps nothing.
        """
        owner = require_user(ctx)
        limits = settings(self.store)
        check_file_id(header.file_id)
        if header.sha256 and not SHA256.match(header.sha256):
            raise InvalidArgument("sha256", "64 lower-case hex characters")
        if not 0 <= header.size <= limits.max_file_bytes:
            raise _too_large(header.size, limits.max_file_bytes)
        kept = retention(self.store)
        async with self.store.core_transaction() as conn:
            before = await owned_row(conn, owner, header.file_id, utcnow(), kept)
            content = uuid.uuid4().hex
            chunks = _Chunks(conn, header.file_id, content)
            digest, head, received = hashlib.sha256(), bytearray(), 0
            async for piece in pieces:
                received += len(piece)
                if received > header.size:
                    raise QuotaExceeded(
                        "files.size",
                        f"the upload sent more than the {header.size} bytes it declared; "
                        "nothing was kept",
                    )
                digest.update(piece)
                if len(head) < HEAD_BYTES:
                    head += piece[: HEAD_BYTES - len(head)]
                if await chunks.add(piece):
                    await check_quota(self.store, conn, owner, received - before.size_bytes)
            if received < header.size:
                raise InvalidArgument(
                    "size",
                    f"the upload ended after {received} of the {header.size} bytes it declared "
                    "(truncated); nothing was kept",
                )
            await chunks.close()
            sha256 = digest.hexdigest()
            if header.sha256 and sha256 != header.sha256:
                raise InvalidArgument(
                    "sha256",
                    f"the bytes have sha256 {sha256}, not the {header.sha256} declared; "
                    "nothing was kept",
                )
            sniffed = sniff(bytes(head))
            if sniffed not in GENERIC and not limits.allows(sniffed):
                raise InvalidArgument(
                    "content",
                    f"the bytes are {sniffed}, which this app does not accept "
                    "(files.allowedContentTypes); nothing was kept",
                )
            row = await self._commit(conn, ctx, owner, header, content, received, sha256, sniffed)
        return to_record(row, kept)

    async def _commit(
        self,
        conn: AsyncConnection,
        ctx: CallContext,
        owner: str,
        header: UploadHeader,
        content: str,
        size: int,
        sha256: str,
        sniffed: str,
    ) -> Any:
        """Point the file at the new content, drop the previous one, count the bytes, audit."""
        current = (
            await conn.execute(
                select(StoredFile.content, StoredFile.size_bytes, StoredFile.version)
                .where(StoredFile.id == header.file_id, StoredFile.owner == owner)
                # NO KEY UPDATE: concurrent uploads hold KEY SHARE on the row (their
                # chunks' foreign key); a plain FOR UPDATE would deadlock with them.
                .with_for_update(key_share=True)
            )
        ).one_or_none()
        if current is None:
            raise NotFound(f"file {header.file_id} was deleted during the upload; nothing was kept")
        if current.content is not None:
            await conn.execute(delete(FileChunk).where(FileChunk.content == current.content))
        version = current.version + 1
        now = utcnow()
        await conn.execute(
            update(StoredFile)
            .where(StoredFile.id == header.file_id)
            .values(
                content=content,
                size_bytes=size,
                sha256=sha256,
                sniffed_type=sniffed,
                version=version,
                chunk_bytes=CHUNK_BYTES,
                updated_at=now,
                correlation_id=ctx.correlation_id,
            )
        )
        await self.store.charge(conn, 0, size - current.size_bytes, owner=owner)
        await self.store.audit_now(
            conn,
            ctx,
            "file.upload",
            object_id=header.file_id,
            version=version,
            detail={"bytes": size},
        )
        return await owned_row(conn, owner, header.file_id, now, retention(self.store))

    async def download(
        self, ctx: CallContext, file_id: str, byte_range: ByteRange | None = None
    ) -> AsyncIterator[DownloadHead | bytes]:
        """The file's head, then (unless the range is unsatisfiable) its bytes in order.

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
                row = await owned_row(conn, owner, file_id, utcnow(), kept)
            record = to_record(row, kept)
            if row.version == 0:
                raise NotFound(f"file {file_id} has no bytes yet: upload them first")
            found = (byte_range or ByteRange()).resolve(row.size_bytes)
            if found is None:
                yield DownloadHead(record, 0, 0, satisfiable=False)
                return
            start, length = found
            yield DownloadHead(record, start, length)
            async for piece in _read(read, row, start, length):
                yield piece

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


def _too_large(size: int, limit: int) -> QuotaExceeded:
    return QuotaExceeded(
        "files.maxFileBytes",
        f"{size} bytes; files may be at most {limit} bytes (files.maxFileBytes)",
    )
