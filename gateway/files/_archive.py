"""A user's export as one tar archive, streamed as the worker streams the files.

The archive holds, in this order:

- ``export.json``: what ``my_data_export`` gives (identities, preferences,
  objects, the files' metadata), without links;
- ``files/<id>/<name>``: each file's bytes, of the version its manifest entry
  names (the worker reads each at one version: ``tenant_worker.files._export``);
- ``manifest.json``, last, so it lists what was streamed: per file its id,
  name, path, content type, size, the sha256 computed here while its bytes
  passed and the sha256 stored with it, its version (and its space, for a file
  of a shared space); and the files left
  out (deleted meanwhile, or never uploaded) with why.

Memory stays flat in the files' sizes: a piece at a time passes through, and
only the manifest's entries are kept. When the worker's stream fails or ends a
file early, the archive breaks off (no end blocks, no manifest) instead of
carrying a torn entry; a client sees an incomplete download.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway._errors import PermanentError
from gateway.files._tar import END, header, member, padding, safe_name
from gateway.forwarding._worker import ExportedFile, ExportPart, SkippedFile

EXPORT_JSON = "export.json"
MANIFEST_JSON = "manifest.json"
#: What the manifest says it is.
FORMAT = "stowage-export-archive/v1"


class ArchiveBroken(PermanentError):
    """The worker's stream did not match what it announced; the archive stops here."""


def file_path(file: dict[str, Any]) -> str:
    return f"files/{file['id']}/{safe_name(file['name'])}"


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True).encode() + b"\n"


@dataclass
class _Entry:
    """The file whose bytes are passing: what it announced and what came so far."""

    file: dict[str, Any]
    path: str
    received: int = 0
    digest: Any = field(default_factory=hashlib.sha256)

    def take(self, piece: bytes) -> None:
        self.received += len(piece)
        if self.received > self.file["size"]:
            raise ArchiveBroken(f"the worker sent more of file {self.file['id']} than its size")
        self.digest.update(piece)

    def finished(self) -> dict[str, Any]:
        if self.received != self.file["size"]:
            raise ArchiveBroken(
                f"the worker ended file {self.file['id']} after {self.received} of "
                f"{self.file['size']} bytes"
            )
        f = self.file
        return {
            "id": f["id"],
            "name": f["name"],
            "path": self.path,
            "content_type": f["content_type"],
            "size": f["size"],
            "sha256": self.digest.hexdigest(),
            "stored_sha256": f["sha256"],
            "version": f["version"],
            "updated_at": f["updated_at"],
            **({"space": f["space"]} if f.get("space") else {}),
        }


async def export_archive(
    exported: dict[str, Any],
    files: AsyncIterator[ExportPart],
    *,
    tenant: str,
    now: datetime,
) -> AsyncIterator[bytes]:
    """The archive's bytes: ``exported`` as export.json, each file of ``files``, the manifest."""
    when = now.timestamp()
    yield member(EXPORT_JSON, _json(exported), when)
    listed: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    entry: _Entry | None = None
    async for part in files:
        if isinstance(part, bytes):
            if entry is None:
                raise ArchiveBroken("the worker sent a file's bytes before the file")
            entry.take(part)
            yield part
            continue
        if entry is not None:
            listed.append(entry.finished())
            yield padding(entry.received)
            entry = None
        if isinstance(part, SkippedFile):
            skipped.append(
                {"id": part.file["id"], "name": part.file["name"], "reason": part.reason}
            )
        elif isinstance(part, ExportedFile):
            entry = _Entry(part.file, file_path(part.file))
            mtime = datetime.fromisoformat(part.file["updated_at"]).timestamp()
            yield header(entry.path, part.file["size"], mtime)
    if entry is not None:
        listed.append(entry.finished())
        yield padding(entry.received)
    manifest = {
        "format": FORMAT,
        "tenant": tenant,
        "user_id": exported.get("user_id"),
        "created_at": now.isoformat(),
        "export": EXPORT_JSON,
        "files": listed,
        "skipped": skipped,
    }
    yield member(MANIFEST_JSON, _json(manifest), when)
    yield END
