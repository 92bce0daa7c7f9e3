"""Linking the app as ChatGPT does, with Keycloak as the tenant's authorization server.

Discovery from the gateway's 401, Keycloak's login form, authorization code + PKCE
with ``resource``, tool calls through the real gateway to the worker and
PostgreSQL, refresh; and the claims as Keycloak shapes them.
"""

from __future__ import annotations

import sys

import pytest

from stowage_testing.gateway import mcp_client, post, rpc
from tests.keycloak.conftest import Tier
from tests.keycloak.linking import CLIENT_ID, Linking, claims

pytestmark = [pytest.mark.postgres, pytest.mark.anyio]


def _save(item: str, data: dict[str, object]) -> dict[str, object]:
    return rpc("tools/call", {"name": "items_save", "arguments": {"id": item, "data": data}})


def _get(item: str) -> dict[str, object]:
    return rpc("tools/call", {"name": "items_get", "arguments": {"id": item}})


async def test_chatgpt_links_the_app_through_keycloak_and_calls_tools_then_refreshes(
    tier: Tier,
) -> None:
    linking = Linking(tier.url())
    metadata = linking.discover()
    assert linking.resource_metadata["authorization_servers"] == [tier.issuer]
    assert set(linking.resource_metadata["scopes_supported"]) >= {"stowage:read", "stowage:write"}
    assert metadata["issuer"] == tier.issuer

    tokens = linking.sign_in("alice")
    access = tokens["access_token"]
    assert access.count(".") == 2 and tokens["refresh_token"]

    client_info = {"name": "ChatGPT", "version": "1"}
    initialize = rpc(
        "initialize",
        {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": client_info},
    )
    assert linking.call("MCP initialize", access, initialize).status_code == 200
    listed = linking.call("MCP tools/list", access, rpc("tools/list"))
    assert listed.status_code == 200
    assert "items_save" in {t["name"] for t in listed.json()["result"]["tools"]}
    saved = linking.call("MCP tools/call items_save", access, _save("linked", {"by": "keycloak"}))
    assert saved.status_code == 200 and not saved.json()["result"].get("isError"), saved.text
    got = linking.call("MCP tools/call items_get", access, _get("linked"))
    assert got.json()["result"]["structuredContent"]["object"]["data"] == {"by": "keycloak"}

    refreshed = linking.refreshed(tokens)
    assert refreshed["refresh_token"] != tokens["refresh_token"]
    again = linking.call(
        "MCP tools/call items_get (refreshed token)", refreshed["access_token"], _get("linked")
    )
    assert again.status_code == 200
    assert again.json()["result"]["structuredContent"]["object"]["data"] == {"by": "keycloak"}
    # Keycloak rotates refresh tokens (revokeRefreshToken): the old one is spent.
    assert linking.refresh(tokens["refresh_token"]).status_code == 400

    # And the mcp SDK's own client, with the same token, as any MCP client would.
    async with mcp_client(tier.url(), refreshed["access_token"]) as client:
        result = await client.call_tool("items_get", {"id": "linked"})
    assert not result.is_error, result

    print(
        "\nlinking transcript (ChatGPT's side, Keycloak as the tenant's server):", file=sys.stderr
    )
    for what, request, status in linking.transcript:
        print(f"  {status}  {what:45} {request.split('?')[0]}", file=sys.stderr)


def test_keycloak_tokens_carry_an_audience_list_azp_a_scope_string_auth_time_and_sid(
    tier: Tier,
) -> None:
    linking = Linking(tier.url())
    first = claims(linking.sign_in("alice")["access_token"])
    assert isinstance(first["aud"], list) and tier.url() in first["aud"] and len(first["aud"]) > 1
    assert first["azp"] == CLIENT_ID and "client_id" not in first
    assert isinstance(first["scope"], str)
    assert {"stowage:read", "stowage:write"} <= set(first["scope"].split())
    assert first["iss"] == tier.issuer and first["sub"]
    assert first["auth_time"] <= first["iat"] and first["sid"]

    # A refresh keeps the sign-in's auth_time and session; a new sign-in has its own session.
    tokens = linking.sign_in("alice")
    before = claims(tokens["access_token"])
    after = claims(linking.refreshed(tokens)["access_token"])
    assert (after["auth_time"], after["sid"]) == (before["auth_time"], before["sid"])
    assert before["sid"] != first["sid"]


def test_a_token_of_another_realm_of_the_same_keycloak_is_refused(tier: Tier) -> None:
    """The other realm's keys are real and published by the same server: iss decides."""
    other = Linking(tier.url("intro"))
    foreign = other.sign_in("alice")["access_token"]
    assert claims(foreign)["iss"] != tier.issuer
    refused = post(tier.url(), rpc("tools/list"), foreign)
    assert refused.status_code == 401
    assert "issued by another authorization server" in refused.json()["error_description"]
