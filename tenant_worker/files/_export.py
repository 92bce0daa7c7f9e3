"""The calling user's files for their export archive: each file's bytes at one version.

The archive holds their own files and the space files they created or last
uploaded (each marked with its space), as the export of space objects does.

A file is never torn: each is read as one download (:meth:`FileTransfers.download`),
so its bytes are those of the version its metadata names, or the stream fails.

- On PostgreSQL the file's row and all its chunks are read in one REPEATABLE
  READ snapshot: a new version or a delete committed meanwhile does not reach
  this reader, which streams the version it began with.
- In the Region's bucket every version is its own object, which never changes;
  it is opened before the file's metadata is sent.
- A file deleted, expired or whose object is gone before its turn is skipped
  (:class:`Skipped`, "deleted"), as is one never uploaded ("awaiting_upload"):
  no bytes, and the archive's manifest leaves it out of its files.
- On SQLite each batch of chunks is read on its own; a file replaced while its
  bytes stream ends the stream with NotFound (never another version's bytes),
  and the archive breaks off without its manifest.

The files are listed a page at a time, each page in its own short read, so no
transaction stays open across the whole export.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass

from tenant_worker._errors import NotFound
from tenant_worker._records import CallContext
from tenant_worker.files._files import Files
from tenant_worker.files._transfer import FileTransfers
from tenant_worker.files._values import DownloadHead, FileRecord

#: Why a file is left out of the archive.
AWAITING_UPLOAD = "awaiting_upload"
DELETED = "deleted"


@dataclass(frozen=True)
class Skipped:
    """A file listed for the export but left out of it, and why."""

    file: FileRecord
    reason: str


class FileExport:
    """The caller's files, oldest first: for each its record then its bytes, or Skipped."""

    def __init__(self, files: Files, transfers: FileTransfers) -> None:
        self.files, self.transfers = files, transfers

    async def stream(self, ctx: CallContext) -> AsyncIterator[FileRecord | bytes | Skipped]:
        """Each file's record (the version whose ``size_bytes`` bytes follow), then them."""
        if self.files.store.policy().spec.files is None:
            return
        cursor = ""
        while True:
            page, cursor = await self.files.exported(ctx, self.files.max_page, cursor)
            for listed in page:
                async for part in self._one(ctx, listed):
                    yield part
            if not cursor:
                return

    async def _one(
        self, ctx: CallContext, listed: FileRecord
    ) -> AsyncIterator[FileRecord | bytes | Skipped]:
        if not listed.ready:
            yield Skipped(listed, AWAITING_UPLOAD)
            return
        async with aclosing(self.transfers.download(ctx, listed.id, for_export=True)) as parts:
            try:
                head = await anext(parts)
            except NotFound:
                yield Skipped(listed, DELETED)
                return
            assert isinstance(head, DownloadHead)
            yield head.file
            async for piece in parts:
                assert isinstance(piece, bytes)
                yield piece
