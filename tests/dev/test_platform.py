"""``stowage dev`` runs the platform, supervises its worker, and prints a working token command."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shlex
import signal
import struct
import subprocess
import sys
import zlib
from typing import Any

import httpx
import pytest

from stowage_testing.gateway import mcp_client, post, rpc
from stowage_testing.tools import eventually
from tests.dev.platform import DevPlatform, worker_pids


def stowage(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "stowage", *args], check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * 4))
    return decoded


def printed_token_command(platform: DevPlatform) -> list[str]:
    [line] = [ln.strip() for ln in platform.log().splitlines() if "stowage token" in ln]
    command = shlex.split(line)
    assert command[:2] == ["stowage", "token"], line
    return command[1:]


@pytest.mark.anyio
async def test_the_token_command_stowage_dev_prints_mints_a_token_its_gateway_accepts(
    shared_platform: DevPlatform,
) -> None:
    dev_platform = shared_platform
    # The fixture's port is not the default 8000: the token must carry this platform's URLs.
    assert dev_platform.port != 8000
    token = stowage(*printed_token_command(dev_platform))
    assert claims(token)["iss"] == dev_platform.issuer
    assert claims(token)["aud"] == dev_platform.mcp_url
    async with mcp_client(dev_platform.mcp_url, token) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        saved = await client.call_tool("notes_save", {"data": {"title": "from make dev"}})
    assert "notes_save" in names
    assert not saved.is_error


@pytest.mark.anyio
async def test_the_demo_tenant_ships_its_notes_component_linked_from_the_notes_tools(
    shared_platform: DevPlatform,
) -> None:
    token = stowage(*printed_token_command(shared_platform))
    async with mcp_client(shared_platform.mcp_url, token) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        [resource] = (await client.list_resources()).resources
        read = await client.read_resource(resource.uri)
    assert resource.name == "notes"
    assert resource.mime_type == "text/html;profile=mcp-app"
    for name in ("notes_list", "notes_get", "notes_save"):
        assert (tools[name].meta or {})["ui"]["resourceUri"] == resource.uri
    html = read.contents[0].text  # type: ignore[union-attr]
    assert html.startswith("<!doctype html>") and "<script" in html


def test_stowage_token_with_explicit_urls_and_scope_mints_a_read_only_token(
    shared_platform: DevPlatform,
) -> None:
    dev_platform = shared_platform
    printed = stowage(
        *("token", "--tenant", "demo", "--user", "cli-user", "--scope", "stowage:read"),
        *("--ttl", "120", "--key-file", str(dev_platform.data / "dev-issuer.jwk.json")),
        *("--issuer", dev_platform.issuer, "--public-url", dev_platform.base),
    )
    assert post(dev_platform.mcp_url, rpc("tools/list"), printed).status_code == 200
    write = rpc("tools/call", {"name": "items_save", "arguments": {"data": {}}})
    assert post(dev_platform.mcp_url, write, printed).status_code == 403


def test_stowage_token_without_a_dev_key_says_to_run_stowage_dev_first(tmp_path: Any) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "stowage", "token", "--tenant", "demo", "--user", "x",
         "--data-dir", str(tmp_path / "nothing")],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert done.returncode == 1
    assert "run `stowage dev`" in done.stderr


def test_stowage_dev_restarts_its_worker_when_it_dies(dev_platform: DevPlatform) -> None:
    data = dev_platform.data
    token = stowage(*printed_token_command(dev_platform))
    [pid] = worker_pids(data)
    os.kill(pid, signal.SIGKILL)
    eventually(lambda: worker_pids(data) not in ([], [pid]), timeout=30, what="a new worker")

    call = rpc("tools/call", {"name": "items_save", "arguments": {"data": {"after": "restart"}}})

    def saved() -> bool:
        reply = post(dev_platform.mcp_url, call, token)
        return reply.status_code == 200 and not reply.json()["result"].get("isError")

    eventually(saved, timeout=30, what="a tool call succeeds on the restarted worker")
    assert "the dev worker exited" in dev_platform.log()


def test_the_gateway_of_stowage_dev_points_clients_at_its_authorization_server(
    shared_platform: DevPlatform,
) -> None:
    dev_platform = shared_platform
    challenge = post(dev_platform.mcp_url, rpc("tools/list")).headers["www-authenticate"]
    assert "resource_metadata=" in challenge
    resource = httpx.get(
        f"{dev_platform.base}/.well-known/oauth-protected-resource/t/demo/mcp"
    ).json()
    assert resource["authorization_servers"] == [dev_platform.issuer]
    metadata = httpx.get(f"{dev_platform.base}/.well-known/oauth-authorization-server/dev-auth")
    assert metadata.json()["issuer"] == dev_platform.issuer


def png_image(width: int = 64, height: int = 48) -> bytes:
    """A real PNG (an RGB gradient), built by hand: signature, IHDR, IDAT, IEND."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    pixels = b"".join(
        b"\x00" + b"".join(bytes((x * 4 % 256, y * 5 % 256, 128)) for x in range(width))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(pixels))
        + chunk(b"IEND", b"")
    )


@pytest.mark.anyio
async def test_the_demo_tenant_stores_an_image_through_signed_links_with_a_printed_token(
    shared_platform: DevPlatform,
) -> None:
    image = png_image()
    digest = hashlib.sha256(image).hexdigest()
    token = stowage(*printed_token_command(shared_platform))
    async with mcp_client(shared_platform.mcp_url, token) as client:
        created = await client.call_tool(
            "files_create_upload",
            {"name": "sketch.png", "content_type": "image/png", "size": len(image),
             "sha256": digest},
        )  # fmt: skip
        assert not created.is_error, created.content
        upload = created.structured_content["upload"]  # type: ignore[index]
        assert upload["url"].startswith(f"{shared_platform.base}/t/demo/files/")
        async with httpx.AsyncClient(timeout=30) as http:
            put = await http.put(upload["url"], content=image, headers=upload["headers"])
        assert put.status_code == 200, put.text
        file_id = put.json()["file"]["id"]
        got = await client.call_tool("files_get", {"id": file_id})
    assert not got.is_error, got.content
    stored = got.structured_content
    assert stored is not None
    assert stored["file"]["sha256"] == digest and stored["file"]["status"] == "ready"
    async with httpx.AsyncClient(timeout=30) as http:
        download = await http.get(stored["download"]["url"])
    assert download.status_code == 200
    assert download.content == image
    # An inert image whose bytes show its type is served inline, never sniffed.
    assert download.headers["content-type"] == "image/png"
    assert download.headers["content-disposition"].startswith("inline")
    assert download.headers["x-content-type-options"] == "nosniff"
