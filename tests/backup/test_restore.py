"""A restore replaces a tenant's data only when told to, and an erased user stays erased."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from stowage_testing.worker import running_worker
from tests.backup.conftest import BackupCli, TenantDatabase, User, rows

pytestmark = pytest.mark.postgres


def test_restore_refuses_a_database_in_use_unless_forced(
    backup: BackupCli, tenant_db: TenantDatabase, tmp_path: Path
) -> None:
    with (
        running_worker(tenant_db.url, tmp_path / "worker", migrate=False) as worker,
        grpc.insecure_channel(worker.address) as channel,
    ):
        alice = User(channel, "alice")
        alice.put("items", "before", {"n": 1})
        taken = backup("run").result
        assert taken
        alice.put("items", "after", {"n": 2})

        refused = backup("restore", "--backup", taken["backup"])
        assert refused.code == 1
        assert refused.lines[-1].startswith(
            f"FAILED {tenant_db.name} is in use by 1 other session(s) ({tenant_db.role}/"
        )
        assert refused.lines[-1].endswith(
            "stop the tenant's worker first (scale its Deployment to 0), or pass --force to "
            "end them"
        )
        assert refused.result and refused.result["reason"] == "DatabaseInUse"
        with tenant_db.admin() as conn:
            assert rows(conn, "SELECT object_id FROM objects ORDER BY 1") == [
                ("after",),
                ("before",),
            ]

        forced = backup("restore", "--backup", taken["backup"], "--force")
        assert forced.code == 0, forced.out
        assert "--force: ended 1 of 1 other sessions" in forced.lines
    with tenant_db.admin() as conn:
        assert rows(conn, "SELECT object_id FROM objects") == [("before",)]


def test_an_erased_user_stays_erased_after_restoring_an_older_backup(
    backup: BackupCli, tenant_db: TenantDatabase, tmp_path: Path
) -> None:
    with (
        running_worker(tenant_db.url, tmp_path / "worker", migrate=False) as worker,
        grpc.insecure_channel(worker.address) as channel,
    ):
        alice, bob = User(channel, "alice"), User(channel, "bob")
        for i in range(3):
            alice.put("items", f"alice-diary-{i}", {"secret": i})
        bob.put("items", "bob-note", {"n": 1})
        taken = backup("run").result
        assert taken
        alice.erase()
    # The worker is stopped, as the runbook says, before the restore.
    restored = backup("restore", "--backup", taken["backup"])
    assert restored.code == 0, restored.out + restored.err
    assert restored.lines[-2] == (
        "erased again 1 user(s) whose data the backup still held (3 objects, 0 files); "
        "0 were not in it"
    )

    with tenant_db.admin() as conn:
        assert rows(conn, "SELECT owner, object_id FROM objects") == [(bob.id, "bob-note")]
        assert rows(conn, "SELECT id FROM users WHERE id = %s", alice.id) == []
        # The replay is audited, and alice's object ids in the audit trail are pseudonyms.
        assert rows(
            conn,
            "SELECT correlation_id FROM audit_events WHERE user_id = %s AND action = 'user.erase'",
            alice.id,
        ) == [(f"restore-{taken['backup']}",)]
        ids = rows(
            conn,
            "SELECT object_id FROM audit_events WHERE user_id = %s AND object_id IS NOT NULL",
            alice.id,
        )
        assert len(ids) == 3 and all(i[0].startswith("~") for i in ids)


def test_an_erasure_known_only_to_a_newer_backup_is_replayed_into_a_new_database(
    backup: BackupCli, tenant_db: TenantDatabase, tmp_path: Path
) -> None:
    """The tenant's database is lost: the erasures since come from newer backups' manifests."""
    with (
        running_worker(tenant_db.url, tmp_path / "worker", migrate=False) as worker,
        grpc.insecure_channel(worker.address) as channel,
    ):
        alice, bob = User(channel, "alice"), User(channel, "bob")
        alice.put("items", "alice-note", {"n": 1})
        bob.put("items", "bob-note", {"n": 1})
        older = backup("run").result
        alice.erase()
        assert backup("run").code == 0
    assert older

    replacement = tenant_db.create_database(f"{tenant_db.name}_new")
    restored = backup("restore", "--backup", older["backup"], url=tenant_db.url_of(replacement))
    assert restored.code == 0, restored.out + restored.err
    assert (
        "1 erasure(s) recorded after the backup (live audit trail: 0 erasures, 1 newer backups) "
        "will be replayed"
    ) in restored.lines
    with tenant_db.admin(replacement) as conn:
        assert rows(conn, "SELECT owner FROM objects") == [(bob.id,)]
