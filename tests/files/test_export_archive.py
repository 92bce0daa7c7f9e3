"""The export as one archive behind a signed link: my_data_export through the real mcp
client, the archive downloaded over HTTP and opened with tarfile, on both file stores (the
tenant's database, SQLite and PostgreSQL, and the Region's bucket on a real S3 server)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest

from tests.files.conftest import Platform, proc_status, random_bytes, sha256, with_query
from tests.files.test_object_store import bucket_platform, stores  # noqa: F401

pytestmark = [pytest.mark.anyio]

MiB = 2**20
#: Growth of a process's peak resident memory over an archive that still counts as flat
#: (as for one file's download, ``test_memory``).
BOUND = 15 * MiB


@pytest.fixture(params=["database", "bucket"])
def files_platform(backend: str, request: pytest.FixtureRequest) -> Platform:
    """The gateway and workers keeping file bytes in the tenant's database, or in its bucket
    (the metadata in SQLite or PostgreSQL: ``backend``)."""
    name = "platform" if request.param == "database" else "bucket_platform"
    found: Platform = request.getfixturevalue(name)
    return found


async def _upload(platform: Platform, user: str, data: bytes, **args: Any) -> str:
    created = await platform.upload_link(user, data, **args)
    async with httpx.AsyncClient(timeout=120) as http:
        answer = await http.put(created["upload"]["url"], content=data)
    assert answer.status_code == 200, answer.text
    return str(created["file"]["id"])


async def _export(platform: Platform, user: str) -> dict[str, Any]:
    result = await platform.tool(user, "my_data_export", {})
    assert not result.is_error, result.content
    return dict(result.structured_content)


def _members(archive: bytes) -> dict[str, bytes]:
    """Every member of a tar archive by path, in order; fails on a broken archive."""
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
        out: dict[str, bytes] = {}
        for info in tar:
            assert info.isfile(), info.name
            extracted = tar.extractfile(info)
            assert extracted is not None
            out[info.name] = extracted.read()
        return out


def _reset_peak(pid: int) -> int:
    """Start the process's peak resident memory afresh; its resident memory now."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return proc_status(pid, "VmRSS")


async def _download(url: str, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=120) as http:
        return await http.get(url, headers=headers)


async def test_the_archive_holds_every_file_with_its_sha256_the_export_and_a_manifest(
    files_platform: Platform, user: str
) -> None:
    platform = files_platform
    blobs = {
        "small.txt": random_bytes(1000),
        # Several chunks of the database, and a multipart object in the bucket.
        "large.bin": random_bytes(5 * MiB + 99),
        "empty.bin": b"",
        # A name that would climb out of its folder once unpacked.
        "..": random_bytes(10),
    }
    ids = {name: await _upload(platform, user, data, name=name) for name, data in blobs.items()}
    never = await platform.upload_link(user, b"x" * 10, name="never-sent.bin")
    saved = await platform.tool(user, "notes_save", {"id": "n1", "data": {"title": "mine"}})
    assert not saved.is_error, saved.content
    other = "other-" + user
    theirs = await _upload(platform, other, random_bytes(2000), name="theirs.txt")

    exported = await _export(platform, user)
    link = exported["archive"]
    assert link["method"] == "GET"
    assert link["url"].startswith(f"{platform.gateway.base}/t/acme/files/export?")
    answer = await _download(link["url"], origin="https://sandbox.example")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/x-tar"
    assert answer.headers["content-disposition"].startswith('attachment; filename="stowage-')
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert answer.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in answer.headers

    members = _members(answer.content)
    paths = list(members)
    assert paths[0] == "export.json" and paths[-1] == "manifest.json"
    manifest = json.loads(members["manifest.json"])
    assert manifest["format"] == "stowage-export-archive/v1"
    assert manifest["user_id"] == exported["user_id"]
    listed = {f["id"]: f for f in manifest["files"]}
    assert set(listed) == set(ids.values())
    for name, data in blobs.items():
        entry = listed[ids[name]]
        assert entry["sha256"] == entry["stored_sha256"] == sha256(data)
        assert entry["size"] == len(data) and entry["version"] == 1 and entry["name"] == name
        assert sha256(members[entry["path"]]) == sha256(data)
        assert entry["path"].startswith(f"files/{ids[name]}/")
    assert listed[ids[".."]]["path"] == f"files/{ids['..']}/_.."
    assert sorted(paths[1:-1]) == sorted(f["path"] for f in manifest["files"])
    assert manifest["skipped"] == [
        {"id": never["file"]["id"], "name": "never-sent.bin", "reason": "awaiting_upload"}
    ]
    inside = json.loads(members["export.json"])
    assert [o["id"] for o in inside["objects"]] == ["n1"]
    assert {f["id"] for f in inside["files"]} == {*ids.values(), never["file"]["id"]}
    assert all("download" not in f for f in inside["files"])

    # Another user's archive holds their file and none of this user's.
    their_export = await _export(platform, other)
    their_members = _members((await _download(their_export["archive"]["url"])).content)
    their_manifest = json.loads(their_members["manifest.json"])
    assert [f["id"] for f in their_manifest["files"]] == [theirs]
    assert not any(file_id in path for path in their_members for file_id in ids.values())


