"""Files: metadata and bytes of a tenant's files, in its own database or its Region's
S3-compatible bucket. No gRPC here.

A file is a row of ``files`` (name, declared and sniffed type, size, sha256,
owner, version, times); its bytes are ``file_chunks`` of fixed size under a
*content* id. Each upload streams into a fresh content inside one transaction
(size limit, quota and sha256 checked as the bytes arrive; any refusal or a
broken stream rolls it all back) and, when it commits, points the file at it
and deletes the previous content's chunks: a reader of one content never sees
another's bytes, and concurrent uploads become consecutive versions.

With a bucket (``ObjectStoreConfig``, from the Region's ``spec.objectStore``),
an upload streams instead into one object under the tenant's key prefix, as a
multipart upload one part at a time, and the metadata points at it in one short
transaction at the end; the file's row says where its bytes are
(``files.storage``). Objects a delete, purge, erasure or newer version orphans
are noted in ``file_object_deletions`` in that same transaction and deleted once
it commits, or on a later housekeeping pass (``_objects``).

Layers (``.importlinter``): ``_export`` (each file's bytes at one version,
for the export archive) → ``_files`` (metadata, usage, export, purge) |
``_transfer`` (streaming uploads and downloads) | ``_erasure`` (an erasure
step) | ``_links`` (the files objects name) → ``_objects`` (parts of an
upload, objects to delete) → ``_rows`` (rows, liveness, quota checks) |
``_bucket`` (the S3 adapter) → ``_values`` | ``_sniff`` (plain values, no I/O).
"""

from tenant_worker.files._bucket import Bucket, BucketUnavailable, ObjectMissing
from tenant_worker.files._erasure import FileErasure
from tenant_worker.files._export import FileExport
from tenant_worker.files._export import Skipped as SkippedFile
from tenant_worker.files._files import Files
from tenant_worker.files._links import FileLinks, LinkingObject, Wanted
from tenant_worker.files._objects import ObjectDeletions
from tenant_worker.files._transfer import FileTransfers
from tenant_worker.files._values import (
    ByteRange,
    DownloadHead,
    FileRecord,
    FilesUsage,
    ObjectStoreConfig,
    UploadHeader,
)

__all__ = [
    "Bucket",
    "BucketUnavailable",
    "ByteRange",
    "DownloadHead",
    "FileErasure",
    "FileExport",
    "FileLinks",
    "FileRecord",
    "FileTransfers",
    "Files",
    "FilesUsage",
    "LinkingObject",
    "ObjectDeletions",
    "ObjectMissing",
    "ObjectStoreConfig",
    "SkippedFile",
    "UploadHeader",
    "Wanted",
]
