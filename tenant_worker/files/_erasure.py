"""What erasing a user does to their own files: every one and all its bytes go, in the
erasure's transaction (an erasure step, ``People(erasure_steps=…)``). Objects in
the Region's bucket are noted for deletion in that transaction; whoever ran the
erasure deletes them once it committed (``Files.delete_objects``).

The files they wrote in shared spaces follow the tenant's ``spaces.erasure``
(``tenant_worker.spaces.SpaceErasure``, the step before this one)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenant_worker._records import CallContext, UserId
from tenant_worker.files._objects import ORPHANED, ObjectDeletions
from tenant_worker.files._values import IN_BUCKET, object_name
from tenant_worker.storage._models import FileChunk, StoredFile
from tenant_worker.storage._store import Store


class FileErasure:
    """Deletes the erased user's files and chunks, and takes their bytes off the tenant's totals."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def __call__(self, s: AsyncSession, ctx: CallContext, user: UserId) -> dict[str, Any]:
        conn = await s.connection()
        own = (StoredFile.owner == user) & StoredFile.space_id.is_(None)
        owned = select(StoredFile.id).where(own)
        in_bucket = (
            await conn.execute(
                select(StoredFile.content).where(
                    own,
                    StoredFile.storage == IN_BUCKET,
                    StoredFile.content.is_not(None),
                )
            )
        ).scalars()
        objects = [object_name(str(content)) for content in in_bucket]
        await ObjectDeletions.queue(conn, objects, ORPHANED)
        chunks = await conn.execute(delete(FileChunk).where(FileChunk.file_id.in_(owned)))
        sizes = (
            (await conn.execute(delete(StoredFile).where(own).returning(StoredFile.size_bytes)))
            .scalars()
            .all()
        )
        # The user's own totals go with the user; the tenant's lose what the files held.
        await self.store.charge(
            conn, -len(sizes), -sum(sizes), owner=user, enforce=False, per_user=False
        )
        return {
            "files_deleted": len(sizes),
            "file_bytes_deleted": sum(sizes),
            "file_chunks_deleted": int(getattr(chunks, "rowcount", 0) or 0),
            "file_objects_deleted": len(objects),
        }
