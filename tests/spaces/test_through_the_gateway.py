"""Two users through the real gateway with real tokens: share, edit, conflict, change feed."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stowage_testing.gateway import (
    GatewayProcess,
    Issuer,
    mcp_client,
    running_gateway,
    running_issuer,
    tenant_entry,
    tool_error,
)
from stowage_testing.postgres import PostgresServer
from stowage_testing.worker import WorkerProcess, running_worker
from tests.spaces.conftest import LISTS_SCHEMA

SPEC: dict[str, Any] = {
    "identity": {
        "userClaim": "account_id",
        "nameClaim": "name",
        "emailClaim": "email",
        "inviteByEmail": True,
        "orgClaim": "org",
        "orgSpaces": True,
    },
    "collections": [{"name": "lists", "shared": True, "schema": LISTS_SCHEMA}],
}
TRANSCRIPT: list[str] = []


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def platform(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[GatewayProcess, Issuer, WorkerProcess]]:
    tmp: Path = tmp_path_factory.mktemp("spaces-gateway")
    url = postgres.sqlalchemy_url(postgres.create_database("spacesgw"))
    with (
        running_issuer(tmp / "issuer") as issuer,
        running_worker(url, tmp / "worker", SPEC) as worker,
    ):
        g = GatewayProcess(workdir=tmp / "gateway")
        (tmp / "gateway").mkdir()
        g.write_tenants([tenant_entry("acme", g, issuer, _address(worker), **SPEC)])
        with running_gateway(tmp / "gateway", port=g.port) as started:
            yield started, issuer, worker


def _address(w: WorkerProcess) -> str:
    return w.address


async def _call(client: Any, who: str, tool: str, args: dict[str, Any]) -> Any:
    result = await client.call_tool(tool, args)
    shown = result.structured_content if not result.is_error else tool_error(result)
    TRANSCRIPT.append(f"{who}: {tool} {json.dumps(args)}\n  -> {json.dumps(shown)}")
    return result


@pytest.mark.anyio
async def test_two_users_share_a_list_and_a_stale_save_names_the_other_user(
    platform: tuple[GatewayProcess, Issuer, WorkerProcess],
) -> None:
    gateway, issuer, _ = platform
    url = gateway.url("acme")
    alice_token = issuer.token(url, subject="sub-a", account_id="acct-alice", name="Alice")
    bob_token = issuer.token(url, subject="sub-b", account_id="acct-bob", name="Bob")
    async with mcp_client(url, alice_token) as alice, mcp_client(url, bob_token) as bob:
        names = {t.name for t in (await alice.list_tools()).tools}
        assert {"spaces_create", "spaces_changes", "lists_save"} <= names
        assert "lists_save" in names and "items_save" in names
        await _call(bob, "bob", "spaces_list", {})  # bob signs in (before the invitation)
        created = await _call(alice, "alice", "spaces_create", {"name": "Groceries"})
        space = created.structured_content["space"]["id"]
        invited = await _call(
            alice, "alice", "spaces_invite", {"space": space, "user": "acct-bob", "role": "editor"}
        )
        assert invited.structured_content["member"]["name"] == "Bob"
        saved = await _call(
            alice, "alice", "lists_save",
            {"space": space, "id": "weekly", "data": {"items": ["milk"]}, "expected_version": 0},
        )  # fmt: skip
        assert saved.structured_content["object"]["updated_by"]["name"] == "Alice"
        feed = await _call(bob, "bob", "spaces_changes", {"space": space})
        cursor = feed.structured_content["next_cursor"]
        await _call(
            bob, "bob", "lists_save",
            {"space": space, "id": "weekly", "data": {"items": ["milk", "eggs"]},
             "expected_version": 1},
        )  # fmt: skip
        stale = await _call(
            alice, "alice", "lists_save",
            {"space": space, "id": "weekly", "data": {"items": ["bread"]}, "expected_version": 1},
        )  # fmt: skip
        error = tool_error(stale)["error"]
        assert error["code"] == "conflict"
        assert error["changed_by"]["name"] == "Bob"
        assert error["current"]["version"] == 2
        assert error["current"]["data"] == {"items": ["milk", "eggs"]}
        assert error["message"].startswith("Bob changed lists/weekly at ")
        assert error["changed_at"] == error["current"]["updated_at"]
        later = await _call(alice, "alice", "spaces_changes", {"space": space})
        assert [(c["seq"], c["by"]["name"]) for c in later.structured_content["changes"]] == [
            (1, "Alice"),
            (2, "Bob"),
        ]
        caught_up = await _call(bob, "bob", "spaces_changes", {"space": space, "cursor": cursor})
        assert [c["seq"] for c in caught_up.structured_content["changes"]] == [2]

        outsider = issuer.token(url, subject="sub-m", account_id="acct-mallory", name="Mallory")
        async with mcp_client(url, outsider) as mallory:
            peek = await _call(mallory, "mallory", "lists_get", {"space": space, "id": "weekly"})
            assert tool_error(peek)["error"]["code"] == "not_found"
        viewer = await _call(
            alice,
            "alice",
            "spaces_invite",
            {"space": space, "user": "acct-mallory", "role": "viewer"},
        )
        assert viewer.structured_content["member"]["role"] == "viewer"
        async with mcp_client(url, outsider) as mallory:
            denied = await _call(
                mallory, "mallory", "lists_save",
                {"space": space, "id": "weekly", "data": {"items": []}},
            )  # fmt: skip
            error = tool_error(denied)["error"]
            assert (error["code"], error["role_needed"]) == ("permission_denied", "editor")
    print("\n\n".join(TRANSCRIPT))  # the two-user transcript, with pytest -s


def _resolves(worker: WorkerProcess) -> float:
    """How many ResolveUser calls the worker has answered (its own metrics endpoint)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{worker.metrics_port}/metrics") as r:
        text = r.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("stowage_worker_rpcs_total{") and 'method="ResolveUser"' in line
    )


