"""The drill reads back the files whose bytes are in the Region's object store: a real
S3-compatible server (moto, started here), a worker storing files there, and
``stowage backup drill`` given the same ``STOWAGE_OBJECT_STORE_*`` variables as the worker
(as its CronJob is). A changed or missing object fails the drill naming the file; one
deleted since the backup, as the live database says, does not."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from stowage.v1 import worker_pb2 as pb
from stowage_testing.s3 import S3Server, s3_server
from stowage_testing.worker import running_worker
from tests.backup.conftest import BackupCli, TenantDatabase, User, rows
from tests.backup.test_restore_files import POLICY, upload

pytestmark = pytest.mark.postgres

PREFIX = "tenants/drill/acme/"


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with s3_server(tmp_path_factory.mktemp("s3")) as server:
        yield server


def test_the_drill_checks_the_objects_of_files_stored_in_the_bucket(
    backup: BackupCli,
    tenant_db: TenantDatabase,
    s3: S3Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bucket = s3.create_bucket()
    env = s3.worker_env(bucket, PREFIX)
    with (
        running_worker(tenant_db.url, tmp_path / "w", POLICY, migrate=False, env=env) as w,
        grpc.insecure_channel(w.address) as channel,
    ):
        dora = User(channel, "dora")
        kept, changed, lost = (upload(dora, os.urandom(n), f"{n}.bin") for n in (600_000, 10, 0))
        deleted = upload(dora, os.urandom(1000), "deleted.bin")
        taken = backup("run").result
        assert taken
        # After the backup: one file deleted (its object with it, as the live database says).
        dora.stub.DeleteFile(pb.GetFileRequest(id=deleted), metadata=dora.metadata(), timeout=15)
    with tenant_db.admin() as conn:
        contents = dict(rows(conn, "SELECT id, content FROM files WHERE storage = 'bucket'"))
        assert rows(conn, "SELECT count(*) FROM file_chunks") == [(0,)]
    assert set(contents) == {kept, changed, lost}
    assert len(s3.keys(bucket, PREFIX)) == 3
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    passed = backup("drill")
    assert passed.code == 0, passed.out + passed.err
    assert (
        "file checksums ok: 3 files, 3 of them in the object store, 600010 bytes; every file's "
        "bytes hash to its recorded sha256; 1 objects deleted since the backup, as in the "
        "live database"
    ) in passed.lines

    # An object changed in the bucket, and one gone that the live database still holds.
    client = s3.client()
    client.put_object(Bucket=bucket, Key=f"{PREFIX}files/{contents[changed]}", Body=b"x" * 10)
    client.delete_object(Bucket=bucket, Key=f"{PREFIX}files/{contents[lost]}")
    failed = backup("drill")
    assert failed.code == 1, failed.out + failed.err
    last = failed.lines[-1]
    assert last.startswith(
        f"FAILED the restored copy of {taken['backup']} fails its file checksums (2 of 3 files "
        "wrong): "
    ), last
    assert f"file {changed} records sha256" in last
    assert f"file {lost}: its object files/{contents[lost]} is not in the object store" in last

    # Without the object store's variables the drill cannot vouch for those files.
    for name in env:
        monkeypatch.delenv(name)
    blind = backup("drill")
    assert blind.code == 1
    assert blind.lines[-1] == (
        "FAILED 4 files of the restored copy are in the Region's object store, which this "
        "drill was not given: set STOWAGE_OBJECT_STORE_* as for the tenant's worker"
    )
