"""Files: metadata and bytes of a tenant's files, in its own database. No gRPC here.

A file is a row of ``files`` (name, declared and sniffed type, size, sha256,
owner, version, times); its bytes are ``file_chunks`` of fixed size under a
*content* id. Each upload streams into a fresh content inside one transaction
(size limit, quota and sha256 checked as the bytes arrive; any refusal or a
broken stream rolls it all back) and, when it commits, points the file at it
and deletes the previous content's chunks: a reader of one content never sees
another's bytes, and concurrent uploads become consecutive versions.

Layers (``.importlinter``): ``_files`` (metadata, usage, export, purge) |
``_transfer`` (streaming uploads and downloads) | ``_erasure`` (an erasure
step) → ``_rows`` (rows, liveness, quota checks) → ``_values`` | ``_sniff``
(plain values, no I/O).
"""

from tenant_worker.files._erasure import FileErasure
from tenant_worker.files._files import Files
from tenant_worker.files._transfer import FileTransfers
from tenant_worker.files._values import (
    ByteRange,
    DownloadHead,
    FileRecord,
    FilesUsage,
    UploadHeader,
)

__all__ = [
    "ByteRange",
    "DownloadHead",
    "FileErasure",
    "FileRecord",
    "FileTransfers",
    "Files",
    "FilesUsage",
    "UploadHeader",
]
