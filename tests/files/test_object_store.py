"""Files whose bytes live in the Region's S3-compatible bucket: a real S3 server (moto in
server mode, started here on 127.0.0.1), a gateway, and workers configured as the operator
configures them. Every outcome is read back from both sides: the bucket, listed by the
server itself, and the tenant's database."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import grpc
import httpx
import pytest

from stowage.v1 import worker_pb2 as pb
from stowage.v1 import worker_pb2_grpc
from stowage_testing.gateway import (
    Issuer,
)
from stowage_testing.s3 import S3Server, s3_server
from stowage_testing.tools import eventually
from tests.files.conftest import (
    Platform,
    database_url,
    proc_status,
    random_bytes,
    running_files_platform,
    sha256,
)

pytestmark = [pytest.mark.anyio]

MiB = 2**20
#: The smallest part S3 takes; a file past it is a multipart upload.
PART = 5 * MiB
TENANTS: dict[str, dict[str, Any]] = {
    "acme": {"files": {"maxFileBytes": "200Mi"}},
    "tight": {
        "files": {"maxFileBytes": "20Mi"},
        "quotas": {"maxBytes": "1Gi", "perUser": {"maxBytes": "8Mi"}},
    },
    # Its own S3 server, which a test stops in the middle of an upload.
    "outage": {"files": {"maxFileBytes": "30Mi"}},
}


@dataclass
class Stores:
    """The S3 servers and buckets of the tenants, and each tenant's key prefix."""

    servers: dict[str, S3Server]
    buckets: dict[str, str]

    @staticmethod
    def prefix(tenant: str) -> str:
        return f"tenants/files-test/{tenant}/"

    def keys(self, tenant: str) -> list[str]:
        return self.servers[tenant].keys(self.buckets[tenant], self.prefix(tenant))

    def open_uploads(self, tenant: str) -> list[str]:
        return self.servers[tenant].open_uploads(self.buckets[tenant], self.prefix(tenant))

    def read(self, tenant: str, key: str) -> bytes:
        client = self.servers[tenant].client()
        return bytes(client.get_object(Bucket=self.buckets[tenant], Key=key)["Body"].read())


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stores]:
    workdir = tmp_path_factory.mktemp("s3")
    with s3_server(workdir / "shared") as shared, s3_server(workdir / "outage") as own:
        servers = {"acme": shared, "tight": shared, "outage": own}
        buckets = {"acme": shared.create_bucket(), "outage": own.create_bucket()}
        buckets["tight"] = buckets["acme"]
        yield Stores(servers, buckets)