async def _spaces_of(url: str, token: str) -> dict[str, dict[str, Any]]:
    async with mcp_client(url, token) as client:
        listed = await client.call_tool("spaces_list", {})
    assert not listed.is_error, tool_error(listed)
    return {s["id"]: s for s in listed.structured_content["spaces"]}


@pytest.mark.anyio
async def test_a_changed_name_email_or_organisation_reaches_the_worker_on_the_next_call(
    platform: tuple[GatewayProcess, Issuer, WorkerProcess],
) -> None:
    """The gateway caches who a caller is, keyed by the claims it sent: unchanged claims
    cost no ResolveUser, a changed one is sent on the very next call."""
    gateway, issuer, worker = platform
    url = gateway.url("acme")
    tag = uuid.uuid4().hex[:8]
    alice = issuer.token(url, subject="sub-a2", account_id=f"alice-{tag}", name="Alice")
    carol_id, email = f"carol-{tag}", f"carol-{tag}@example.test"

    def carol(**claims: Any) -> str:
        return issuer.token(url, subject="sub-c", account_id=carol_id, **claims)

    async with mcp_client(url, alice) as client:
        created = await client.call_tool("spaces_create", {"name": "Team"})
        space = created.structured_content["space"]["id"]
        waiting = await client.call_tool("spaces_invite", {"space": space, "email": email})
        assert waiting.structured_content == {"member": None, "pending": True}

    before = _resolves(worker)
    for _ in range(3):  # new tokens, same claims: one sign-in reaches the worker
        assert space not in await _spaces_of(url, carol(name="Carol"))
    assert _resolves(worker) == before + 1

    # An email the issuer has not verified (false, or not said) is not sent: it accepts nothing.
    unverified = carol(name="Carol", email=email, email_verified=False)
    assert space not in await _spaces_of(url, unverified)
    unsaid = carol(name="Carol", email=email)
    assert space not in await _spaces_of(url, unsaid)
    assert _resolves(worker) == before + 1
    verified = carol(name="Carol", email=email, email_verified=True)
    assert (await _spaces_of(url, verified))[space]["role"] == "editor"
    assert _resolves(worker) == before + 2

    renamed = carol(name="Caroline", email=email, email_verified=True)
    await _spaces_of(url, renamed)
    async with mcp_client(url, alice) as client:
        detail = await client.call_tool("spaces_get", {"space": space})
    assert sorted(m["name"] for m in detail.structured_content["members"]) == ["Alice", "Caroline"]

    org = f"Acme {tag}"
    joined = carol(name="Caroline", email=email, email_verified=True, org=org)
    orgs = [s for s in (await _spaces_of(url, joined)).values() if s["kind"] == "org"]
    assert [(s["name"], s["role"]) for s in orgs] == [(org, "owner")]
    assert _resolves(worker) == before + 4
