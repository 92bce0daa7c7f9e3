"""Pruning follows the retention, never removes the newest intact backup, and clears leftovers."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.backup.conftest import BackupCli

pytestmark = pytest.mark.postgres


def _age(backup: BackupCli, backup_id: str, days: float) -> None:
    """Move a backup's time into the past, as if it had been taken ``days`` ago."""
    path = backup.directory / f"{backup_id}.json"
    manifest = json.loads(path.read_text())
    manifest["time"] = (datetime.now(UTC) - timedelta(days=days)).isoformat()
    path.write_text(json.dumps(manifest))


def test_a_backup_run_keeps_the_newest_n_backups(backup: BackupCli) -> None:
    ids = []
    for _ in range(4):
        ran = backup("run", "--keep-count", "2")
        assert ran.code == 0, ran.out
        ids.append(ran.result["backup"] if ran.result else "")
    assert [m["id"] for m in backup.manifests()] == [ids[3], ids[2]]
    assert sorted(p.name for p in backup.directory.iterdir()) == sorted(
        [f"{ids[3]}.dump", f"{ids[3]}.json", f"{ids[2]}.dump", f"{ids[2]}.json"]
    )


def test_a_backup_run_keeps_backups_younger_than_d_days_or_within_the_count(
    backup: BackupCli,
) -> None:
    first = backup("run").result
    second = backup("run").result
    assert first and second
    _age(backup, first["backup"], 10)
    _age(backup, second["backup"], 3)

    ran = backup("run", "--keep-days", "7")
    assert ran.code == 0 and ran.result
    assert [m["id"] for m in backup.manifests()] == [ran.result["backup"], second["backup"]]

    _age(backup, second["backup"], 8)
    ran = backup("run", "--keep-days", "7", "--keep-count", "2")
    assert ran.code == 0 and ran.result
    # 8 days old, but the second newest: kept by the count.
    assert len(backup.manifests()) == 2


def test_pruning_never_removes_the_newest_intact_backup(backup: BackupCli) -> None:
    good = backup("run").result
    damaged = backup("run").result
    assert good and damaged
    _age(backup, good["backup"], 30)
    _age(backup, damaged["backup"], 20)
    archive = backup.directory / f"{damaged['backup']}.dump"
    archive.write_bytes(archive.read_bytes()[:100])

    pruned = backup("prune", "--keep-days", "7")
    assert pruned.code == 0, pruned.out
    assert [m["id"] for m in backup.manifests()] == [good["backup"]]
    assert pruned.lines[-2] == (
        f"pruned 1 ({damaged['backup']}); 1 backups kept "
        f"(keep 7 days; newest intact {good['backup']})"
    )


def test_leftovers_of_a_killed_run_are_never_listed_and_pruned_once_stale(
    backup: BackupCli,
) -> None:
    assert backup("run").code == 0
    orphan = backup.directory / "20261101T000000Z-dead.dump"  # renamed, manifest never written
    orphan.write_bytes(b"PGDMP")
    stale = backup.directory / ".20261101T000000Z-beef.dump.partial"
    stale.write_bytes(b"PGDMP")
    old = time.time() - 2 * 86400
    os.utime(stale, (old, old))
    fresh = backup.directory / ".20261123T000000Z-cafe.dump.partial"  # perhaps still running
    fresh.write_bytes(b"PGDMP")

    listed = backup("list")
    assert listed.code == 0
    assert len(listed.lines) == 3  # header, the one backup, OK

    assert backup("prune", "--keep-count", "5").code == 0
    assert not orphan.exists() and not stale.exists()
    assert fresh.exists()
