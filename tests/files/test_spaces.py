"""Files in shared spaces through the real gateway, with real tokens of several users: roles,
links checked again when used, the space owner's quota, erasure under both policies (and its
replay after a restore), export, and a space that goes with its last member. On SQLite and
PostgreSQL with the bytes in the database, and on PostgreSQL with them in a real S3 bucket."""

from __future__ import annotations

import io
import json
import secrets
import tarfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import grpc
import httpx
import pytest

from gateway.files._signing import Grant, Method, query
from stowage.v1 import worker_pb2 as pb
from stowage.v1 import worker_pb2_grpc
from stowage_testing.gateway import (
    COLLECTIONS,
    Issuer,
    mcp_client,
    tool_error,
)
from stowage_testing.s3 import S3Server, s3_server
from tenant_worker._erasures import replay_erasures
from tests.files.conftest import (
    Platform,
    database_url,
    random_bytes,
    running_files_platform,
    sha256,
)

pytestmark = [pytest.mark.anyio]

LISTS = {"name": "lists", "shared": True, "schema": {"type": "object"}}
BASE: dict[str, Any] = {
    "identity": {"nameClaim": "name"},
    "collections": [*COLLECTIONS, LISTS],
    "files": {"maxFileBytes": "4Mi"},
    "quotas": {"maxBytes": "1Gi", "perUser": {"maxBytes": "1Mi"}},
}
#: Two tenants, one per ``spaces.erasure`` policy.
TENANTS: dict[str, dict[str, Any]] = {
    "keep": {**BASE, "spaces": {"erasure": "pseudonymise"}},
    "wipe": {**BASE, "spaces": {"erasure": "delete"}},
}


@dataclass
class SpacePlatform(Platform):
    #: Where new files' bytes go: "database" or "bucket".
    storage: str = "database"
    s3: S3Server | None = None
    bucket: str = ""

    def token(self, user: str, tenant: str = "keep") -> str:
        name = user.split("-")[0].capitalize()
        return self.issuer.token(self.gateway.url(tenant), subject=user, name=name)

    async def call(self, user: str, tenant: str, name: str, args: dict[str, Any]) -> Any:
        async with mcp_client(self.gateway.url(tenant), self.token(user, tenant)) as client:
            return await client.call_tool(name, args)

    async def ok(self, user: str, tenant: str, name: str, args: dict[str, Any]) -> Any:
        result = await self.call(user, tenant, name, args)
        assert not result.is_error, tool_error(result)
        return result.structured_content

    def keys(self, tenant: str) -> list[str]:
        """The objects of ``tenant`` in the bucket (empty without one)."""
        if self.s3 is None:
            return []
        return self.s3.keys(self.bucket, _prefix(tenant))

    def bytes_held(self, tenant: str, file_id: str) -> int:
        """How many of the file's bytes the database's chunks hold."""
        return self.chunks_of(tenant, file_id)[1]

    def user_id(self, tenant: str, subject: str) -> str:
        rows = self.rows(tenant, "SELECT id FROM users WHERE subject = :s", s=subject)
        return str(rows[0].id)

    def used(self, tenant: str, subject: str) -> int:
        """The bytes counted against ``subject``'s per-user quota."""
        rows = self.rows(
            tenant,
            "SELECT bytes FROM user_usage WHERE owner = :o",
            o=self.user_id(tenant, subject),
        )
        return int(rows[0].bytes) if rows else 0