async def test_an_expired_altered_or_file_link_is_refused_as_an_export_link_saying_why(
    platform: Platform, user: str
) -> None:
    from gateway.files._signing import Grant, Kind, Method, query

    file_id = await _upload(platform, user, b"hello")
    exported = await _export(platform, user)
    url = exported["archive"]["url"]
    user_id = dict(parse_qsl(urlsplit(url).query))["u"]
    base = f"{platform.gateway.base}/t/acme/files"

    expired_grant = Grant(
        "acme", user_id, "export", Method.GET, int(time.time()) - 60, kind=Kind.EXPORT
    )
    expired = await _download(
        f"{base}/export?{urlencode(query(platform.tenant_key(), expired_grant))}"
    )
    assert expired.status_code == 403 and expired.json()["error"] == "link_expired"
    assert "my_data_export" in expired.json()["message"]
    assert expired.headers["x-content-type-options"] == "nosniff"

    altered = await _download(with_query(url, e=str(int(time.time()) + 3600)))
    assert altered.status_code == 403 and altered.json()["error"] == "invalid_signature"
    forged = await _download(with_query(url, s="A" * 43))
    assert forged.status_code == 403 and forged.json()["error"] == "invalid_signature"
    someone_else = await _download(with_query(url, u="0" * 32))
    assert someone_else.status_code == 403

    # A file's link does not open the archive, nor the archive's link a file.
    download = exported["files"][0]["download"]["url"]
    assert exported["files"][0]["id"] == file_id
    as_export = await _download(download.replace(f"/files/{file_id}?", "/files/export?"))
    assert as_export.status_code == 403 and as_export.json()["error"] == "invalid_signature"
    as_file = await _download(url.replace("/files/export?", f"/files/{file_id}?"))
    assert as_file.status_code == 403 and as_file.json()["error"] == "invalid_signature"
    file_grant = Grant("acme", user_id, "export", Method.GET, int(time.time()) + 600)
    file_kind = await _download(
        f"{base}/export?{urlencode(query(platform.tenant_key(), file_grant))}"
    )
    assert file_kind.status_code == 403 and file_kind.json()["error"] == "invalid_signature"

    async with httpx.AsyncClient(timeout=30) as http:
        put = await http.put(url, content=b"x")
    assert put.status_code == 403 and put.json()["error"] == "wrong_method"
    assert (await _download(url)).status_code == 200


