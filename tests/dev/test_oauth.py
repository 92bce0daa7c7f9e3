"""The development authorization server, over real HTTP, through the real ``stowage dev``.

Each test runs the OAuth flow as an MCP client does and checks what the
gateway then accepts: discovery, registration, consent, PKCE, refresh token
rotation and reuse, revocation, client ID metadata documents, resource
indicators, scopes, and a restart that forgets nothing.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from authlib.oauth2.rfc9207 import AuthorizationServerMetadata as IssMetadata
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from stowage_testing.gateway import mcp_client, post, rpc
from stowage_testing.issuer import serve_in_thread
from stowage_testing.tools import free_port
from tests.dev.oauth import REDIRECT, Client, discover, pkce, redirect_params
from tests.dev.platform import DevPlatform
from tests.dev.test_platform import claims


@pytest.fixture(scope="module")
def platform(shared_platform: DevPlatform) -> DevPlatform:
    return shared_platform


@pytest.fixture(scope="module")
def metadata(platform: DevPlatform) -> dict[str, Any]:
    return discover(platform.issuer)


@pytest.fixture
def client(metadata: dict[str, Any], platform: DevPlatform) -> Client:
    return Client.register(metadata, platform.mcp_url)


def assert_accepted(platform: DevPlatform, access_token: str) -> None:
    assert post(platform.mcp_url, rpc("tools/list"), access_token).status_code == 200


def test_metadata_is_served_for_rfc8414_and_both_oidc_discovery_paths(
    platform: DevPlatform,
) -> None:
    urls = [
        f"{platform.base}/.well-known/oauth-authorization-server/dev-auth",
        f"{platform.base}/.well-known/openid-configuration/dev-auth",
        f"{platform.base}/dev-auth/.well-known/openid-configuration",
    ]
    documents = [httpx.get(url).raise_for_status().json() for url in urls]
    assert documents[0] == documents[1] == documents[2]
    metadata = AuthorizationServerMetadata(documents[0])
    metadata.validate(metadata_classes=[IssMetadata])  # authlib's own RFC 8414 / 9207 checks
    assert metadata["issuer"] == platform.issuer
    assert metadata["revocation_endpoint"] == f"{platform.issuer}/revoke"
    assert metadata["client_id_metadata_document_supported"] is True
    assert metadata["authorization_response_iss_parameter_supported"] is True
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["grant_types_supported"] == ["authorization_code", "refresh_token"]
    assert metadata["scopes_supported"] == ["stowage:read", "stowage:write"]


@pytest.mark.anyio
async def test_a_registered_client_signs_in_with_pkce_and_calls_tools_through_the_gateway(
    client: Client, platform: DevPlatform
) -> None:
    verifier, challenge = pkce()
    page = client.consent_page(challenge)
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert "Stowage dev login" in text and "Test Inspector" in text
    assert "stowage:read" in text and "stowage:write" in text
    assert platform.mcp_url in text

    code = redirect_params(client.decide(challenge, "inspector-user"))["code"]
    wrong = client.exchange(code, pkce()[0])
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    again = client.exchange(code, verifier)  # a code is spent by its first presentation
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"

    tokens = client.sign_in("inspector-user")
    assert tokens["token_type"] == "Bearer" and tokens["scope"] == "stowage:read stowage:write"
    assert tokens["refresh_token"] and tokens["expires_in"] == 3600
    access = claims(tokens["access_token"])
    assert access["iss"] == platform.issuer and access["aud"] == platform.mcp_url
    assert access["sub"] == "inspector-user" and access["client_id"] == client.client_id
    async with mcp_client(platform.mcp_url, tokens["access_token"]) as session:
        saved = await session.call_tool("notes_save", {"data": {"title": "signed in"}})
    assert not saved.is_error


def test_refresh_rotates_the_refresh_token_and_a_reused_one_revokes_the_grant(
    client: Client, platform: DevPlatform
) -> None:
    first = client.sign_in()
    second = client.refresh(first["refresh_token"])
    assert second.status_code == 200, second.text
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    assert rotated["scope"] == "stowage:read stowage:write"
    assert_accepted(platform, rotated["access_token"])

    reused = client.refresh(first["refresh_token"])
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    assert "already used" in reused.json()["error_description"]
    # The reuse ended the grant: the newest refresh token, never used, is refused too.
    after = client.refresh(rotated["refresh_token"])
    assert after.status_code == 400 and after.json()["error"] == "invalid_grant"


def test_a_refresh_may_narrow_the_scope_but_never_widen_it(client: Client) -> None:
    tokens = client.sign_in(scope="stowage:read")
    assert tokens["scope"] == "stowage:read"
    wider = client.refresh(tokens["refresh_token"], scope="stowage:read stowage:write")
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"
    full = client.sign_in()
    narrowed = client.refresh(full["refresh_token"], scope="stowage:read")
    assert narrowed.status_code == 200 and narrowed.json()["scope"] == "stowage:read"
    assert claims(narrowed.json()["access_token"])["scope"] == "stowage:read"


def test_a_refresh_token_answered_for_a_narrowed_scope_never_refreshes_the_wider_one(
    client: Client,
) -> None:
    full = client.sign_in()
    narrowed = client.refresh(full["refresh_token"], scope="stowage:read").json()
    assert narrowed["scope"] == "stowage:read"
    wider = client.refresh(narrowed["refresh_token"], scope="stowage:read stowage:write")
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"
    # Without a scope, a refresh asks for what its refresh token carries: the narrowed one.
    again = client.refresh(narrowed["refresh_token"])
    assert again.status_code == 200, again.text
    assert again.json()["scope"] == "stowage:read"
    assert claims(again.json()["access_token"])["scope"] == "stowage:read"
    later = client.refresh(again.json()["refresh_token"], scope="stowage:write")
    assert later.status_code == 400 and later.json()["error"] == "invalid_scope"


def test_registration_refuses_a_plain_http_redirect_uri_on_a_host_that_is_not_loopback(
    metadata: dict[str, Any],
) -> None:
    for uri in ("http://app.example/cb", "http://localhost.example/cb", "http://10.0.0.7/cb"):
        body = {"redirect_uris": [REDIRECT, uri], "client_name": "Plain"}
        answer = httpx.post(metadata["registration_endpoint"], json=body)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"] == "invalid_redirect_uri"
        description = answer.json()["error_description"]
        assert uri in description and "loopback" in description and "https" in description
    allowed = ["https://app.example/cb", "http://localhost:8000/cb", "http://[::1]:8000/cb"]
    answer = httpx.post(metadata["registration_endpoint"], json={"redirect_uris": allowed})
    assert answer.status_code == 201, answer.text
    assert answer.json()["redirect_uris"] == allowed


def test_no_answer_of_the_server_can_be_framed(client: Client) -> None:
    _, challenge = pkce()
    page = client.consent_page(challenge)
    unknown = Client(client.metadata, "never-registered", client.resource).consent_page(challenge)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert unknown.status_code == 400
    for answer in (page, unknown, httpx.get(client.metadata["jwks_uri"])):
        assert answer.headers["content-security-policy"] == "frame-ancestors 'none'"
        assert answer.headers["x-frame-options"] == "DENY"


def test_revoking_a_refresh_token_ends_its_grant(client: Client, platform: DevPlatform) -> None:
    tokens = client.sign_in()
    refreshed = client.refresh(tokens["refresh_token"]).json()
    revoked = client.revoke(refreshed["refresh_token"], token_type_hint="refresh_token")
    assert revoked.status_code == 200
    refused = client.refresh(refreshed["refresh_token"])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    # Revoking it again, or a token never issued, is not an error (RFC 7009 section 2.2).
    assert client.revoke(refreshed["refresh_token"]).status_code == 200
    assert client.revoke("never-issued").status_code == 200
    # Access tokens are JWTs the gateway checks alone: this server says it cannot revoke them.
    access = client.revoke(refreshed["access_token"])
    assert access.status_code == 400 and access.json()["error"] == "unsupported_token_type"
    # Another client cannot revoke this client's grant.
    other_tokens = client.sign_in()
    stranger = Client.register(client.metadata, platform.mcp_url)
    assert stranger.revoke(other_tokens["refresh_token"]).status_code == 400
    assert client.refresh(other_tokens["refresh_token"]).status_code == 200


def test_a_resource_the_server_does_not_serve_is_refused(
    client: Client, platform: DevPlatform
) -> None:
    elsewhere = f"{platform.base}/t/other/mcp"
    _, challenge = pkce()
    back = redirect_params(client.decide(challenge, "alice", resource=elsewhere))
    assert back["error"] == "invalid_target" and back["iss"] == platform.issuer
    assert back["state"] == "state-123"
    # Nor can a code for the served resource be exchanged for a token to another one.
    code, verifier = client.authorize()
    swapped = client.exchange(code, verifier, resource=elsewhere)
    assert swapped.status_code == 400 and swapped.json()["error"] == "invalid_target"
    # Nor can a refresh token be.
    tokens = client.sign_in()
    moved = client.refresh(tokens["refresh_token"], resource=elsewhere)
    assert moved.status_code == 400 and moved.json()["error"] == "invalid_target"


def test_unknown_scopes_are_dropped_and_a_request_of_only_unknown_scopes_is_refused(
    client: Client,
) -> None:
    _, challenge = pkce()
    page = html.unescape(client.consent_page(challenge, scope="stowage:read openid").text)
    assert "not granted: openid" in page
    tokens = client.sign_in(scope="stowage:read openid offline_access")
    assert tokens["scope"] == "stowage:read"
    assert claims(tokens["access_token"])["scope"] == "stowage:read"
    back = redirect_params(client.decide(challenge, "alice", scope="openid profile"))
    assert back["error"] == "invalid_scope"


def test_pkce_s256_is_required(client: Client) -> None:
    _, challenge = pkce()
    for missing in ({"code_challenge": ""}, {"code_challenge_method": "plain"}):
        back = redirect_params(client.decide(challenge, "alice", **missing))
        assert back["error"] == "invalid_request"


def test_denying_consent_sends_the_client_access_denied(client: Client) -> None:
    _, challenge = pkce()
    back = redirect_params(client.decide(challenge, "alice", decision="deny"))
    assert back["error"] == "access_denied" and back["state"] == "state-123"


def test_an_unregistered_redirect_uri_is_never_redirected_to(client: Client) -> None:
    _, challenge = pkce()
    query = client.authorization_query(challenge, redirect_uri="https://evil.example/cb")
    answer = httpx.get(client.metadata["authorization_endpoint"], params=query)
    assert answer.status_code == 400 and "location" not in answer.headers


@pytest.fixture(scope="module")
def documents() -> Iterator[str]:
    """Client ID metadata documents served over HTTP: a good one and two broken ones."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    bodies = {
        "good": {
            "client_id": f"{base}/clients/good.json",
            "client_name": "Document Client",
            "redirect_uris": [REDIRECT],
        },
        "impostor": {"client_id": f"{base}/clients/good.json", "redirect_uris": [REDIRECT]},
        "elsewhere": {
            "client_id": f"{base}/clients/elsewhere.json",
            "redirect_uris": ["https://elsewhere.example/cb"],
        },
        "plain": {
            "client_id": f"{base}/clients/plain.json",
            "redirect_uris": ["http://plain.example/cb"],
        },
    }

    async def document(request: Request) -> JSONResponse:
        return JSONResponse(bodies[request.path_params["name"]])

    app = Starlette(routes=[Route("/clients/{name}.json", document)])
    with serve_in_thread(app, port):
        yield base


