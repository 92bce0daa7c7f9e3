"""Adapter: the backup directory (a volume in the tenant's region).

A backup is two files, ``<id>.dump`` and ``<id>.json`` (its manifest). Both
are written under hidden ``.partial`` names and renamed only when complete,
the archive first and the manifest last, so a backup is complete exactly when
its manifest exists and names an archive of the recorded size. Nothing else
in the directory is ever taken for a backup.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

from tenant_backup._errors import BackupCorrupt, BackupError, NoBackup, UsageError
from tenant_backup._types import Manifest

log = logging.getLogger(__name__)

PARTIAL = ".partial"
#: Leftovers of a backup that was killed (not one that failed: that cleans up) are
#: removed by a later prune once older than this, so a running backup is never touched.
STALE_PARTIAL = timedelta(days=1)


def new_id(time: datetime) -> str:
    """``20261123T101500Z-3f2a``: sortable by time, unique within a second."""
    return f"{time.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(2)}"


def checksum(path: Path) -> tuple[int, str]:
    """The size and sha256 of a file."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Directory:
    path: Path

    def ensure(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UsageError(f"cannot create the backup directory {self.path}: {e}") from e
        if not os.access(self.path, os.W_OK):
            raise UsageError(f"the backup directory {self.path} is not writable (--dir)")

    def archive(self, manifest: Manifest) -> Path:
        return self.path / manifest.file

    @contextmanager
    def staging(self, backup_id: str) -> Iterator[tuple[IO[bytes], Path]]:
        """A hidden file to dump into; removed unless ``commit`` renamed it."""
        partial = self.path / f".{backup_id}.dump{PARTIAL}"
        try:
            with partial.open("xb") as f:
                yield f, partial
        finally:
            partial.unlink(missing_ok=True)

    def commit(self, manifest: Manifest, partial: Path) -> None:
        """Make the backup visible: archive first, manifest last, each durable."""
        with partial.open("rb") as f:
            os.fsync(f.fileno())
        final = self.path / manifest.file
        os.replace(partial, final)
        manifest_partial = self.path / f".{manifest.id}.json{PARTIAL}"
        try:
            with manifest_partial.open("x", encoding="utf-8") as f:
                f.write(manifest.to_json())
                f.flush()
                os.fsync(f.fileno())
            os.replace(manifest_partial, self.path / f"{manifest.id}.json")
        except BaseException:
            manifest_partial.unlink(missing_ok=True)
            final.unlink(missing_ok=True)
            raise
        _fsync_dir(self.path)

    def backups(self) -> list[Manifest]:
        """Every backup with a readable manifest, newest first, whether or not its archive
        is intact (``verify`` says that): a damaged newest backup must fail a drill, not
        be passed over for an older one."""
        found = []
        for path in self.path.glob("*.json"):
            if path.name.startswith("."):
                continue
            try:
                found.append(Manifest.from_json(path.read_text(encoding="utf-8")))
            except (OSError, ValueError) as e:
                log.warning("ignoring %s: %s", path.name, e)
        return sorted(found, key=lambda m: (m.time, m.id), reverse=True)

    def find(self, backup_id: str | None) -> Manifest:
        """The named backup, or the newest one."""
        backups = self.backups()
        if not backups:
            raise NoBackup(f"no backup in {self.path}")
        if backup_id is None:
            return backups[0]
        for manifest in backups:
            if manifest.id == backup_id:
                return manifest
        raise NoBackup(f"no backup {backup_id!r} in {self.path} (see `stowage backup list`)")

    def remove(self, manifest: Manifest) -> None:
        """Manifest first: a half-removed backup never looks complete."""
        (self.path / f"{manifest.id}.json").unlink(missing_ok=True)
        (self.path / manifest.file).unlink(missing_ok=True)

    def leftovers(self, now: datetime) -> list[Path]:
        """Archives without a manifest, and stale partial files: never a backup."""
        named = {m.file for m in self.backups()}
        found = []
        for path in self.path.iterdir():
            if path.name.endswith(PARTIAL):
                if now.timestamp() - path.stat().st_mtime > STALE_PARTIAL.total_seconds():
                    found.append(path)
            elif path.suffix == ".dump" and path.name not in named:
                found.append(path)
        return sorted(found)


def verify(directory: Directory, manifest: Manifest) -> None:
    """Raise BackupCorrupt unless the archive has the manifest's size and sha256."""
    path = directory.archive(manifest)
    if not path.is_file():
        raise BackupCorrupt(f"{manifest.file} is missing: the backup {manifest.id} is incomplete")
    try:
        size, digest = checksum(path)
    except OSError as e:
        raise BackupError(f"cannot read {path}: {e}") from e
    if size != manifest.size:
        raise BackupCorrupt(
            f"{manifest.file} is {size} bytes, its manifest says {manifest.size}: "
            "the archive is truncated or altered; do not restore it"
        )
    if digest != manifest.sha256:
        raise BackupCorrupt(
            f"{manifest.file} has sha256 {digest[:12]}…, its manifest says "
            f"{manifest.sha256[:12]}…: the archive is corrupt; do not restore it"
        )