async def test_a_file_deleted_or_replaced_before_its_turn_is_left_out_or_whole_at_its_new_version(
    files_platform: Platform, user: str
) -> None:
    platform = files_platform
    # Far more than every buffer between the worker and this client holds, so the worker is
    # still reading it when the other two change.
    first = random_bytes(24 * MiB)
    first_id = await _upload(platform, user, first, name="first.bin")
    gone = await _upload(platform, user, random_bytes(1000), name="gone.bin")
    replaced = await _upload(platform, user, b"old version", name="replaced.txt")
    newer = b"the new version of the file"
    url = (await _export(platform, user))["archive"]["url"]

    async with httpx.AsyncClient(timeout=120) as http, http.stream("GET", url) as answer:
        assert answer.status_code == 200
        pieces = answer.aiter_raw()
        received = bytearray(await anext(pieces))
        assert not (await platform.tool(user, "files_delete", {"id": gone})).is_error
        await _upload(platform, user, newer, id=replaced, name="replaced.txt")
        async for piece in pieces:
            received += piece

    members = _members(bytes(received))
    manifest = json.loads(members["manifest.json"])
    listed = {f["id"]: f for f in manifest["files"]}
    assert set(listed) == {first_id, replaced}
    assert manifest["skipped"] == [{"id": gone, "name": "gone.bin", "reason": "deleted"}]
    assert sha256(members[listed[first_id]["path"]]) == listed[first_id]["sha256"] == sha256(first)
    assert listed[replaced]["version"] == 2
    assert members[listed[replaced]["path"]] == newer
    assert listed[replaced]["sha256"] == listed[replaced]["stored_sha256"] == sha256(newer)


async def test_a_file_replaced_during_its_turn_is_whole_at_the_version_it_began_with(
    files_platform: Platform, backend: str, request: pytest.FixtureRequest, user: str
) -> None:
    platform = files_platform
    in_database = request.node.callspec.params["files_platform"] == "database"
    first = random_bytes(24 * MiB)
    first_id = await _upload(platform, user, first, name="first.bin")
    url = (await _export(platform, user))["archive"]["url"]

    broke_off = False
    async with httpx.AsyncClient(timeout=120) as http, http.stream("GET", url) as answer:
        assert answer.status_code == 200
        pieces = answer.aiter_raw()
        received = bytearray(await anext(pieces))
        await _upload(platform, user, b"a newer version", id=first_id, name="first.bin")
        try:
            async for piece in pieces:
                received += piece
        except httpx.RemoteProtocolError:
            broke_off = True

    if backend == "sqlite" and in_database:
        # SQLite reads a file a batch at a time: the replaced chunks end the stream, which
        # breaks off without its manifest rather than carry a torn entry.
        assert broke_off
        with pytest.raises(tarfile.ReadError):
            _members(bytes(received))
        return
    assert not broke_off
    members = _members(bytes(received))
    (entry,) = json.loads(members["manifest.json"])["files"]
    assert entry["version"] == 1
    assert sha256(members[entry["path"]]) == entry["sha256"] == sha256(first)


async def test_the_archive_streams_with_flat_memory_in_gateway_and_worker(
    platform: Platform, user: str, backend: str
) -> None:
    blobs = [random_bytes(13 * MiB), random_bytes(13 * MiB)]
    for blob in blobs:
        await _upload(platform, user, blob)
    url = (await _export(platform, user))["archive"]["url"]
    pids = {"gateway": platform.gateway.proc.pid, "worker": platform.workers["acme"].proc.pid}  # type: ignore[union-attr]
    before = {name: _reset_peak(pid) for name, pid in pids.items()}
    received, count = hashlib.sha256(), 0
    async with httpx.AsyncClient(timeout=120) as http, http.stream("GET", url) as answer:
        assert answer.status_code == 200
        async for piece in answer.aiter_bytes():
            received.update(piece)
            count += len(piece)
    assert count > sum(len(b) for b in blobs)
    for name, pid in pids.items():
        grown = proc_status(pid, "VmHWM") - before[name]
        print(f"[{backend}] {name}: peak RSS growth {grown / MiB:.1f} MiB over the archive")
        assert grown < BOUND, f"{name} grew {grown / MiB:.1f} MiB streaming {count / MiB:.0f} MiB"