def test_a_client_id_metadata_document_url_works_as_client_id(
    documents: str, metadata: dict[str, Any], platform: DevPlatform
) -> None:
    client = Client(metadata, f"{documents}/clients/good.json", platform.mcp_url)
    _, challenge = pkce()
    page = html.unescape(client.consent_page(challenge).text)
    assert "Document Client" in page and f"{documents}/clients/good.json" in page
    tokens = client.sign_in("doc-user")
    assert claims(tokens["access_token"])["client_id"] == client.client_id
    assert_accepted(platform, tokens["access_token"])
    refreshed = client.refresh(tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    assert client.revoke(refreshed.json()["refresh_token"]).status_code == 200


def test_a_client_id_metadata_document_must_name_its_own_url_and_the_redirect_uri(
    documents: str, metadata: dict[str, Any], platform: DevPlatform
) -> None:
    _, challenge = pkce()
    impostor = Client(metadata, f"{documents}/clients/impostor.json", platform.mcp_url)
    answer = impostor.consent_page(challenge)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_client"
    assert "client_id is not the URL" in answer.json()["error_description"]
    elsewhere = Client(metadata, f"{documents}/clients/elsewhere.json", platform.mcp_url)
    answer = elsewhere.consent_page(challenge)
    assert answer.status_code == 400 and "location" not in answer.headers
    missing = Client(metadata, f"{documents}/clients/none.json", platform.mcp_url)
    answer = missing.consent_page(challenge)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_client"
    plain = Client(metadata, f"{documents}/clients/plain.json", platform.mcp_url)
    answer = plain.consent_page(challenge, redirect_uri="http://plain.example/cb")
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_client"
    assert "http://plain.example/cb" in answer.json()["error_description"]


def test_a_registered_client_and_its_refresh_token_survive_a_restart(
    dev_platform: DevPlatform,
) -> None:
    metadata = discover(dev_platform.issuer)
    client = Client.register(metadata, dev_platform.mcp_url)
    tokens = client.sign_in("restart-user")
    revoked = client.sign_in("restart-user")
    assert client.revoke(revoked["refresh_token"]).status_code == 200
    narrowed = client.refresh(client.sign_in("restart-user")["refresh_token"], scope="stowage:read")
    assert narrowed.status_code == 200, narrowed.text

    dev_platform.restart()

    refreshed = client.refresh(tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    assert_accepted(dev_platform, refreshed.json()["access_token"])
    assert client.refresh(tokens["refresh_token"]).status_code == 400  # rotation remembered
    assert client.refresh(revoked["refresh_token"]).status_code == 400  # revocation too
    wider = client.refresh(narrowed.json()["refresh_token"], scope="stowage:write")
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"  # scope too
    again = client.sign_in("restart-user")  # the client is still registered
    assert_accepted(dev_platform, again["access_token"])
