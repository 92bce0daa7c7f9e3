"""Files' bytes in the Region's object store, read back by the restore drill through the
worker's own bucket adapter (``tenant_worker.files.Bucket``). Memory stays flat: each
object is hashed as it streams."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence

from tenant_worker.files import Bucket, BucketUnavailable, ObjectMissing, ObjectStoreConfig


async def _digest(bucket: Bucket, name: str) -> tuple[int, str] | None:
    size = await bucket.size(name)
    if size is None:
        return None
    hasher, got = hashlib.sha256(), 0
    try:
        if size:
            async for piece in await bucket.open(name, 0, size):
                hasher.update(piece)
                got += len(piece)
    except ObjectMissing:
        pass  # gone or cut short while read: the length below tells
    return got, hasher.hexdigest()


async def _digests(
    config: ObjectStoreConfig, names: Sequence[str]
) -> dict[str, tuple[int, str] | None]:
    bucket = Bucket(config)
    try:
        return {name: await _digest(bucket, name) for name in names}
    finally:
        await bucket.close()


def digests(config: ObjectStoreConfig, names: Sequence[str]) -> dict[str, tuple[int, str] | None]:
    """Per object name (``files/<content>``): its (size, sha256), or None when it is gone.

    Raises ``BucketUnavailable`` when the store cannot be reached.
    """
    return asyncio.run(_digests(config, names))


__all__ = ["BucketUnavailable", "digests"]
