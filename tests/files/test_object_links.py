"""Objects that name files, through the real gateway with real tokens: a save names files, a read
returns them with download links that work, a file deleted drops out, another user's file is
refused, a space object names a file of its space, a file lists the objects that name it, and
the export carries each object's file ids. On SQLite and PostgreSQL."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from stowage_testing.gateway import Issuer
from tests.files.test_spaces import (
    BASE,
    SpacePlatform,
    _refused,
    _space,
    _upload,
    running_platform,
)

pytestmark = [pytest.mark.anyio]

T = "links"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(100)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def platform(
    issuer: Issuer, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[SpacePlatform]:
    workdir = tmp_path_factory.mktemp(f"object-links-{request.param}")
    with running_platform(issuer, workdir, request.param, "database", {T: BASE}, request) as p:
        yield p


@pytest.fixture
def people() -> dict[str, str]:
    tag = secrets.token_hex(4)
    return {who: f"{who}-{tag}" for who in ("alice", "bob", "carol", "mallory")}


async def _got(http: httpx.AsyncClient, link: dict[str, Any]) -> bytes:
    answer = await http.get(link["url"])
    assert answer.status_code == 200, answer.text
    return answer.content


async def test_an_object_names_files_and_reads_return_them_with_working_download_links(
    platform: SpacePlatform, people: dict[str, str]
) -> None:
    p, alice = platform, people["alice"]
    photo = await _upload(p, alice, T, PNG, name="dot.png")
    pending = await p.ok(
        alice,
        T,
        "files_create_upload",
        {"name": "later.pdf", "content_type": "text/plain", "size": 5},
    )
    later = pending["file"]
    args = {"id": "trip", "data": {"title": "Trip"}, "files": [photo["id"], later["id"]]}
    saved = await p.ok(alice, T, "items_save", args)
    named = saved["object"]["files"]
    assert [f["id"] for f in named] == [photo["id"], later["id"]]
    assert [f["status"] for f in named] == ["ready", "awaiting_upload"]
    assert "download" in named[0] and "download" not in named[1]
    assert named[0]["name"] == "dot.png" and named[0]["size"] == 108

    got = await p.ok(alice, T, "items_get", {"id": "trip"})
    async with httpx.AsyncClient(timeout=30) as http:
        assert await _got(http, got["object"]["files"][0]["download"]) == PNG
    listed = await p.ok(alice, T, "items_list", {})
    (trip,) = [o for o in listed["objects"] if o["id"] == "trip"]
    assert [f["id"] for f in trip["files"]] == [photo["id"], later["id"]]

    linked = await p.ok(alice, T, "files_get", {"id": photo["id"]})
    assert linked["linked_from"] == [{"collection": "items", "id": "trip"}]
    assert linked["more_linked_from"] is False

    # A save without files names none: the links go with the version that had them.
    await p.ok(alice, T, "items_save", {"id": "trip", "data": {"title": "Trip, v2"}})
    again = await p.ok(alice, T, "items_get", {"id": "trip"})
    assert "files" not in again["object"]
    assert (await p.ok(alice, T, "files_get", {"id": photo["id"]}))["linked_from"] == []
    # An object without files never names any.
    plain = await p.ok(alice, T, "items_save", {"id": "plain", "data": {}})
    assert "files" not in plain["object"]


async def test_a_deleted_file_drops_out_of_the_objects_that_name_it(
    platform: SpacePlatform, people: dict[str, str]
) -> None:
    p, alice = platform, people["alice"]
    kept = await _upload(p, alice, T, b"kept")
    gone = await _upload(p, alice, T, b"gone")
    await p.ok(
        alice, T, "items_save", {"id": "pair", "data": {}, "files": [gone["id"], kept["id"]]}
    )
    await p.ok(alice, T, "files_delete", {"id": gone["id"]})
    got = await p.ok(alice, T, "items_get", {"id": "pair"})
    assert [f["id"] for f in got["object"]["files"]] == [kept["id"]]


async def test_a_file_of_another_user_or_of_a_space_is_refused_naming_it(
    platform: SpacePlatform, people: dict[str, str]
) -> None:
    p, alice, bob = platform, people["alice"], people["bob"]
    mine = await _upload(p, alice, T, b"mine")
    theirs = await _upload(p, bob, T, b"theirs")
    refused = await p.call(
        alice, T, "items_save", {"id": "x", "data": {}, "files": [mine["id"], theirs["id"]]}
    )
    error = _refused(refused, "invalid_argument")
    assert error["field"] == "files[1]" and theirs["id"] in error["message"]
    assert _refused(await p.call(alice, T, "items_get", {"id": "x"}), "not_found")

    space = await _space(p, T, people, viewer=False)
    shared = await _upload(p, alice, T, b"shared", space=space)
    in_space = await p.call(
        alice, T, "items_save", {"id": "y", "data": {}, "files": [shared["id"]]}
    )
    assert _refused(in_space, "invalid_argument")["field"] == "files[0]"
    # An object in a space names files of that space only.
    args = {"space": space, "id": "z", "data": {}, "files": [mine["id"]]}
    error = _refused(await p.call(alice, T, "lists_save", args), "invalid_argument")
    assert error["field"] == "files[0]" and f"in space {space}" in error["message"]


async def test_a_space_object_names_a_space_file_that_every_member_can_fetch(
    platform: SpacePlatform, people: dict[str, str]
) -> None:
    p, alice, bob = platform, people["alice"], people["bob"]
    space = await _space(p, T, people)
    plan = await _upload(p, bob, T, b"the plan", space=space, name="plan.txt")
    args = {"space": space, "id": "weekend", "data": {"items": []}, "files": [plan["id"]]}
    saved = await p.ok(bob, T, "lists_save", args)
    assert [f["id"] for f in saved["object"]["files"]] == [plan["id"]]

    seen = await p.ok(people["carol"], T, "lists_get", {"space": space, "id": "weekend"})
    async with httpx.AsyncClient(timeout=30) as http:
        assert await _got(http, seen["object"]["files"][0]["download"]) == b"the plan"
    listed = await p.ok(alice, T, "lists_list", {"space": space})
    assert [f["id"] for f in listed["objects"][0]["files"]] == [plan["id"]]
    linked = await p.ok(alice, T, "files_get", {"id": plan["id"]})
    assert linked["linked_from"] == [{"collection": "lists", "id": "weekend", "space": space}]
    # A non-member sees neither the object nor the file.
    _refused(await p.call(people["mallory"], T, "files_get", {"id": plan["id"]}), "not_found")


async def test_the_export_carries_each_objects_file_ids(
    platform: SpacePlatform, people: dict[str, str]
) -> None:
    p, alice = platform, people["alice"]
    file = await _upload(p, alice, T, b"in the export")
    await p.ok(alice, T, "items_save", {"id": "exported", "data": {}, "files": [file["id"]]})
    await p.ok(alice, T, "items_save", {"id": "bare", "data": {}})
    exported = await p.ok(alice, T, "my_data_export", {})
    objects = {o["id"]: o for o in exported["objects"]}
    assert objects["exported"]["file_ids"] == [file["id"]]
    assert "file_ids" not in objects["bare"] and "files" not in objects["exported"]
