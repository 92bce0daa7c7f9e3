"""Tenant ``intro`` checks every token at Keycloak's introspection endpoint; ``acme`` by JWKS.

The gateway authenticates to the endpoint as the confidential client
``stowage-gateway``, its secret read from ``--secrets-dir`` as the chart mounts it.
Then what Keycloak-side endings do to tool calls: a disabled user, a revoked
refresh token. A JWT checked by its signature lives until it expires (Keycloak's
``accessTokenLifespan``, 300 s in the realm); one checked by introspection ends
within the answer's reuse time (``--introspection-cache-seconds``, 1 s here).
"""

from __future__ import annotations

import httpx
import pytest

from stowage_testing.gateway import post, rpc
from stowage_testing.tools import eventually
from tests.keycloak.conftest import Tier
from tests.keycloak.linking import CLIENT_ID, Linking

pytestmark = [pytest.mark.postgres]

SAVE = rpc("tools/call", {"name": "items_save", "arguments": {"id": "x", "data": {"v": 1}}})


def _introspections(tier: Tier) -> int:
    realm = tier.introspected_realm
    return tier.keycloak.requests_to(f"/realms/{realm}/protocol/openid-connect/token/introspect")


def test_every_token_is_introspected_at_keycloak_with_client_authentication(tier: Tier) -> None:
    linking = Linking(tier.url("intro"))
    linking.discover()
    assert linking.resource_metadata["authorization_servers"] == [
        tier.keycloak.issuer(tier.introspected_realm)
    ]
    tokens = linking.sign_in(tier.new_user(tier.introspected_realm))
    asked = _introspections(tier)
    saved = post(tier.url("intro"), SAVE, tokens["access_token"])
    assert saved.status_code == 200 and not saved.json()["result"].get("isError"), saved.text
    assert _introspections(tier) == asked + 1
    # The refreshed token too; an answer is reused only briefly, never past exp.
    refreshed = linking.refreshed(tokens)["access_token"]
    assert post(tier.url("intro"), rpc("tools/list"), refreshed).status_code == 200
    assert _introspections(tier) == asked + 2


def test_a_disabled_user_is_out_at_once_by_introspection_and_at_expiry_by_signature(
    tier: Tier,
) -> None:
    jwks, intro = Linking(tier.url("acme")), Linking(tier.url("intro"))
    at_acme = jwks.sign_in(username := tier.new_user())
    at_intro = intro.sign_in(intro_user := tier.new_user(tier.introspected_realm))
    assert post(tier.url("acme"), SAVE, at_acme["access_token"]).status_code == 200
    assert post(tier.url("intro"), SAVE, at_intro["access_token"]).status_code == 200

    admin = tier.keycloak.admin()
    for realm, user in ((tier.realm, username), (tier.introspected_realm, intro_user)):
        disabled = admin.put(f"/{realm}/users/{tier.user_id(user, realm)}", json={"enabled": False})
        assert disabled.status_code == 204, disabled.text

    # Introspection says inactive: refused within the answer's reuse time.
    eventually(
        lambda: post(tier.url("intro"), SAVE, at_intro["access_token"]).status_code == 401,
        timeout=5, what="the disabled user's token refused",
    )  # fmt: skip
    # A JWT checked by its signature stays good until it expires...
    assert post(tier.url("acme"), SAVE, at_acme["access_token"]).status_code == 200
    # ... but Keycloak refuses to refresh it, so the link ends then.
    refused = jwks.refresh(at_acme["refresh_token"])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"


def test_a_refresh_token_revoked_at_keycloak_ends_the_link(tier: Tier) -> None:
    jwks, intro = Linking(tier.url("acme")), Linking(tier.url("intro"))
    at_acme = jwks.sign_in(tier.new_user())
    at_intro = intro.sign_in(tier.new_user(tier.introspected_realm))
    for linking, tokens in ((jwks, at_acme), (intro, at_intro)):
        revoked = httpx.post(
            linking.metadata["revocation_endpoint"],
            data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token",
                  "client_id": CLIENT_ID},
            timeout=30,
        )  # fmt: skip
        assert revoked.status_code == 200, revoked.text
        assert linking.refresh(tokens["refresh_token"]).status_code == 400
    eventually(
        lambda: post(tier.url("intro"), SAVE, at_intro["access_token"]).status_code == 401,
        timeout=5, what="the revoked session's token refused by introspection",
    )  # fmt: skip
    assert post(tier.url("acme"), SAVE, at_acme["access_token"]).status_code == 200
