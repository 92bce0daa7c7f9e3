"""The auth matrix: every way a token can be wrong is a 401 (or a 403 for scope)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from joserfc.jwk import RSAKey

from stowage_testing.gateway import (
    GatewayProcess,
    Issuer,
    hmac_with_public_key,
    mcp_client,
    post,
    rpc,
    unsigned_token,
)
from stowage_testing.issuer import sign_token

pytestmark = pytest.mark.postgres

SAVE = rpc("tools/call", {"name": "items_save", "arguments": {"data": {"a": 1}}})


def claims(gateway: GatewayProcess, issuer: Issuer, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": issuer.url,
        "aud": gateway.url("acme"),
        "sub": "mallory",
        "iat": now,
        "exp": now + 600,
        "scope": "stowage:read stowage:write",
        **overrides,
    }


BadToken = Callable[[GatewayProcess, Issuer], str]

BAD_TOKENS: dict[str, BadToken] = {
    "garbage": lambda g, i: "not-a-jwt",
    "three garbage parts": lambda g, i: "abc.def.ghi",
    "expired": lambda g, i: i.token(g.url("acme"), now=time.time() - 7200, ttl=600),
    "not yet valid": lambda g, i: i.token(g.url("acme"), nbf=int(time.time()) + 3600),
    "wrong audience": lambda g, i: i.token("https://elsewhere.example/mcp"),
    "wrong issuer": lambda g, i: sign_token(
        i.key, issuer="https://evil.example/", audience=g.url("acme"), subject="mallory"
    ),
    "alg none": lambda g, i: unsigned_token(claims(g, i)),
    "hmac signed with the public key": lambda g, i: hmac_with_public_key(i.key, claims(g, i)),
    "unknown kid": lambda g, i: sign_token(
        RSAKey.generate_key(2048, parameters={"kid": "rogue"}, private=True),
        issuer=i.url,
        audience=g.url("acme"),
        subject="mallory",
    ),
    "right kid, wrong key": lambda g, i: sign_token(
        RSAKey.generate_key(2048, parameters={"kid": i.key.kid}, private=True),
        issuer=i.url,
        audience=g.url("acme"),
        subject="mallory",
    ),
    "tenant A's token at tenant B": lambda g, i: i.token(g.url("globex")),
}


def assert_challenge(response: httpx.Response, gateway: GatewayProcess, error: str | None) -> None:
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    metadata = f"{gateway.base}/.well-known/oauth-protected-resource/t/acme/mcp"
    assert f'resource_metadata="{metadata}"' in challenge
    if error:
        assert f'error="{error}"' in challenge


def test_no_token_is_401_with_a_pointer_to_the_resource_metadata(gateway: GatewayProcess) -> None:
    response = post(gateway.url("acme"), SAVE)
    assert_challenge(response, gateway, None)
    assert "error=" not in response.headers["www-authenticate"]


def test_a_non_bearer_authorization_header_is_401(gateway: GatewayProcess) -> None:
    response = post(gateway.url("acme"), SAVE, authorization="Basic YWxpY2U6cHc=")
    assert_challenge(response, gateway, None)


@pytest.mark.parametrize("case", list(BAD_TOKENS))
def test_a_bad_token_is_401_invalid_token_and_never_anonymous(
    case: str, gateway: GatewayProcess, issuer: Issuer
) -> None:
    token = BAD_TOKENS[case](gateway, issuer)
    for body in (SAVE, rpc("tools/list"), rpc("initialize", {})):
        response = post(gateway.url("acme"), body, token)
        assert_challenge(response, gateway, "invalid_token")
    assert token not in gateway.logs()


def test_a_token_without_the_write_scope_is_403_insufficient_scope_for_writes_only(
    gateway: GatewayProcess, issuer: Issuer
) -> None:
    token = issuer.token(gateway.url("acme"), subject="reader", scopes=("stowage:read",))
    denied = post(gateway.url("acme"), SAVE, token)
    assert denied.status_code == 403
    challenge = denied.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge and 'scope="stowage:write"' in challenge
    read = rpc("tools/call", {"name": "items_list", "arguments": {}})
    assert post(gateway.url("acme"), read, token).status_code == 200


def test_a_valid_token_is_accepted_at_its_own_tenant(
    gateway: GatewayProcess, issuer: Issuer
) -> None:
    for tenant in ("acme", "globex"):
        token = issuer.token(gateway.url(tenant))
        assert post(gateway.url(tenant), rpc("tools/list"), token).status_code == 200


def test_each_tenant_publishes_protected_resource_metadata_naming_its_issuer(
    gateway: GatewayProcess, issuer: Issuer
) -> None:
    for tenant in ("acme", "globex"):
        url = f"{gateway.base}/.well-known/oauth-protected-resource/t/{tenant}/mcp"
        metadata = httpx.get(url).json()
        assert metadata["resource"] == gateway.url(tenant)
        assert metadata["authorization_servers"] == [issuer.url]
        assert "stowage:write" in metadata["scopes_supported"]
    unknown = httpx.get(f"{gateway.base}/.well-known/oauth-protected-resource/t/nobody/mcp")
    assert unknown.status_code == 404


def test_an_unknown_tenant_is_404(gateway: GatewayProcess, issuer: Issuer) -> None:
    response = post(gateway.url("nobody"), SAVE, issuer.token(gateway.url("nobody")))
    assert response.status_code == 404


def test_auth_failures_are_counted_by_reason(gateway: GatewayProcess, issuer: Issuer) -> None:
    post(gateway.url("acme"), SAVE, issuer.token("https://elsewhere.example/mcp"))
    metrics = httpx.get(f"{gateway.base}/metrics").text
    assert 'stowage_gateway_auth_failures_total{reason="audience",tenant="acme"}' in metrics


@pytest.mark.anyio
async def test_the_sdk_client_sees_an_error_not_a_session_when_the_token_is_bad(
    gateway: GatewayProcess, issuer: Issuer
) -> None:
    # The SDK wraps the HTTP 401 in a generic error (inside an ExceptionGroup).
    with pytest.raises(Exception):  # noqa: B017
        async with mcp_client(gateway.url("acme"), "garbage") as client:
            await client.list_tools()
