"""Files through backups: a restore replays a file erasure (the files and every chunk of
their bytes go again), and the drill reads every file back and checks its sha256.

Files are uploaded through a real worker's ``UploadFile`` stream; the database is
read and, for the drill that must fail, damaged directly.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import grpc
import pytest

from stowage.v1 import worker_pb2 as pb
from stowage_testing.worker import running_worker
from tests.backup.conftest import BackupCli, TenantDatabase, User, rows

pytestmark = pytest.mark.postgres

POLICY = {"files": {"maxFileBytes": "4Mi"}}
#: The worker's chunk size is 256 KiB: this file is three chunks, the last one short.
SIZE = 600_000


def upload(user: User, data: bytes, name: str) -> str:
    """files_create_upload and the PUT, as the gateway does them over gRPC; the file's id."""
    created = user.stub.CreateFile(
        pb.CreateFileRequest(name=name, content_type="application/octet-stream", size=len(data)),
        metadata=user.metadata(),
        timeout=15,
    )

    def body() -> Iterator[pb.UploadFileMessage]:
        header = pb.UploadFileHeader(
            id=created.id, size=len(data), sha256=hashlib.sha256(data).hexdigest()
        )
        yield pb.UploadFileMessage(header=header)
        for at in range(0, len(data), 64 * 1024):
            yield pb.UploadFileMessage(data=data[at : at + 64 * 1024])

    done = user.stub.UploadFile(body(), metadata=user.metadata(), timeout=30)
    assert done.version == 1 and done.size_bytes == len(data)
    return str(created.id)


def file_rows(tenant_db: TenantDatabase) -> dict[str, int]:
    """Each file's id and the chunks the database holds of it."""
    with tenant_db.admin() as conn:
        found = rows(
            conn,
            "SELECT f.id, count(c.seq) FROM files f LEFT JOIN file_chunks c "
            "ON c.content = f.content GROUP BY f.id",
        )
        assert rows(conn, "SELECT count(*) FROM file_chunks c WHERE NOT EXISTS "
                    "(SELECT 1 FROM files f WHERE f.content = c.content)") == [(0,)]  # fmt: skip
    return {str(r[0]): int(r[1]) for r in found}


def test_a_restore_erases_again_the_files_of_a_user_erased_after_the_backup(
    backup: BackupCli, tenant_db: TenantDatabase, tmp_path: Path
) -> None:
    worker = partial(running_worker, tenant_db.url, migrate=False)
    with (
        worker(tmp_path / "w", POLICY) as w,
        grpc.insecure_channel(w.address) as channel,
    ):
        alice, bob = User(channel, "alice"), User(channel, "bob")
        alices = upload(alice, os.urandom(SIZE), "alice.bin")
        bobs = upload(bob, os.urandom(SIZE), "bob.bin")
        assert file_rows(tenant_db) == {alices: 3, bobs: 3}
        taken = backup("run").result
        assert taken
        alice.erase()
        assert file_rows(tenant_db) == {bobs: 3}
    drill = backup("drill")
    assert drill.code == 0, drill.out + drill.err
    assert (
        f"file checksums ok: 2 files, {2 * SIZE} bytes; every file's bytes hash to its "
        "recorded sha256"
    ) in drill.lines

    restored = backup("restore", "--backup", taken["backup"])
    assert restored.code == 0, restored.out + restored.err
    assert restored.lines[-2] == (
        "erased again 1 user(s) whose data the backup still held (0 objects, 1 files); "
        "0 were not in it"
    )
    # The backup held Alice's file and its bytes; the replay took both again.
    assert file_rows(tenant_db) == {bobs: 3}
    with tenant_db.admin() as conn:
        assert rows(conn, "SELECT 1 FROM files WHERE owner = %s", alice.id) == []
        [(total,)] = rows(conn, "SELECT sum(length(data)) FROM file_chunks")
    assert total == SIZE


def test_the_drill_fails_on_a_file_whose_chunks_do_not_hash_to_its_sha256_and_names_it(
    backup: BackupCli, tenant_db: TenantDatabase, tmp_path: Path
) -> None:
    with (
        running_worker(tenant_db.url, tmp_path / "w", POLICY, migrate=False) as w,
        grpc.insecure_channel(w.address) as channel,
    ):
        carol = User(channel, "carol")
        for i, size in enumerate((SIZE, 10, 256 * 1024)):
            upload(carol, os.urandom(size), f"c{i}.bin")
        # A file created whose bytes never came: nothing to check.
        carol.stub.CreateFile(
            pb.CreateFileRequest(name="later.bin", content_type="text/plain", size=5),
            metadata=carol.metadata(),
            timeout=15,
        )
    # One byte of one chunk changes (the size stays): the drill says which file.
    with tenant_db.admin() as conn:
        [(damaged, recorded)] = rows(conn, "SELECT id, sha256 FROM files WHERE size_bytes = 10")
        conn.execute(
            "UPDATE file_chunks SET data = set_byte(data, 0, (get_byte(data, 0) + 1) %% 256) "
            "WHERE file_id = %s",
            (damaged,),
        )
    taken = backup("run").result
    assert taken
    failed = backup("drill")
    assert failed.code == 1
    assert failed.lines[-1].startswith(
        f"FAILED the restored copy of {taken['backup']} fails its file checksums "
        f"(1 of 3 files wrong): file {damaged} records sha256 {recorded}, its chunks hash to "
    )
    assert failed.result is not None and failed.result["reason"] == "VerificationFailed"
