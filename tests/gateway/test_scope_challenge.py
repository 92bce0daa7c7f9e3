"""A tool call without the tool's scope, seen from the mcp SDK client: both refusal shapes.

By default the gateway answers as the MCP authorization specification says
(HTTP 403 with the ``insufficient_scope`` challenge). A call that carries the
OpenAI Apps SDK's client metadata (``_meta["openai/…"]``, as ChatGPT sends it)
gets the tool-level challenge the Apps SDK documents instead: an ``isError``
result whose ``_meta["mcp/www_authenticate"]`` holds the same challenge.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from stowage_testing.gateway import GatewayProcess, Issuer, mcp_client, tool_error

pytestmark = [pytest.mark.postgres, pytest.mark.anyio]

#: What ChatGPT puts into every tools/call (the Apps SDK's client metadata).
CHATGPT_META = {"openai/userAgent": "ChatGPT/1.2026.300", "openai/locale": "en-GB"}


def reader_token(gateway: GatewayProcess, issuer: Issuer) -> str:
    user = f"reader-{uuid.uuid4().hex[:8]}"
    return issuer.token(gateway.url("acme"), subject=user, scopes=("stowage:read",))


def challenge_params(challenge: str) -> dict[str, str]:
    scheme, _, rest = challenge.partition(" ")
    assert scheme == "Bearer", challenge
    params = {}
    for part in rest.split(", "):
        key, _, value = part.partition("=")
        params[key] = value.strip('"')
    return params


async def test_a_call_from_chatgpt_without_the_scope_gets_the_apps_sdk_tool_challenge(
    gateway: GatewayProcess, issuer: Issuer
) -> None:
    seen: list[httpx2.Response] = []

    async def record(response: httpx2.Response) -> None:
        seen.append(response)

    headers = {"Authorization": f"Bearer {reader_token(gateway, issuer)}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30, event_hooks={"response": [record]}) as http,
        Client(streamable_http_client(gateway.url("acme"), http_client=http)) as client,
    ):
        refused = await client.call_tool(
            "items_save", {"id": "x", "data": {"n": 1}}, meta=CHATGPT_META
        )
        allowed = await client.call_tool("items_list", {}, meta=CHATGPT_META)

    assert refused.is_error
    meta: dict[str, Any] = refused.meta or {}
    [challenge] = meta["mcp/www_authenticate"]
    params = challenge_params(challenge)
    assert params["error"] == "insufficient_scope"
    assert params["scope"] == "stowage:write"
    assert params["resource_metadata"] == (
        f"{gateway.base}/.well-known/oauth-protected-resource/t/acme/mcp"
    )
    error = tool_error(refused)["error"]
    assert (error["code"], error["scope"]) == ("insufficient_scope", "stowage:write")
    assert "items_save" in error["message"]
    # Answered in-band (HTTP 200), with the same challenge in the header too.
    call_response = next(r for r in seen if r.headers.get("www-authenticate"))
    assert call_response.status_code == 200
    assert call_response.headers["www-authenticate"] == challenge
    # The marker changes the shape of a refusal only: a permitted call still works.
    assert not allowed.is_error


async def test_a_call_without_the_apps_sdk_metadata_gets_http_403_with_the_challenge(
    gateway: GatewayProcess, issuer: Issuer
) -> None:
    seen: list[httpx2.Response] = []

    async def record(response: httpx2.Response) -> None:
        seen.append(response)

    headers = {"Authorization": f"Bearer {reader_token(gateway, issuer)}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30, event_hooks={"response": [record]}) as http,
        Client(streamable_http_client(gateway.url("acme"), http_client=http)) as client,
    ):
        with pytest.raises(MCPError):
            await client.call_tool("items_save", {"id": "x", "data": {"n": 1}})
        # Other metadata (not the Apps SDK's) is no marker.
        with pytest.raises(MCPError):
            await client.call_tool(
                "items_save", {"id": "x", "data": {"n": 1}}, meta={"progressToken": 7}
            )

    refusals = [r for r in seen if r.status_code == 403]
    assert len(refusals) == 2
    for refusal in refusals:
        params = challenge_params(refusal.headers["www-authenticate"])
        assert (params["error"], params["scope"]) == ("insufficient_scope", "stowage:write")


async def test_a_token_with_the_scope_is_never_challenged_whatever_the_client(
    gateway: GatewayProcess, issuer: Issuer
) -> None:
    token = issuer.token(gateway.url("acme"), subject=f"writer-{uuid.uuid4().hex[:8]}")
    async with mcp_client(gateway.url("acme"), token) as client:
        saved = await client.call_tool("items_save", {"data": {"n": 1}}, meta=CHATGPT_META)
    assert not saved.is_error
    assert "mcp/www_authenticate" not in (saved.meta or {})
