"""Files' bytes as objects of the Region's bucket: an upload cut into parts, and the
objects waiting to be deleted.

An object is deleted in two steps so that neither side can fail alone: the
transaction that orphans it (a delete, a purge, an erasure, a newer version)
also writes its key into ``file_object_deletions``; after it commits, the key
is deleted from the bucket and then from the table. A delete that fails stays
in the table and the next housekeeping pass retries it. An upload writes its
key there too before its bytes stream (due a day later), and removes it when
it commits, so a worker stopped mid-upload leaves nothing behind for long.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tenant_worker.files._bucket import Bucket, BucketUnavailable
from tenant_worker.storage._models import ORPHANED_OBJECT, FileObjectDeletion, utcnow
from tenant_worker.storage._store import Store

log = logging.getLogger(__name__)

#: Why a key waits in ``file_object_deletions``.
UPLOADING = "upload"
ORPHANED = ORPHANED_OBJECT
#: Keys a flush takes at a time.
FLUSH_BATCH = 500


class ObjectWriter:
    """Cuts an upload's bytes into parts and sends each as it fills.

    A file within one part is one PutObject; a larger one a multipart upload.
    At most one part is held in memory.
    """

    def __init__(self, bucket: Bucket, key: str) -> None:
        self.bucket, self.key = bucket, key
        self.part_bytes = bucket.config.part_bytes
        # The pieces of the part being filled: joined once, when it is full, so a part
        # is copied once on its way out and never regrown.
        self.pieces: list[bytes] = []
        self.filled = 0
        self.upload_id: str | None = None
        self.etags: list[str] = []
        self.stored = False

    async def add(self, piece: bytes) -> bool:
        """Take ``piece``; whether a part was sent."""
        sent = False
        while self.filled + len(piece) >= self.part_bytes:
            cut = self.part_bytes - self.filled
            self.pieces.append(piece[:cut])
            piece = piece[cut:]
            await self._send(self._take())
            sent = True
        if piece:
            self.pieces.append(piece)
            self.filled += len(piece)
        return sent

    def _take(self) -> bytes:
        part = b"".join(self.pieces)
        self.pieces.clear()
        self.filled = 0
        return part

    async def _send(self, part: bytes) -> None:
        if self.upload_id is None:
            self.upload_id = await self.bucket.start_multipart(self.key)
        self.etags.append(
            await self.bucket.put_part(self.key, self.upload_id, len(self.etags) + 1, part)
        )

    async def finish(self) -> None:
        """Store what is left: the whole object, or the last part and the multipart's end."""
        if self.upload_id is None:
            await self.bucket.put(self.key, self._take())
        else:
            if self.filled:
                await self._send(self._take())
            await self.bucket.complete_multipart(self.key, self.upload_id, self.etags)
        self.stored = True

    async def discard(self) -> None:
        """Keep nothing: abort the multipart upload, or delete the object once stored."""
        self.pieces.clear()
        if self.stored:
            await self.bucket.delete([self.key])
        elif self.upload_id is not None:
            await self.bucket.abort_multipart(self.key, self.upload_id)


class ObjectDeletions:
    """The keys waiting in ``file_object_deletions``, and the flush that deletes them."""

    def __init__(self, store: Store, bucket: Bucket | None) -> None:
        self.store = store
        self.bucket = bucket

    @staticmethod
    async def queue(
        conn: AsyncConnection, keys: Sequence[str], reason: str, due: datetime | None = None
    ) -> None:
        """Note ``keys`` for deletion from ``due`` on (now by default), in the caller's
        transaction."""
        if keys:
            when = due or utcnow()
            await conn.execute(
                insert(FileObjectDeletion),
                [{"key": k, "due_at": when, "reason": reason} for k in keys],
            )

    @staticmethod
    async def forget(conn: AsyncConnection, keys: Sequence[str]) -> None:
        """Take ``keys`` off the list, in the caller's transaction."""
        if keys:
            await conn.execute(delete(FileObjectDeletion).where(FileObjectDeletion.key.in_(keys)))

    async def flush(self, limit: int = FLUSH_BATCH) -> tuple[int, bool]:
        """Delete up to ``limit`` due objects from the bucket, then their keys from the table;
        (deleted, more are due). Without a bucket, or while it does not answer, nothing
        is deleted and the keys wait for the next pass."""
        if self.bucket is None:
            return 0, False
        async with self.store.core_transaction() as conn:
            rows = (
                await conn.execute(
                    select(FileObjectDeletion.key, FileObjectDeletion.reason)
                    .where(FileObjectDeletion.due_at <= utcnow())
                    .order_by(FileObjectDeletion.due_at)
                    .limit(limit)
                )
            ).all()
        if not rows:
            return 0, False
        try:
            for row in rows:
                if row.reason == UPLOADING:
                    await self.bucket.abort_uploads_of(row.key)
            gone = await self.bucket.delete([row.key for row in rows])
        except BucketUnavailable as e:
            log.warning("objects to delete wait for the object store: %s", e)
            return 0, False
        async with self.store.core_transaction() as conn:
            await self.forget(conn, sorted(gone))
        return len(gone), len(rows) == limit and len(gone) == len(rows)

    async def flush_all(self) -> int:
        """Flush until nothing due is left (or the bucket stops answering); how many went."""
        total, more = 0, True
        while more:
            deleted, more = await self.flush()
            total += deleted
        return total


__all__ = ["ORPHANED", "UPLOADING", "ObjectDeletions", "ObjectWriter"]
