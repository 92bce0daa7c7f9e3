"""Files under the tenant's rules: quotas while the bytes stream, usage, export, erasure and
retention removing the bytes (read back from the database itself)."""

from __future__ import annotations

import grpc
import httpx
import pytest

from stowage.v1 import worker_pb2 as pb
from stowage.v1 import worker_pb2_grpc
from tests.files.conftest import Platform, random_bytes, sha256

pytestmark = [pytest.mark.anyio]


async def _upload(platform: Platform, user: str, data: bytes, tenant: str = "acme") -> str:
    created = await platform.upload_link(user, data, tenant=tenant, content_type="text/plain")
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.put(created["upload"]["url"], content=data)
    assert answer.status_code == 200, answer.text
    return str(created["file"]["id"])


async def test_a_quota_reached_while_the_bytes_stream_refuses_the_upload_and_keeps_nothing(
    platform: Platform, user: str
) -> None:
    first, second = random_bytes(700 * 1024), random_bytes(600 * 1024)
    # Both fit when announced; the second no longer does once the first has landed.
    a = await platform.upload_link(user, first, tenant="tight", content_type="text/plain")
    b = await platform.upload_link(user, second, tenant="tight", content_type="text/plain")
    async with httpx.AsyncClient(timeout=30) as http:
        assert (await http.put(a["upload"]["url"], content=first)).status_code == 200
        refused = await http.put(b["upload"]["url"], content=second)
    assert refused.status_code == 413, refused.text
    assert refused.json()["field"] == "quotas.perUser.maxBytes"
    assert platform.chunks_of("tight", b["file"]["id"]) == (0, 0)
    usage = (await platform.tool(user, "my_usage_get", {}, tenant="tight")).structured_content
    assert usage["files"] == {"files": 2, "bytes": len(first)}
    assert usage["bytes"] == len(first) and usage["limits"]["max_file_bytes"] == 4 * 2**20


async def test_a_type_the_tenant_does_not_accept_is_refused_declared_or_sniffed(
    platform: Platform, user: str
) -> None:
    declared = await platform.tool(
        user,
        "files_create_upload",
        {"name": "x.pdf", "content_type": "application/pdf", "size": 10},
        tenant="tight",
    )
    assert declared.is_error and "allowedContentTypes" in declared.content[0].text
    html = b"<!doctype html><p>not an image</p>"
    created = await platform.upload_link(user, html, tenant="tight", content_type="image/png")
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.put(created["upload"]["url"], content=html)
    assert answer.status_code == 400 and "text/html" in answer.json()["message"]
    assert platform.chunks_of("tight", created["file"]["id"]) == (0, 0)


async def test_export_lists_every_file_with_its_sha256_and_a_working_download_link(
    platform: Platform, user: str
) -> None:
    blobs = [random_bytes(1000), random_bytes(300_000)]
    ids = [await _upload(platform, user, blob) for blob in blobs]
    exported = (await platform.tool(user, "my_data_export", {})).structured_content
    files = {f["id"]: f for f in exported["files"]}
    assert set(files) == set(ids)
    async with httpx.AsyncClient(timeout=30) as http:
        for file_id, blob in zip(ids, blobs, strict=True):
            assert files[file_id]["sha256"] == sha256(blob)
            got = await http.get(files[file_id]["download"]["url"])
            assert sha256(got.content) == sha256(blob)


async def test_erasure_deletes_the_users_files_and_their_bytes_and_audits_it(
    platform: Platform, user: str
) -> None:
    ids = [await _upload(platform, user, random_bytes(400_000)) for _ in range(2)]
    keep = await _upload(platform, "someone-else-" + user, random_bytes(1000))
    erased = await platform.tool(user, "my_data_erase", {"confirm": True})
    assert erased.structured_content["files_deleted"] == 2
    for file_id in ids:
        assert platform.chunks_of("acme", file_id) == (0, 0)
        assert platform.rows("acme", "SELECT id FROM files WHERE id = :f", f=file_id) == []
    assert platform.chunks_of("acme", keep) == (1, 1000)
    # The audit trail stays (who did what, when, under which correlation id), with the
    # erased user's file ids pseudonymised.
    assert platform.rows("acme", "SELECT id FROM audit_events WHERE object_id = :f", f=ids[0]) == []
    erasures = platform.rows(
        "acme", "SELECT detail, correlation_id FROM audit_events WHERE action = 'user.erase'"
    )
    details = [_json(d.detail) for d in erasures]
    assert any(
        d.get("files_deleted") == 2 and d.get("file_bytes_deleted") == 800_000 for d in details
    )


def _json(value: object) -> dict[str, object]:
    import json

    return value if isinstance(value, dict) else json.loads(str(value))


async def test_retention_purges_expired_files_with_their_bytes_in_bounded_batches(
    platform: Platform, user: str
) -> None:
    ids = [await _upload(platform, user, random_bytes(2000)) for _ in range(3)]
    live = await _upload(platform, user, random_bytes(10))
    platform.rows(
        "acme",
        "UPDATE files SET expires_at = created_at WHERE id IN (:a, :b, :c) RETURNING id",
        a=ids[0],
        b=ids[1],
        c=ids[2],
    )
    worker = platform.workers["acme"]
    with grpc.insecure_channel(worker.address) as channel:
        stub = worker_pb2_grpc.TenantWorkerStub(channel)
        md = [("x-stowage-tenant", "acme")]
        first = stub.PurgeExpired(pb.PurgeExpiredRequest(limit=2), metadata=md, timeout=30)
        assert first.purged >= 2 and first.more
        while stub.PurgeExpired(pb.PurgeExpiredRequest(limit=2), metadata=md, timeout=30).more:
            pass
    for file_id in ids:
        assert platform.chunks_of("acme", file_id) == (0, 0)
    assert platform.chunks_of("acme", live) == (1, 10)
    got = await platform.tool(user, "files_get", {"id": ids[0]})
    assert got.is_error and "not_found" in got.content[0].text
