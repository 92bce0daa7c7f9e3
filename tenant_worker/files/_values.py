"""What the files services take and return: plain values, no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tenant_worker._records import Author
from tenant_worker.storage._models import IN_BUCKET_STORAGE
from tenant_worker.storage._models import object_name as object_name
from tenant_worker.storage._store import FILE_ID as FILE_ID

#: Bytes per stored chunk: every chunk of a content is this long but the last.
CHUNK_BYTES = 256 * 2**10
#: A file created for an upload that never came is purged after this long.
PENDING_LIFETIME = timedelta(days=1)
SHA256 = re.compile(r"^[0-9a-f]{64}$")
MAX_NAME_LENGTH = 255
#: The smallest part of a multipart upload S3 accepts (all but the last part).
MIN_PART_BYTES = 5 * 2**20
#: Where a file's bytes are (``files.storage``).
IN_DATABASE = "database"
IN_BUCKET = IN_BUCKET_STORAGE


@dataclass(frozen=True)
class ObjectStoreConfig:
    """A Region's S3-compatible bucket, as one tenant's worker uses it.

    Every object of the tenant is under ``prefix`` (the operator gives each
    tenant its own); the credentials come from a Secret, never the command line.
    """

    endpoint: str
    bucket: str
    #: Key prefix of this tenant's objects, ending in "/".
    prefix: str
    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    region: str = "us-east-1"
    #: Server-side encryption asked for on every object: "" (the bucket's default),
    #: "AES256" or "aws:kms" (with ``sse_kms_key_id``, else the store's default key).
    sse: str = ""
    sse_kms_key_id: str = ""
    #: A PEM bundle to verify the endpoint's TLS certificate with; "": the system's.
    ca_file: str = ""
    #: Address the bucket in the path (``endpoint/bucket/key``), as most
    #: S3-compatible servers want, instead of as a virtual host.
    path_style: bool = True
    #: Bytes per multipart part: the most an upload holds in memory at once.
    part_bytes: int = MIN_PART_BYTES


@dataclass(frozen=True)
class FileRecord:
    """A file as callers see it."""

    id: str
    name: str
    declared_type: str
    #: What the bytes show (None before the first upload).
    sniffed_type: str | None
    size_bytes: int
    sha256: str | None
    #: Uploads so far; 0: created, no bytes yet.
    version: int
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    correlation_id: str
    #: The shared space the file lives in; None: the caller's own file.
    space: str | None = None
    #: In a space: who created it and who uploaded its current version, as the
    #: space's members see them (as on a space's objects).
    created_by: Author | None = None
    updated_by: Author | None = None

    @property
    def ready(self) -> bool:
        return self.version > 0


@dataclass(frozen=True)
class UploadHeader:
    """What an upload stream says before its bytes: which file, how many bytes, which digest."""

    file_id: str
    size: int
    #: Lower-case hex; empty: not checked.
    sha256: str = ""


@dataclass(frozen=True)
class ByteRange:
    """An HTTP byte range: ``start``-``end`` (inclusive, ``end`` None: to the end),
    or the last ``suffix`` bytes."""

    start: int | None = None
    end: int | None = None
    suffix: int | None = None

    def resolve(self, size: int) -> tuple[int, int] | None:
        """(first byte, length) within a file of ``size`` bytes, or None when unsatisfiable."""
        if self.suffix is not None:
            if self.suffix <= 0 or size == 0:
                return None
            return max(0, size - self.suffix), min(self.suffix, size)
        start = self.start or 0
        if start >= size:
            return None
        end = size - 1 if self.end is None else min(self.end, size - 1)
        if end < start:
            return None
        return start, end - start + 1


@dataclass(frozen=True)
class DownloadHead:
    """What a download says before its bytes: the file and the part of it that follows."""

    file: FileRecord
    start: int
    length: int
    #: False: the range asked for lies outside the file; no bytes follow.
    satisfiable: bool = True


@dataclass(frozen=True)
class FilesUsage:
    """One user's files: how many, how many bytes, and the largest a file may be."""

    files: int
    bytes: int
    max_file_bytes: int