@pytest.fixture(scope="module")
def bucket_platform(
    backend: str,
    issuer: Issuer,
    stores: Stores,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[Platform]:
    """The gateway and a worker per tenant, each storing new files in its bucket."""
    workdir = tmp_path_factory.mktemp(f"bucket-{backend}")
    databases = {name: database_url(backend, workdir, name, request, "objects") for name in TENANTS}
    envs = {
        name: stores.servers[name].worker_env(
            stores.buckets[name],
            Stores.prefix(name),
            STOWAGE_OBJECT_STORE_PART_BYTES=str(PART),
            # Purges run when a test asks for one, not on a timer of their own.
            STOWAGE_PURGE_INTERVAL="3600",
        )
        for name in TENANTS
    }
    with running_files_platform(issuer, workdir, TENANTS, databases, envs) as found:
        yield found


def _file_row(platform: Platform, file_id: str, tenant: str = "acme") -> Any:
    rows = platform.rows(
        tenant,
        "SELECT storage, content, version, size_bytes, sha256 FROM files WHERE id = :f",
        f=file_id,
    )
    return rows[0] if rows else None


def _waiting(platform: Platform, tenant: str = "acme") -> list[tuple[str, str]]:
    """The keys the worker still has to delete from the bucket, and why."""
    rows = platform.rows(tenant, "SELECT key, reason FROM file_object_deletions ORDER BY key")
    return [(str(r.key), str(r.reason)) for r in rows]


async def _upload(
    platform: Platform, user: str, data: bytes, tenant: str = "acme", **args: Any
) -> str:
    created = await platform.upload_link(user, data, tenant=tenant, **args)
    async with httpx.AsyncClient(timeout=120) as http:
        answer = await http.put(created["upload"]["url"], content=data)
    assert answer.status_code == 200, answer.text
    return str(created["file"]["id"])


def _purge(platform: Platform, tenant: str = "acme") -> None:
    worker = platform.workers[tenant]
    with grpc.insecure_channel(worker.address) as channel:
        stub = worker_pb2_grpc.TenantWorkerStub(channel)
        md = [("x-stowage-tenant", tenant)]
        while stub.PurgeExpired(pb.PurgeExpiredRequest(limit=2), metadata=md, timeout=60).more:
            pass


async def test_a_multipart_upload_lands_as_one_object_under_the_tenants_prefix_and_reads_back(
    bucket_platform: Platform, stores: Stores, user: str
) -> None:
    platform = bucket_platform
    data = random_bytes(2 * PART + 123_457)  # three parts, the last a short one
    file_id = await _upload(platform, user, data, sha256=sha256(data))
    row = _file_row(platform, file_id)
    key = f"{Stores.prefix('acme')}files/{row.content}"
    assert (row.storage, row.version, row.size_bytes, row.sha256) == (
        "bucket",
        1,
        len(data),
        sha256(data),
    )
    assert key in stores.keys("acme")
    assert sha256(stores.read("acme", key)) == sha256(data)
    assert platform.chunks_of("acme", file_id) == (0, 0)  # no byte of it in the database
    assert _waiting(platform) == [] and stores.open_uploads("acme") == []
    got = await platform.tool(user, "files_get", {"id": file_id})
    url = got.structured_content["download"]["url"]
    async with httpx.AsyncClient(timeout=120) as http:
        whole = await http.get(url)
        assert whole.status_code == 200 and sha256(whole.content) == sha256(data)
        # A range across the first part's end, and the last bytes.
        across = await http.get(url, headers={"range": f"bytes={PART - 10}-{PART + 9}"})
        assert across.status_code == 206, across.text
        assert across.content == data[PART - 10 : PART + 10]
        assert across.headers["content-range"] == f"bytes {PART - 10}-{PART + 9}/{len(data)}"
        tail = await http.get(url, headers={"range": "bytes=-5"})
        assert tail.status_code == 206 and tail.content == data[-5:]
        outside = await http.get(url, headers={"range": f"bytes={len(data)}-"})
        assert outside.status_code == 416


async def test_a_small_file_and_an_empty_one_are_single_objects(
    bucket_platform: Platform, stores: Stores, user: str
) -> None:
    platform = bucket_platform
    small, empty = random_bytes(1000), b""
    ids = [await _upload(platform, user, small), await _upload(platform, user, empty)]
    for file_id, data in zip(ids, (small, empty), strict=True):
        row = _file_row(platform, file_id)
        assert row.storage == "bucket" and row.size_bytes == len(data)
        key = f"{Stores.prefix('acme')}files/{row.content}"
        assert stores.read("acme", key) == data


async def test_a_new_version_replaces_the_object_and_the_old_one_is_deleted(
    bucket_platform: Platform, stores: Stores, user: str
) -> None:
    platform = bucket_platform
    first, second = random_bytes(PART + 10), random_bytes(3000)
    file_id = await _upload(platform, user, first)
    old = _file_row(platform, file_id).content
    await _upload(platform, user, second, id=file_id)
    row = _file_row(platform, file_id)
    assert row.version == 2 and row.content != old
    keys = stores.keys("acme")
    assert f"{Stores.prefix('acme')}files/{row.content}" in keys
    assert f"{Stores.prefix('acme')}files/{old}" not in keys
    assert _waiting(platform) == []


async def test_a_broken_off_or_overlong_upload_keeps_no_object_and_no_open_multipart_upload(
    bucket_platform: Platform, stores: Stores, user: str
) -> None:
    platform = bucket_platform
    before = stores.keys("acme")
    data = random_bytes(3 * PART)
    created = await platform.upload_link(user, data)
    file_id = created["file"]["id"]
    # The client goes away after two parts' worth: a multipart upload is open by then.
    url = urlsplit(created["upload"]["url"])
    _reader, writer = await asyncio.open_connection(url.hostname, url.port)
    head = (
        f"PUT {url.path}?{url.query} HTTP/1.1\r\nHost: {url.netloc}\r\n"
        f"Content-Length: {len(data)}\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    writer.write(head.encode() + data[: 2 * PART + 1000])
    await writer.drain()
    writer.close()
    await writer.wait_closed()

    def settled() -> bool:
        return _waiting(platform) == [] and stores.open_uploads("acme") == []

    await anyio.to_thread.run_sync(lambda: eventually(settled, 30, "the upload undone"))
    # More bytes than the upload declared, straight to the worker: refused while streaming.
    (owner,) = platform.rows("acme", "SELECT owner FROM files WHERE id = :f", f=file_id)[0]

    def overlong() -> Iterator[pb.UploadFileMessage]:
        yield pb.UploadFileMessage(header=pb.UploadFileHeader(id=file_id, size=len(data)))
        for _ in range(4):
            yield pb.UploadFileMessage(data=data[:PART])

    worker = platform.workers["acme"]
    with grpc.insecure_channel(worker.address) as channel:
        stub = worker_pb2_grpc.TenantWorkerStub(channel)
        md = [("x-stowage-tenant", "acme"), ("x-stowage-user-id", str(owner))]
        with pytest.raises(grpc.RpcError) as refused:
            stub.UploadFile(overlong(), metadata=md, timeout=60)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "more than" in str(refused.value.details())
    row = _file_row(platform, file_id)
    assert (row.version, row.content, row.sha256) == (0, None, None)
    assert stores.keys("acme") == before
    assert stores.open_uploads("acme") == []
    assert _waiting(platform) == []


async def test_a_quota_reached_by_an_upload_refuses_it_and_deletes_its_object(
    bucket_platform: Platform, stores: Stores, user: str
) -> None:
    platform = bucket_platform
    before = stores.keys("tight")
    first, second = random_bytes(5 * MiB), random_bytes(4 * MiB)
    a = await platform.upload_link(user, first, tenant="tight")
    b = await platform.upload_link(user, second, tenant="tight")
    async with httpx.AsyncClient(timeout=120) as http:
        assert (await http.put(a["upload"]["url"], content=first)).status_code == 200
        refused = await http.put(b["upload"]["url"], content=second)
    assert refused.status_code == 413, refused.text
    assert refused.json()["field"] == "quotas.perUser.maxBytes"
    assert _file_row(platform, b["file"]["id"], "tight").version == 0
    kept = _file_row(platform, a["file"]["id"], "tight").content
    assert stores.keys("tight") == sorted([*before, f"{Stores.prefix('tight')}files/{kept}"])
    assert _waiting(platform, "tight") == []


async def test_delete_erase_and_retention_remove_the_objects_from_the_bucket_and_the_rows(
    bucket_platform: Platform, stores: Stores, user: str
) -> None:
    platform = bucket_platform

    def key_of(file_id: str) -> str:
        return f"{Stores.prefix('acme')}files/{_file_row(platform, file_id).content}"

    # files_delete
    deleted = await _upload(platform, user, random_bytes(PART + 1))
    deleted_key = key_of(deleted)
    gone = await platform.tool(user, "files_delete", {"id": deleted})
    assert not gone.is_error, gone.content
    assert deleted_key not in stores.keys("acme") and _file_row(platform, deleted) is None
    # retention: three expired files, purged two at a time
    expired = [await _upload(platform, user, random_bytes(2000)) for _ in range(3)]
    expired_keys = [key_of(f) for f in expired]
    platform.rows(
        "acme",
        "UPDATE files SET expires_at = created_at WHERE id IN (:a, :b, :c) RETURNING id",
        a=expired[0],
        b=expired[1],
        c=expired[2],
    )
    _purge(platform)
    assert not set(expired_keys) & set(stores.keys("acme"))
    assert all(_file_row(platform, f) is None for f in expired)
    # my_data_erase: the user's objects go, another user's stay
    mine = [await _upload(platform, user, random_bytes(n)) for n in (PART + 7, 10)]
    mine_keys = [key_of(f) for f in mine]
    other = await _upload(platform, f"other-{user}", random_bytes(50))
    other_key = key_of(other)
    erased = await platform.tool(user, "my_data_erase", {"confirm": True})
    assert erased.structured_content["files_deleted"] == 2
    keys = stores.keys("acme")
    assert not set(mine_keys) & set(keys) and other_key in keys
    assert platform.rows("acme", "SELECT id FROM files WHERE owner IN "
                         "(SELECT owner FROM files WHERE id = :f)", f=mine[0]) == []  # fmt: skip
    assert all(_file_row(platform, f) is None for f in mine)
    assert _waiting(platform) == []


async def test_export_lists_the_files_in_the_bucket_with_matching_sha256(
    bucket_platform: Platform, user: str
) -> None:
    platform = bucket_platform
    blobs = [random_bytes(1000), random_bytes(PART + 99)]
    ids = [await _upload(platform, user, blob) for blob in blobs]
    exported = (await platform.tool(user, "my_data_export", {})).structured_content
    files = {f["id"]: f for f in exported["files"]}
    assert set(files) == set(ids)
    async with httpx.AsyncClient(timeout=120) as http:
        for file_id, blob in zip(ids, blobs, strict=True):
            assert files[file_id]["sha256"] == sha256(blob)
            got = await http.get(files[file_id]["download"]["url"])
            assert got.status_code == 200 and sha256(got.content) == sha256(blob)


async def test_an_object_store_that_goes_away_mid_upload_fails_it_clearly_and_keeps_nothing(
    bucket_platform: Platform, stores: Stores, user: str
) -> None:
    platform, server = bucket_platform, stores.servers["outage"]
    data = random_bytes(3 * PART)
    created = await platform.upload_link(user, data, tenant="outage")
    file_id = created["file"]["id"]
    # A file stored while the store is up, and a link for another small upload.
    stored = await _upload(platform, user, random_bytes(1000), tenant="outage")
    stored_file = await platform.tool(user, "files_get", {"id": stored}, tenant="outage")
    small = random_bytes(2000)
    small_link = await platform.upload_link(user, small, tenant="outage")

    async def body() -> AsyncIterator[bytes]:
        yield data[: PART + MiB]  # the first part goes to the store
        await anyio.to_thread.run_sync(server.stop)
        yield data[PART + MiB :]  # the second cannot

    async with httpx.AsyncClient(timeout=120) as http:
        failed = await http.put(
            created["upload"]["url"], content=body(), headers={"content-length": str(len(data))}
        )
    # The worker reads the rest of the body before refusing, so its UNAVAILABLE reaches
    # the gateway as such (never gRPC's INTERNAL of a refusal crossing the bytes still sent).
    assert failed.status_code == 503 and failed.headers["retry-after"] == "1", failed.text
    assert failed.json()["message"] == (
        "The tenant's file store (its S3-compatible bucket) could not be reached. "
        "No file was changed; retry in 1 s."
    )
    # Once the store is away, a link's answer says so, in words for whoever holds the link:
    # reading a stored file and a whole small upload (no body left to cross the refusal).
    async with httpx.AsyncClient(timeout=120) as http:
        download = await http.get(stored_file.structured_content["download"]["url"])
        upload = await http.put(small_link["upload"]["url"], content=small)
    for answer in (download, upload):
        assert answer.status_code == 503 and answer.headers["retry-after"] == "1", answer.text
        assert answer.json()["error"] == "unavailable"
        assert answer.json()["message"] == (
            "The tenant's file store (its S3-compatible bucket) could not be reached. "
            "No file was changed; retry in 1 s."
        )
    # Never the store's endpoint, bucket, credentials or the worker's exceptions.
    internals = (
        f"127.0.0.1:{server.port}",
        stores.buckets["outage"],
        server.access_key_id,
        server.secret_access_key,
        "ConnectionError",
        "Traceback",
    )
    for answer in (failed, download, upload):
        assert answer.json()["message"] and answer.json()["correlation_id"]
        assert not [i for i in internals if i in answer.text], answer.text
    assert _file_row(platform, small_link["file"]["id"], "outage").version == 0
    # The file has no version pointing at bytes that are not there.
    row = _file_row(platform, file_id, "outage")
    assert (row.version, row.content, row.storage) == (0, None, "database")
    # An open multipart upload the store could not be told to abort waits for a purge.
    assert {reason for _key, reason in _waiting(platform, "outage")} <= {"upload"}
    # The worker's own answer says what failed, in its status details.
    (owner,) = platform.rows("outage", "SELECT owner FROM files WHERE id = :f", f=file_id)[0]

    def messages() -> Iterator[pb.UploadFileMessage]:
        yield pb.UploadFileMessage(header=pb.UploadFileHeader(id=file_id, size=len(data)))
        for at in range(0, len(data), PART):
            yield pb.UploadFileMessage(data=data[at : at + PART])

    with grpc.insecure_channel(platform.workers["outage"].address) as channel:
        stub = worker_pb2_grpc.TenantWorkerStub(channel)
        md = [("x-stowage-tenant", "outage"), ("x-stowage-user-id", str(owner))]
        with pytest.raises(grpc.RpcError) as refused:
            stub.UploadFile(messages(), metadata=md, timeout=60)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert f"the object store {server.endpoint}" in str(refused.value.details())
    assert "could not be reached" in str(refused.value.details())
    assert _file_row(platform, file_id, "outage").version == 0
    got = await platform.tool(user, "files_get", {"id": file_id}, tenant="outage")
    assert got.structured_content["file"]["status"] != "ready"
    # Back up (empty, as a new store), the next upload of the same file succeeds.
    server.start()
    stores.buckets["outage"] = server.create_bucket(stores.buckets["outage"])
    await _upload(platform, user, data, tenant="outage", id=file_id)
    assert _file_row(platform, file_id, "outage").storage == "bucket"


async def _transfer(
    platform: Platform, user: str, size: int, pids: dict[str, int]
) -> dict[str, tuple[int, int, float, float]]:
    """Upload then download ``size`` bytes; per process (upload growth, download growth of its
    peak resident memory, upload MiB/s, download MiB/s)."""
    created = await platform.upload_link(user, b"", size=size, name="big.bin")
    sent, seed, piece = hashlib.sha256(), os.urandom(8), MiB

    async def pieces() -> AsyncIterator[bytes]:
        for i in range(size // piece):
            chunk = hashlib.shake_256(seed + i.to_bytes(4, "big")).digest(piece)
            sent.update(chunk)
            yield chunk

    up: dict[str, int] = {}
    async with httpx.AsyncClient(timeout=600) as http:
        before = {name: _reset_peak(pid) for name, pid in pids.items()}
        started = time.perf_counter()
        put = await http.put(
            created["upload"]["url"], content=pieces(), headers={"content-length": str(size)}
        )
        up_rate = size / MiB / (time.perf_counter() - started)
        assert put.status_code == 200, put.text
        for name, pid in pids.items():
            up[name] = proc_status(pid, "VmHWM") - before[name]
        before = {name: _reset_peak(pid) for name, pid in pids.items()}
        got = await platform.tool(user, "files_get", {"id": created["file"]["id"]})
        received, count = hashlib.sha256(), 0
        started = time.perf_counter()
        async with http.stream("GET", got.structured_content["download"]["url"]) as answer:
            assert answer.status_code == 200
            async for chunk in answer.aiter_bytes():
                received.update(chunk)
                count += len(chunk)
        down_rate = size / MiB / (time.perf_counter() - started)
    assert count == size and received.hexdigest() == sent.hexdigest()
    return {
        name: (up[name], proc_status(pid, "VmHWM") - before[name], up_rate, down_rate)
        for name, pid in pids.items()
    }


async def test_memory_stays_flat_in_the_file_size_through_the_bucket(
    bucket_platform: Platform, user: str, backend: str
) -> None:
    """Peak resident memory of the gateway and the worker over a 25 MiB and then a 100 MiB
    upload and download: four times the bytes, about the same growth (the part being
    filled, the part being sent, what gRPC buffers meanwhile), after a first multipart
    upload has loaded the S3 client."""
    pids = {
        "gateway": bucket_platform.gateway.proc.pid,  # type: ignore[union-attr]
        "worker": bucket_platform.workers["acme"].proc.pid,  # type: ignore[union-attr]
    }
    await _transfer(bucket_platform, user, 2 * PART + MiB, pids)
    figures = {size: await _transfer(bucket_platform, user, size * MiB, pids) for size in (25, 100)}
    for size, found in figures.items():
        for name, (up, down, up_rate, down_rate) in found.items():
            print(
                f"[{backend}+bucket] {size} MiB {name}: peak RSS growth upload "
                f"{up / MiB:.1f} MiB, download {down / MiB:.1f} MiB "
                f"(upload {up_rate:.1f} MiB/s, download {down_rate:.1f} MiB/s)"
            )
    for name in pids:
        for small, large in zip(figures[25][name][:2], figures[100][name][:2], strict=True):
            assert large < BOUND, f"{name} grew {large / MiB:.1f} MiB moving 100 MiB"
            # Memory that followed the file's size would grow by the 75 MiB more moved here;
            # flat memory grows by what a part and gRPC's stream window hold, whatever
            # the size (a few MiB either way between two transfers on a busy machine).
            assert large - small < 75 * MiB // 4, (
                f"{name} grew {large / MiB:.1f} MiB moving 100 MiB, "
                f"{small / MiB:.1f} MiB moving 25 MiB"
            )


#: Peak RSS growth over a transfer that still counts as flat: a few parts of 5 MiB (the
#: part being filled, the part being sent, what gRPC buffers while a part is sent; about
#: 22-27 MiB measured), whatever the file's size.
BOUND = 8 * PART


def _reset_peak(pid: int) -> int:
    """Start the process's peak resident memory afresh; its resident memory now."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return proc_status(pid, "VmRSS")


def test_the_worker_refuses_an_object_store_without_a_bucket_or_credentials() -> None:
    from stowage.runtime.config import ConfigError
    from tenant_worker._settings import WorkerSettings

    env = {
        "STOWAGE_DATABASE_URL": "sqlite+aiosqlite:///x.db",
        "STOWAGE_OBJECT_STORE_ENDPOINT": "http://127.0.0.1:1",
    }
    with pytest.raises(ConfigError, match="STOWAGE_OBJECT_STORE_BUCKET"):
        WorkerSettings.from_env(env)
    full = {
        **env,
        "STOWAGE_OBJECT_STORE_BUCKET": "b",
        "STOWAGE_OBJECT_STORE_ACCESS_KEY_ID": "id",
        "STOWAGE_OBJECT_STORE_SECRET_ACCESS_KEY": "very-secret",
        "STOWAGE_TENANT": "acme",
    }
    found = WorkerSettings.from_env(full).object_store()
    assert found is not None and found.prefix == "tenants/acme/"
    assert "very-secret" not in repr(found)
    plain = WorkerSettings.from_env({"STOWAGE_DATABASE_URL": "sqlite+aiosqlite:///x.db"})
    assert plain.object_store() is None
