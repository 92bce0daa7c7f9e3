"""A backup is one snapshot, restores to exactly that snapshot, and never lies about itself."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from alembic.script import ScriptDirectory
from psycopg import sql

from stowage_testing.tools import eventually
from stowage_testing.worker import running_worker
from tenant_worker._migrate import alembic_config
from tests.backup.conftest import BackupCli, TenantDatabase, User, rows

pytestmark = pytest.mark.postgres

SEED = 4000


def _seed(tenant_db: TenantDatabase, user_id: str) -> None:
    """Bulk rows of one user, so that the dump takes a while."""
    with tenant_db.admin() as conn:
        conn.execute(
            "INSERT INTO objects (owner, collection, object_id, data, schema_version, version, "
            "size_bytes, created_at, updated_at, expires_at, correlation_id) "
            "SELECT %s, 'items', 'seed-' || i, jsonb_build_object('i', i, 'pad', "
            "repeat('x', 200)), 1, 1, 220, now(), now(), NULL, 'seed' "
            "FROM generate_series(1, %s) AS i",
            (user_id, SEED),
        )


def _assert_restored_exactly(
    tenant_db: TenantDatabase,
    copy: str,
    manifest: dict[str, Any],
    snapshot_objects: int,
    writer: User,
    seeded: User,
) -> None:
    """The restored ``copy`` holds what the manifest counts, as of one instant of the original."""
    with tenant_db.admin(copy) as new, tenant_db.admin() as old:
        for table, count in manifest["tables"].items():
            (found,) = rows(
                new, sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)).as_string(new)
            )
            assert found[0] == count, table
        # Exactly the writer's first N objects, equal to the originals field by field.
        query = (
            "SELECT object_id, data, version, size_bytes, created_at, updated_at, correlation_id "
            "FROM objects WHERE owner = %s ORDER BY object_id"
        )
        copied = rows(new, query, writer.id)
        assert [r[0] for r in copied] == [f"w{i:06d}" for i in range(snapshot_objects)]
        assert copied == rows(old, query, writer.id)[:snapshot_objects]
        assert rows(new, query, seeded.id) == rows(old, query, seeded.id)
        # Every table is from the same instant: the writer's audit rows and the usage
        # totals agree with its objects, as they did inside each write's transaction.
        audit_query = (
            "SELECT id, action, object_id, version, correlation_id FROM audit_events "
            "WHERE user_id = %s AND action LIKE 'object.%%' ORDER BY id"
        )
        copied_audit = rows(new, audit_query, writer.id)
        assert len(copied_audit) == snapshot_objects
        assert copied_audit == rows(old, audit_query, writer.id)[:snapshot_objects]
        (usage,) = rows(new, "SELECT sum(objects) FROM usage")
        assert usage[0] == snapshot_objects  # the seed bypassed the worker's quota charge


def test_a_backup_taken_under_concurrent_writes_restores_to_its_snapshot(
    backup: BackupCli, tenant_db: TenantDatabase, tmp_path: Path
) -> None:
    with (
        running_worker(tenant_db.url, tmp_path / "worker", migrate=False) as worker,
        grpc.insecure_channel(worker.address) as channel,
    ):
        seeded, writer = User(channel, "seeded"), User(channel, "writer")
        _seed(tenant_db, seeded.id)
        done_at: list[float] = []
        stop = threading.Event()

        def write() -> None:
            # One writer, one object per call: a snapshot holds exactly a prefix.
            while not stop.is_set():
                writer.put("items", f"w{len(done_at):06d}", {"n": len(done_at)})
                done_at.append(time.monotonic())

        thread = threading.Thread(target=write)
        thread.start()
        try:
            eventually(lambda: len(done_at) >= 20, timeout=30, what="the writer to start")
            started = time.monotonic()
            ran = backup("run")
            finished = time.monotonic()
            written_before_stop = len(done_at)
        finally:
            stop.set()
            thread.join(timeout=30)
    assert ran.code == 0, ran.out + ran.err
    assert ran.lines[-1].startswith("OK backup ")
    assert [t for t in done_at if started < t < finished], "the writer was blocked"

    (manifest,) = backup.manifests()
    snapshot_objects = manifest["tables"]["objects"] - SEED
    # Writes committed after the snapshot while the backup still held it: not blocked.
    assert 20 <= snapshot_objects < written_before_stop

    drill = backup("drill")
    assert drill.code == 0, drill.out
    assert any(line.startswith(f"verified: revision {_head()}") for line in drill.lines)

    copy = tenant_db.create_database(f"{tenant_db.name}_copy")
    restored = backup("restore", "--backup", manifest["id"], url=tenant_db.url_of(copy))
    assert restored.code == 0, restored.out + restored.err

    _assert_restored_exactly(tenant_db, copy, manifest, snapshot_objects, writer, seeded)


def test_the_drill_catches_a_truncated_backup_and_restore_refuses_it(
    backup: BackupCli, tenant_db: TenantDatabase
) -> None:
    assert backup("run").code == 0
    (manifest,) = backup.manifests()
    archive = backup.directory / manifest["file"]
    archive.write_bytes(archive.read_bytes()[: manifest["size"] // 2])

    drill = backup("drill")
    assert drill.code == 1
    assert drill.lines[-1] == (
        f"FAILED {manifest['file']} is {manifest['size'] // 2} bytes, its manifest says "
        f"{manifest['size']}: the archive is truncated or altered; do not restore it"
    )
    assert drill.result is not None
    assert (drill.result["result"], drill.result["reason"]) == ("Failed", "Corrupt")

    with tenant_db.admin() as conn:
        conn.execute("INSERT INTO keys (name, secret) VALUES ('after-backup', 'x')")
    restore = backup("restore", "--backup", manifest["id"])
    assert restore.code == 1
    assert "truncated or altered; do not restore it" in restore.lines[-1]
    with tenant_db.admin() as conn:
        assert rows(conn, "SELECT name FROM keys WHERE name = 'after-backup'") == [
            ("after-backup",)
        ]


def test_the_drill_catches_a_corrupted_backup_of_the_same_size(backup: BackupCli) -> None:
    assert backup("run").code == 0
    (manifest,) = backup.manifests()
    archive = backup.directory / manifest["file"]
    data = bytearray(archive.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 16] = bytes(b ^ 0xFF for b in data[middle : middle + 16])
    archive.write_bytes(bytes(data))

    drill = backup("drill")
    assert drill.code == 1
    assert drill.lines[-1].startswith(f"FAILED {manifest['file']} has sha256 ")
    assert drill.lines[-1].endswith("the archive is corrupt; do not restore it")


def test_a_restored_copy_that_differs_from_its_manifest_fails_the_drill(
    backup: BackupCli, tenant_db: TenantDatabase
) -> None:
    """The archive is intact, but not what the manifest says it holds (a wrong dump)."""
    assert backup("run").code == 0
    (manifest,) = backup.manifests()
    manifest["tables"]["usage"] += 1
    path = backup.directory / f"{manifest['id']}.json"
    path.write_text(json.dumps(manifest))

    drill = backup("drill")
    assert drill.code == 1
    assert drill.lines[-1] == (
        f"FAILED the restored copy of {manifest['id']} differs from its manifest: "
        f"usage has {manifest['tables']['usage'] - 1} rows, manifest says "
        f"{manifest['tables']['usage']}"
    )
    assert drill.lines[-2] == f"emptied scratch database {tenant_db.scratch}"
    with tenant_db.admin(tenant_db.scratch) as conn:
        assert rows(conn, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'") == []


def test_a_drill_creates_and_drops_its_scratch_database_when_the_role_may(
    backup: BackupCli, tenant_db: TenantDatabase
) -> None:
    with tenant_db.admin("postgres") as conn:
        conn.execute(sql.SQL("ALTER ROLE {} CREATEDB").format(sql.Identifier(tenant_db.role)))
    assert backup("run").code == 0
    scratch = f"{tenant_db.name}_scratch2"
    drill = backup("drill", "--scratch-database", scratch)
    assert drill.code == 0, drill.out
    assert f"created scratch database {scratch}" in drill.lines
    assert f"dropped scratch database {scratch}" in drill.lines
    with tenant_db.admin("postgres") as conn:
        assert rows(conn, "SELECT 1 FROM pg_database WHERE datname = %s", scratch) == []


def test_a_failed_backup_leaves_nothing_that_looks_like_a_backup(
    backup: BackupCli, tenant_db: TenantDatabase
) -> None:
    assert backup("run").code == 0
    (good,) = backup.manifests()
    # A schema the tenant's role may not read: the snapshot's counts (of public) succeed,
    # pg_dump (of everything) fails halfway into the staging file.
    with tenant_db.admin() as conn:
        conn.execute("CREATE SCHEMA not_yours")
        conn.execute("CREATE TABLE not_yours.t (id int)")

    failed = backup("run")
    assert failed.code == 1
    assert failed.lines[-1].startswith(f"FAILED pg_dump of {tenant_db.name} failed: ")
    assert "permission denied" in failed.lines[-1]
    assert failed.result is not None and failed.result["reason"] == "DumpFailed"
    assert sorted(p.name for p in backup.directory.iterdir()) == sorted(
        [good["file"], f"{good['id']}.json"]
    )
    listed = backup("list")
    assert listed.lines[1].startswith(good["id"]) and listed.lines[-1] == (
        f"OK 1 backups in {backup.directory}"
    )


def test_an_archive_that_breaks_off_midway_is_not_restored_halfway(
    backup: BackupCli, tenant_db: TenantDatabase
) -> None:
    """Damaged before it was summed, the archive passes its checksum; the restore reads it in
    one transaction that commits only when pg_restore read it all, so nothing changes."""
    with tenant_db.admin() as conn:
        conn.execute(
            "INSERT INTO keys (name, secret) SELECT 'k' || i, 'x' FROM generate_series(1, 3000) i"
        )
    assert backup("run").code == 0
    (manifest,) = backup.manifests()
    archive = backup.directory / manifest["file"]
    cut = archive.read_bytes()[: manifest["size"] * 3 // 4]
    archive.write_bytes(cut)
    manifest.update(size=len(cut), sha256=hashlib.sha256(cut).hexdigest())
    (backup.directory / f"{manifest['id']}.json").write_text(json.dumps(manifest))
    with tenant_db.admin() as conn:
        conn.execute("INSERT INTO keys (name, secret) VALUES ('after-backup', 'x')")

    restore = backup("restore", "--backup", manifest["id"])
    assert restore.code == 1
    assert restore.lines[-1].startswith(f"FAILED pg_restore could not read {manifest['file']}: ")
    assert restore.lines[-1].endswith(f"{tenant_db.name} was left unchanged")
    with tenant_db.admin() as conn:
        assert rows(conn, "SELECT count(*) FROM keys") == [(3002,)]

    drill = backup("drill")
    assert drill.code == 1
    assert drill.lines[-1].startswith(f"FAILED pg_restore could not read {manifest['file']}: ")


def _head() -> str:
    """The worker's newest migration: what a backup of a migrated database records."""
    head = ScriptDirectory.from_config(alembic_config("")).get_current_head()
    assert head is not None
    return head