def _members(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
        return {i.name: f.read() for i in tar if (f := tar.extractfile(i)) is not None}


def _prefix(tenant: str) -> str:
    return f"tenants/space-files/{tenant}/"


@contextmanager
def running_platform(
    issuer: Issuer,
    workdir: Path,
    backend: str,
    storage: str,
    tenants: dict[str, dict[str, Any]],
    request: pytest.FixtureRequest,
) -> Iterator[SpacePlatform]:
    """A gateway and a worker per tenant of ``tenants``, on ``backend``; with ``storage``
    "bucket", new files' bytes go to a real S3 server's bucket."""
    with ExitStack() as stack:
        s3 = stack.enter_context(s3_server(workdir / "s3")) if storage == "bucket" else None
        bucket = s3.create_bucket() if s3 is not None else ""
        databases = {n: database_url(backend, workdir, n, request, "spacefiles") for n in tenants}
        envs = None if s3 is None else {n: s3.worker_env(bucket, _prefix(n)) for n in tenants}
        p = stack.enter_context(running_files_platform(issuer, workdir, tenants, databases, envs))
        yield SpacePlatform(
            p.gateway, p.issuer, p.workers, p.databases, p.keys_dir, storage, s3, bucket
        )


@pytest.fixture(
    scope="module",
    params=[("sqlite", "database"), ("postgres", "database"), ("postgres", "bucket")],
    ids=["sqlite", "postgres", "postgres-bucket"],
)
def platform(
    issuer: Issuer, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[SpacePlatform]:
    backend, storage = request.param
    workdir = tmp_path_factory.mktemp(f"space-files-{backend}-{storage}")
    with running_platform(issuer, workdir, backend, storage, TENANTS, request) as found:
        yield found


@pytest.fixture
def people() -> dict[str, str]:
    """Fresh subjects for one test: alice (owner), bob (editor), carol (viewer), mallory."""
    tag = secrets.token_hex(4)
    return {who: f"{who}-{tag}" for who in ("alice", "bob", "carol", "mallory")}


async def _space(p: SpacePlatform, tenant: str, people: dict[str, str], viewer: bool = True) -> str:
    """Alice's new space, with bob as an editor (and carol as a viewer)."""
    for who in people.values():
        await p.ok(who, tenant, "spaces_list", {})  # each signs in once
    space = (await p.ok(people["alice"], tenant, "spaces_create", {"name": "Trip"}))["space"]["id"]
    invites = [("bob", "editor")] + ([("carol", "viewer")] if viewer else [])
    for who, role in invites:
        args = {"space": space, "user": people[who], "role": role}
        await p.ok(people["alice"], tenant, "spaces_invite", args)
    return str(space)


async def _upload(
    p: SpacePlatform, user: str, tenant: str, data: bytes, **args: Any
) -> dict[str, Any]:
    """A file of ``data`` uploaded by ``user`` (in ``space``, when given); its metadata."""
    given = {"name": "photo.bin", "content_type": "application/octet-stream", **args}
    created = await p.ok(user, tenant, "files_create_upload", {**given, "size": len(data)})
    async with httpx.AsyncClient(timeout=60) as http:
        put = await http.put(created["upload"]["url"], content=data)
    assert put.status_code == 200, put.text
    return dict(put.json()["file"])


def _refused(result: Any, code: str) -> dict[str, Any]:
    assert result.is_error
    error = dict(tool_error(result)["error"])
    assert error["code"] == code, error
    return error


async def test_a_member_uploads_to_a_space_another_downloads_it_and_a_viewer_only_reads(
    platform: SpacePlatform, people: dict[str, str]
) -> None:
    p, t = platform, "keep"
    space = await _space(p, t, people)
    data = random_bytes(300_000)
    file = await _upload(p, people["bob"], t, data, space=space, sha256=sha256(data))
    assert file["space"] == space
    assert file["created_by"]["name"] == "Bob" and file["updated_by"]["name"] == "Bob"
    assert file["created_by"]["member"].startswith("m-")

    got = await p.ok(people["alice"], t, "files_get", {"id": file["id"]})
    assert got["file"]["space"] == space and got["file"]["created_by"]["name"] == "Bob"
    async with httpx.AsyncClient(timeout=60) as http:
        answer = await http.get(got["download"]["url"])
        assert answer.status_code == 200 and answer.content == data
        seen = await p.ok(people["carol"], t, "files_get", {"id": file["id"]})
        assert (await http.get(seen["download"]["url"])).content == data

    listed = await p.ok(people["carol"], t, "files_list", {"space": space})
    assert [f["id"] for f in listed["files"]] == [file["id"]]
    own = await p.ok(people["bob"], t, "files_list", {})
    assert file["id"] not in [f["id"] for f in own["files"]]
    detail = await p.ok(people["alice"], t, "spaces_get", {"space": space})
    assert (detail["space"]["objects"], detail["space"]["bytes"]) == (1, 300_000)

    # A viewer reads, but neither adds, replaces nor deletes: the role needed is named.
    new = {"name": "x", "content_type": "text/plain", "size": 1}
    for tool, args in [
        ("files_create_upload", {**new, "space": space}),
        ("files_create_upload", {**new, "id": file["id"]}),
        ("files_delete", {"id": file["id"]}),
    ]:
        error = _refused(await p.call(people["carol"], t, tool, args), "permission_denied")
        assert error["role_needed"] == "editor", error
        assert "editor" in error["message"]

    # A non-member learns nothing: the file is not found, the space is not found.
    for tool, args in [
        ("files_get", {"id": file["id"]}),
        ("files_delete", {"id": file["id"]}),
        ("files_create_upload", {**new, "id": file["id"]}),
    ]:
        error = _refused(await p.call(people["mallory"], t, tool, args), "not_found")
        assert space not in error["message"]
    _refused(await p.call(people["mallory"], t, "files_list", {"space": space}), "not_found")
    _refused(
        await p.call(people["mallory"], t, "files_create_upload", {**new, "space": space}),
        "not_found",
    )
    # Even a link signed for her (the gateway's own key) finds nothing.
    mine = await p.ok(people["mallory"], t, "files_create_upload", new)
    mallory_id = dict(parse_qsl(urlsplit(mine["upload"]["url"]).query))["u"]
    grant = Grant(t, mallory_id, file["id"], Method.GET, int(time.time()) + 60)
    url = f"{p.gateway.base}/t/{t}/files/{file['id']}?{urlencode(query(p.tenant_key(t), grant))}"
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.get(url)
    assert answer.status_code == 404 and answer.json()["error"] == "not_found"

    # An editor deletes it: its bytes go, and the space's size with them.
    await p.ok(people["bob"], t, "files_delete", {"id": file["id"]})
    assert p.bytes_held(t, file["id"]) == 0
    detail = await p.ok(people["alice"], t, "spaces_get", {"space": space})
    assert (detail["space"]["objects"], detail["space"]["bytes"]) == (0, 0)
    assert p.used(t, people["alice"]) == 0


async def test_a_removed_members_links_are_refused_when_used(
    platform: SpacePlatform, people: dict[str, str]
) -> None:
    p, t = platform, "keep"
    space = await _space(p, t, people, viewer=False)
    data = random_bytes(50_000)
    file = await _upload(p, people["alice"], t, data, space=space)
    got = await p.ok(people["bob"], t, "files_get", {"id": file["id"]})
    again = await p.ok(
        people["bob"],
        t,
        "files_create_upload",
        {"name": "v2.bin", "content_type": "text/plain", "size": 3, "id": file["id"]},
    )
    detail = await p.ok(people["alice"], t, "spaces_get", {"space": space})
    bob = next(m["member"] for m in detail["members"] if m["name"] == "Bob")
    await p.ok(people["alice"], t, "spaces_remove_member", {"space": space, "member": bob})
    async with httpx.AsyncClient(timeout=30) as http:
        download = await http.get(got["download"]["url"])
        assert download.status_code == 404 and download.json()["error"] == "not_found"
        upload = await http.put(again["upload"]["url"], content=b"new")
        assert upload.status_code == 404 and upload.json()["error"] == "not_found"
        # The owner's own link still works, and the file is as it was.
        mine = await p.ok(people["alice"], t, "files_get", {"id": file["id"]})
        assert (await http.get(mine["download"]["url"])).content == data
    assert mine["file"]["version"] == 1


async def test_a_space_files_bytes_count_against_the_space_owners_quota(
    platform: SpacePlatform, people: dict[str, str]
) -> None:
    p, t = platform, "keep"
    space = await _space(p, t, people, viewer=False)
    await _upload(p, people["bob"], t, random_bytes(600_000), space=space)
    assert p.used(t, people["alice"]) == 600_000
    assert p.used(t, people["bob"]) == 0
    # Bob's own quota (1 MiB) has room; the space's owner's has not.
    refused = await p.call(
        people["bob"],
        t,
        "files_create_upload",
        {"name": "big.bin", "content_type": "text/plain", "size": 600_000, "space": space},
    )
    error = _refused(refused, "quota_exceeded")
    assert "the space's owner" in error["message"]
    await _upload(p, people["bob"], t, random_bytes(600_000))
    assert p.used(t, people["bob"]) == 600_000


async def test_erasure_keeps_an_erased_authors_space_files_under_a_pseudonym(
    platform: SpacePlatform, people: dict[str, str]
) -> None:
    p, t = platform, "keep"
    space = await _space(p, t, people, viewer=False)
    data = random_bytes(70_000)
    file = await _upload(p, people["bob"], t, data, space=space)
    personal = await _upload(p, people["bob"], t, random_bytes(1000))
    exported = await p.ok(people["bob"], t, "my_data_export", {})
    listed = {f["id"]: f for f in exported["files"]}
    assert listed[file["id"]]["space"] == space and listed[personal["id"]]["space"] is None
    async with httpx.AsyncClient(timeout=60) as http:
        archive = (await http.get(exported["archive"]["url"])).content
    members = _members(archive)
    manifest = json.loads(members["manifest.json"])
    entries = {f["id"]: f for f in manifest["files"]}
    assert entries[file["id"]]["space"] == space and "space" not in entries[personal["id"]]
    assert members[entries[file["id"]]["path"]] == data

    erased = await p.ok(people["bob"], t, "my_data_erase", {"confirm": True})
    assert erased["files_deleted"] == 1
    got = await p.ok(people["alice"], t, "files_get", {"id": file["id"]})
    assert got["file"]["created_by"]["name"] == "a former member"
    assert got["file"]["created_by"]["member"].startswith("~")
    async with httpx.AsyncClient(timeout=30) as http:
        assert (await http.get(got["download"]["url"])).content == data
    rows = p.rows(t, "SELECT owner, created_by FROM files WHERE id = :f", f=file["id"])
    assert rows[0].owner == p.user_id(t, people["alice"])
    assert rows[0].created_by.startswith("~")
    assert p.rows(t, "SELECT id FROM files WHERE id = :f", f=personal["id"]) == []
    assert p.used(t, people["alice"]) == 70_000


async def test_erasure_deletes_an_erased_authors_space_files_with_their_bytes(
    platform: SpacePlatform, people: dict[str, str]
) -> None:
    p, t = platform, "wipe"
    space = await _space(p, t, people, viewer=False)
    theirs = await _upload(p, people["bob"], t, random_bytes(80_000), space=space)
    hers = await _upload(p, people["alice"], t, random_bytes(20_000), space=space)
    keys_before = set(p.keys(t))
    assert (len(keys_before) >= 2) == (p.storage == "bucket")

    await p.ok(people["bob"], t, "my_data_erase", {"confirm": True})
    assert p.rows(t, "SELECT id FROM files WHERE id = :f", f=theirs["id"]) == []
    assert p.bytes_held(t, theirs["id"]) == 0
    detail = await p.ok(people["alice"], t, "spaces_get", {"space": space})
    assert (detail["space"]["objects"], detail["space"]["bytes"]) == (1, 20_000)
    assert p.used(t, people["alice"]) == 20_000
    listed = await p.ok(people["alice"], t, "files_list", {"space": space})
    assert [f["id"] for f in listed["files"]] == [hers["id"]]
    if p.storage == "bucket":
        assert len(set(p.keys(t))) == len(keys_before) - 1
        assert p.rows(t, "SELECT key FROM file_object_deletions") == []


async def test_an_erasure_replayed_after_a_restore_does_to_space_files_what_was_done(
    platform: SpacePlatform, people: dict[str, str]
) -> None:
    """A restored database still holds what an erased user wrote: the replay, under the
    policy the erasure recorded, deletes their space files or pseudonymises them again."""
    for t, recorded in (("wipe", "delete"), ("keep", "pseudonymise")):
        space = await _space(platform, t, people, viewer=False)
        file = await _upload(platform, people["bob"], t, random_bytes(5000), space=space)
        bob = platform.user_id(t, people["bob"])
        replayed = await replay_erasures(platform.databases[t], {bob: recorded}, "restore-test")
        assert [r.user_id for r in replayed] == [bob]
        rows = platform.rows(t, "SELECT created_by FROM files WHERE id = :f", f=file["id"])
        if recorded == "delete":
            assert rows == [] and platform.bytes_held(t, file["id"]) == 0
        else:
            assert rows[0].created_by.startswith("~")
            got = await platform.ok(people["alice"], t, "files_get", {"id": file["id"]})
            assert got["file"]["created_by"]["name"] == "a former member"


async def test_a_space_that_goes_with_its_last_member_takes_its_files_and_bytes(
    platform: SpacePlatform, people: dict[str, str]
) -> None:
    p, t = platform, "keep"
    await p.ok(people["alice"], t, "spaces_list", {})
    space = (await p.ok(people["alice"], t, "spaces_create", {"name": "Solo"}))["space"]["id"]
    before = set(p.keys(t))
    file = await _upload(p, people["alice"], t, random_bytes(40_000), space=space)
    assert p.used(t, people["alice"]) == 40_000
    left = await p.ok(people["alice"], t, "spaces_leave", {"space": space})
    assert left["space_deleted"] is True
    assert p.rows(t, "SELECT id FROM files WHERE id = :f", f=file["id"]) == []
    assert p.bytes_held(t, file["id"]) == 0
    assert p.used(t, people["alice"]) == 0
    # The worker deleted the objects before it answered.
    assert set(p.keys(t)) == before


async def test_an_expired_space_file_is_purged_off_the_space_and_its_owners_quota(
    platform: SpacePlatform, people: dict[str, str]
) -> None:
    p, t = platform, "keep"
    space = await _space(p, t, people, viewer=False)
    before = set(p.keys(t))
    file = await _upload(p, people["bob"], t, random_bytes(30_000), space=space, ttl_seconds=3600)
    assert p.used(t, people["alice"]) == 30_000
    # Its time is up (as if an hour had passed), and the purge runs.
    p.rows(t, "UPDATE files SET expires_at = created_at WHERE id = :f RETURNING id", f=file["id"])
    _purge(p, t)
    assert p.rows(t, "SELECT id FROM files WHERE id = :f", f=file["id"]) == []
    assert p.bytes_held(t, file["id"]) == 0
    assert p.used(t, people["alice"]) == 0
    detail = await p.ok(people["alice"], t, "spaces_get", {"space": space})
    assert (detail["space"]["objects"], detail["space"]["bytes"]) == (0, 0)
    assert set(p.keys(t)) == before
    purged = p.rows(t, "SELECT correlation_id FROM audit_events WHERE action = 'files.purge'")
    assert purged and all(r.correlation_id for r in purged)


def _purge(p: SpacePlatform, tenant: str) -> None:
    with grpc.insecure_channel(p.workers[tenant].address) as channel:
        stub = worker_pb2_grpc.TenantWorkerStub(channel)
        md = [("x-stowage-tenant", tenant)]
        while stub.PurgeExpired(pb.PurgeExpiredRequest(limit=10), metadata=md, timeout=60).more:
            pass
