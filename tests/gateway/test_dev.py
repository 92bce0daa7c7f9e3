"""The development issuer's OAuth flow, ``stowage token`` and ``stowage dev``."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.gateway.harness import GatewayProcess, Issuer, mcp_client, post, rpc
from tests.support.tools import eventually, free_port

REDIRECT = "http://127.0.0.1:6274/oauth/callback"


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


@pytest.mark.postgres
def test_an_mcp_client_can_discover_register_log_in_and_call_with_the_token_it_gets(
    gateway: GatewayProcess, issuer: Issuer
) -> None:
    resource = gateway.url("acme")
    challenge = post(resource, rpc("tools/list")).headers["www-authenticate"]
    metadata_url = re.search(r'resource_metadata="([^"]+)"', challenge).group(1)  # type: ignore[union-attr]
    server = httpx.get(metadata_url).json()["authorization_servers"][0]
    parts = urlsplit(server)
    as_metadata = httpx.get(
        f"{parts.scheme}://{parts.netloc}/.well-known/oauth-authorization-server{parts.path}"
    ).json()
    assert as_metadata["code_challenge_methods_supported"] == ["S256"]
    client = httpx.post(
        as_metadata["registration_endpoint"],
        json={"redirect_uris": [REDIRECT], "client_name": "inspector"},
    ).json()
    verifier, code_challenge = pkce()
    query = {
        "response_type": "code",
        "client_id": client["client_id"],
        "redirect_uri": REDIRECT,
        "code_challenge": code_challenge,
        "code_challenge_method": "S256",
        "state": "xyz",
        "scope": "stowage:read stowage:write",
        "resource": resource,
    }
    login = httpx.get(as_metadata["authorization_endpoint"], params=query)
    assert login.status_code == 200 and "dev login" in login.text.lower()
    redirect = httpx.post(
        as_metadata["authorization_endpoint"], data={**query, "username": "inspector-user"}
    )
    assert redirect.status_code == 302
    back = parse_qs(urlsplit(redirect.headers["location"]).query)
    assert back["state"] == ["xyz"]
    token_request = {
        "grant_type": "authorization_code",
        "code": back["code"][0],
        "redirect_uri": REDIRECT,
        "client_id": client["client_id"],
        "resource": resource,
    }
    wrong = httpx.post(
        as_metadata["token_endpoint"], data={**token_request, "code_verifier": "wrong"}
    )
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    # The code was spent by the failed attempt; PKCE failures do not leave it usable.
    redirect = httpx.post(
        as_metadata["authorization_endpoint"], data={**query, "username": "inspector-user"}
    )
    token_request["code"] = parse_qs(urlsplit(redirect.headers["location"]).query)["code"][0]
    issued = httpx.post(
        as_metadata["token_endpoint"], data={**token_request, "code_verifier": verifier}
    ).json()
    assert issued["token_type"] == "Bearer"
    assert post(resource, rpc("tools/list"), issued["access_token"]).status_code == 200


def stowage(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "stowage", *args], check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


@pytest.mark.postgres
def test_stowage_token_prints_a_token_the_gateway_accepts(
    gateway: GatewayProcess, issuer: Issuer
) -> None:
    printed = stowage(
        *("token", "--tenant", "acme", "--user", "cli-user", "--scope", "stowage:read"),
        *("--ttl", "120", "--key-file", str(issuer.key_file)),
        *("--issuer", issuer.url, "--public-url", gateway.base),
    )
    assert post(gateway.url("acme"), rpc("tools/list"), printed).status_code == 200
    write = rpc("tools/call", {"name": "items_save", "arguments": {"data": {}}})
    assert post(gateway.url("acme"), write, printed).status_code == 403


@pytest.fixture
def dev_platform(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``stowage dev`` on free ports and a fresh data directory."""
    port, worker_port = free_port(), free_port()
    data = tmp_path / "dev"
    log_path = tmp_path / "dev.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "stowage", "dev", "--data-dir", str(data), "--port", str(port),
             "--worker-port", str(worker_port)],
            stdout=log,
            stderr=log,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            assert proc.poll() is None, log_path.read_text()[-3000:]
            try:
                return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        eventually(ready, timeout=60, what="stowage dev is ready")
        assert f"{base}/t/demo/mcp" in log_path.read_text()
        yield base, data
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        eventually(
            lambda: not _listening(worker_port), timeout=15, what="the dev worker stops with it"
        )
        assert _worker_pids(data) == [], "a dev worker outlived stowage dev"


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _worker_pids(data: Path) -> list[int]:
    """Live (not zombie) ``stowage worker serve`` processes on this data directory."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        command = [a.decode(errors="replace") for a in argv]
        if "serve" in command and any(str(data) in a for a in command) and state != "Z":
            found.append(int(entry.name))
    return found


def test_stowage_dev_restarts_its_worker_when_it_dies(
    dev_platform: tuple[str, Path],
) -> None:
    base, data = dev_platform
    token = stowage(
        *("token", "--tenant", "demo", "--user", "bob"),
        *("--key-file", str(data / "dev-issuer.jwk.json"), "--public-url", base),
    )
    [pid] = _worker_pids(data)
    os.kill(pid, signal.SIGKILL)
    eventually(lambda: _worker_pids(data) not in ([], [pid]), timeout=30, what="a new worker")

    call = rpc("tools/call", {"name": "items_save", "arguments": {"data": {"after": "restart"}}})

    def saved() -> bool:
        reply = post(f"{base}/t/demo/mcp", call, token)
        return reply.status_code == 200 and not reply.json()["result"].get("isError")

    eventually(saved, timeout=30, what="a tool call succeeds on the restarted worker")
    assert "the dev worker exited" in (data.parent / "dev.log").read_text()


@pytest.mark.anyio
async def test_stowage_dev_runs_the_platform_and_its_printed_token_command_works(
    dev_platform: tuple[str, Path],
) -> None:
    base, data = dev_platform
    token = stowage(
        *("token", "--tenant", "demo", "--user", "alice"),
        *("--key-file", str(data / "dev-issuer.jwk.json"), "--public-url", base),
    )
    async with mcp_client(f"{base}/t/demo/mcp", token) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        saved = await client.call_tool("notes_save", {"data": {"title": "from make dev"}})
    assert "notes_save" in names
    assert not saved.is_error
    async with httpx.AsyncClient() as http:
        metadata = (
            await http.get(f"{base}/.well-known/oauth-authorization-server/dev-auth")
        ).json()
    assert metadata["issuer"] == f"{base}/dev-auth"
