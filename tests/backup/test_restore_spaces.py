"""After a restore, an erasure is replayed in shared spaces as it was done: its recorded policy.

The erasure's audit row records what it did to the user's shared content
(``space_erasure``); the backup reads it with each erasure and the restore
replays that policy, whatever the worker's policy file says (the restore has
none). An erasure with no recorded policy replays as ``delete``. The files
members put in the space follow the same policy as their objects.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import grpc
import pytest

from stowage.v1 import worker_pb2 as pb
from stowage_testing.worker import running_worker
from tenant_backup._types import Erasure, Manifest
from tests.backup.conftest import BackupCli, TenantDatabase, rows
from tests.spaces.conftest import Member, policy

pytestmark = pytest.mark.postgres


FILES = {"maxFileBytes": "1Mi"}


def _space_file(member: Member, space: str, data: bytes) -> str:
    """A file of ``data`` that ``member`` puts in ``space``, through CreateFile and UploadFile."""
    created = member.call(
        "CreateFile",
        pb.CreateFileRequest(
            name=f"{member.subject}.txt", content_type="text/plain", size=len(data), space=space
        ),
    )

    def body() -> Iterator[pb.UploadFileMessage]:
        yield pb.UploadFileMessage(header=pb.UploadFileHeader(id=created.id, size=len(data)))
        yield pb.UploadFileMessage(data=data)

    md = [("x-stowage-tenant", "acme"), ("x-stowage-user-id", member.user_id)]
    done = member.stub.UploadFile(body(), metadata=md, timeout=30)
    assert done.version == 1 and done.space == space
    return str(created.id)


def _space_files(tenant_db: TenantDatabase) -> dict[str, tuple[str, int]]:
    """Each space file by name: its creator, and the chunks the database holds of it."""
    with tenant_db.admin() as conn:
        found = rows(
            conn,
            "SELECT f.name, f.created_by, count(c.seq) FROM files f LEFT JOIN file_chunks c "
            "ON c.content = f.content WHERE f.space_id IS NOT NULL GROUP BY f.name, f.created_by",
        )
    return {str(r[0]): (str(r[1]), int(r[2])) for r in found}


def _shared_rows(tenant_db: TenantDatabase) -> list[tuple[str, str, str]]:
    with tenant_db.admin() as conn:
        return [
            (str(r[0]), str(r[1]), str(r[2]))
            for r in rows(
                conn,
                "SELECT object_id, created_by, updated_by FROM space_objects ORDER BY object_id",
            )
        ]


def test_a_restore_replays_each_erasure_in_spaces_with_the_policy_it_recorded(
    backup: BackupCli, tenant_db: TenantDatabase, tmp_path: Path
) -> None:
    """Bob is erased under ``delete``, then the tenant turns to ``pseudonymise`` and Carol
    and Dave are erased; Dave's erasure records no policy (as before spaces existed)."""
    worker = partial(running_worker, tenant_db.url, migrate=False)
    with (
        worker(tmp_path / "w1", policy(spaces={"erasure": "delete"}, files=FILES)) as w,
        grpc.insecure_channel(w.address) as channel,
    ):
        alice, bob, carol, dave = (
            Member(channel, who, who.title()) for who in ("alice", "bob", "carol", "dave")
        )
        space = alice.create("Family")
        for other in (bob, carol, dave):
            alice.invite(space, other)
        for member in (alice, bob, carol, dave):
            member.put(space, f"{member.subject}s", {"items": [f"{member.subject}'s"]})
            _space_file(member, space, member.subject.encode())
        taken = backup("run").result
        assert taken
        bob.call("EraseUserData", pb.EraseUserDataRequest(confirm=True))
    with (
        worker(tmp_path / "w2", policy(spaces={"erasure": "pseudonymise"}, files=FILES)) as w,
        grpc.insecure_channel(w.address) as channel,
    ):
        for who in ("carol", "dave"):
            Member(channel, who).call("EraseUserData", pb.EraseUserDataRequest(confirm=True))
    with tenant_db.admin() as conn:
        recorded = "SELECT user_id, detail ->> 'space_erasure' FROM audit_events "
        assert dict(rows(conn, recorded + "WHERE action = 'user.erase'")) == {
            bob.user_id: "delete",
            carol.user_id: "pseudonymise",
            dave.user_id: "pseudonymise",
        }
        conn.execute(
            "UPDATE audit_events SET detail = detail - 'space_erasure' "
            "WHERE action = 'user.erase' AND user_id = %s",
            (dave.user_id,),
        )

    restored = backup("restore", "--backup", taken["backup"])
    assert restored.code == 0, restored.out + restored.err
    assert (
        "in shared spaces, as each erasure recorded: 1 delete, 1 delete (none recorded), "
        "1 pseudonymise"
    ) in restored.lines

    # Bob's and Dave's objects are gone; Carol's stays, its authorship pseudonymised.
    after = _shared_rows(tenant_db)
    assert [r[0] for r in after] == ["alices", "carols"]
    assert after[0][1:] == (alice.user_id, alice.user_id)
    assert after[1][1] == after[1][2] and after[1][1].startswith("~")
    # So do their files: Bob's and Dave's gone with every chunk, Carol's kept as hers was.
    files = _space_files(tenant_db)
    assert sorted(files) == ["alice.txt", "carol.txt"]
    assert files["alice.txt"] == (alice.user_id, 1)
    assert files["carol.txt"][0].startswith("~") and files["carol.txt"][1] == 1
    with tenant_db.admin() as conn:
        for gone in (bob, carol, dave):
            assert rows(conn, "SELECT id FROM users WHERE id = %s", gone.user_id) == []
            for table, column in (
                ("space_members", "user_id"),
                ("space_changes", "author"),
                ("space_objects", "created_by"),
                ("space_objects", "updated_by"),
            ):
                assert rows(conn, f"SELECT 1 FROM {table} WHERE {column} = %s", gone.user_id) == []
        # The replay records what it did, so a later restore replays the same again.
        replays = rows(
            conn,
            "SELECT user_id, detail ->> 'space_erasure' FROM audit_events "
            "WHERE action = 'user.erase' AND correlation_id = %s",
            f"restore-{taken['backup']}",
        )
        assert dict(replays) == {
            bob.user_id: "delete",
            carol.user_id: "pseudonymise",
            dave.user_id: "delete",
        }


def test_a_manifest_written_before_erasures_recorded_their_policy_still_reads() -> None:
    old = Manifest(
        id="b1",
        time=datetime(2026, 1, 1, tzinfo=UTC),
        database="tenant",
        file="b1.dump",
        size=1,
        sha256="0" * 64,
        revision="0004",
        tables={"objects": 1},
        erasures=(Erasure("a" * 32, datetime(2025, 12, 1, tzinfo=UTC)),),
    ).to_json()
    assert "space_erasure" not in old
    assert Manifest.from_json(old).erasures[0].space_erasure is None
    new = Manifest.from_json(old.replace('"user_id"', '"space_erasure": "pseudonymise", "user_id"'))
    assert new.erasures[0].space_erasure == "pseudonymise"
    assert Manifest.from_json(new.to_json()) == new
