"""Keycloak's signing keys: a rotation, a spray of unknown key ids, clock skew.

JWKS fetches are counted where they land, in Keycloak's own access log.
"""

from __future__ import annotations

import base64
import json
import sys
import time
import uuid
from typing import Any

import anyio
import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from stowage_testing.gateway import MCP_HEADERS, post, rpc
from stowage_testing.tools import eventually
from tests.keycloak.conftest import JWKS_MIN_REFRESH, Tier
from tests.keycloak.linking import Linking, claims

pytestmark = [pytest.mark.postgres, pytest.mark.anyio]

LIST = rpc("tools/list")


def _certs(tier: Tier) -> int:
    return tier.keycloak.requests_to(f"/realms/{tier.realm}/protocol/openid-connect/certs")


def _kid(token: str) -> str:
    header = token.split(".")[0]
    kid: str = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]
    return kid


def _add_key(tier: Tier, name: str, priority: int, **config: list[str]) -> dict[str, Any]:
    """A key provider in the realm through the admin REST API; its key as Keycloak lists it."""
    admin = tier.keycloak.admin()
    realm_id = admin.get(f"/{tier.realm}").json()["id"]
    provider = "rsa" if "privateKey" in config else "rsa-generated"
    created = admin.post(
        f"/{tier.realm}/components",
        json={
            "name": name,
            "providerId": provider,
            "providerType": "org.keycloak.keys.KeyProvider",
            "parentId": realm_id,
            "config": {"priority": [str(priority)], "enabled": ["true"], "active": ["true"],
                       "algorithm": ["RS256"], **config},
        },
    )  # fmt: skip
    assert created.status_code == 201, created.text
    keys = admin.get(f"/{tier.realm}/keys").json()["keys"]
    [key] = [k for k in keys if k.get("providerPriority") == priority and k["algorithm"] == "RS256"]
    return dict(key)


def test_a_rotated_key_is_accepted_after_one_jwks_refetch_and_the_old_one_still_works(
    tier: Tier,
) -> None:
    linking = Linking(tier.url())
    user = tier.new_user()
    before = linking.sign_in(user)["access_token"]
    assert post(tier.url(), LIST, before).status_code == 200
    fetched = _certs(tier)

    _add_key(tier, "rotated", priority=1000)
    after = linking.sign_in(user)["access_token"]
    assert _kid(after) != _kid(before)
    # Within JWKS_MIN_REFRESH of the last fetch the new kid is unknown (401, no fetch);
    # past it, one refetch finds it.
    eventually(
        lambda: post(tier.url(), LIST, after).status_code == 200,
        timeout=JWKS_MIN_REFRESH + 5, what="the rotated key accepted",
    )  # fmt: skip
    assert _certs(tier) - fetched == 1
    assert post(tier.url(), LIST, before).status_code == 200  # the old key is still published
    print(f"\nkey rotation: the new kid was accepted after {_certs(tier) - fetched} JWKS fetch",
          file=sys.stderr)  # fmt: skip


async def test_a_spray_of_unknown_key_ids_refetches_the_jwks_at_most_once_per_interval(
    tier: Tier,
) -> None:
    rogue = RSAKey.generate_key(2048, private=True)
    now = int(time.time())
    body = {"iss": tier.issuer, "aud": tier.url(), "sub": "mallory", "iat": now, "exp": now + 300,
            "auth_time": now, "scope": "stowage:read"}  # fmt: skip
    tokens = [
        jwt.encode({"alg": "RS256", "kid": uuid.uuid4().hex}, body, rogue) for _ in range(1000)
    ]
    statuses: list[int] = []
    fetched = _certs(tier)
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=30) as http:

        async def send(batch: list[str]) -> None:
            for token in batch:
                answer = await http.post(
                    tier.url(),
                    json=LIST,
                    headers={**MCP_HEADERS, "authorization": f"Bearer {token}"},
                )
                statuses.append(answer.status_code)

        async with anyio.create_task_group() as tg:
            for lane in range(16):
                tg.start_soon(send, tokens[lane::16])
    took = time.monotonic() - started
    fetches = _certs(tier) - fetched
    print(f"\nunknown-kid spray: {len(tokens)} tokens in {took:.1f}s caused {fetches} JWKS "
          f"fetch(es) (at most one per {JWKS_MIN_REFRESH:g}s)", file=sys.stderr)  # fmt: skip
    assert statuses == [401] * len(tokens)
    assert fetches <= 1 + took / JWKS_MIN_REFRESH


def test_keycloak_shaped_tokens_from_a_clock_a_few_seconds_off_are_accepted_within_the_leeway(
    tier: Tier,
) -> None:
    """A key Keycloak publishes (imported: the test can sign), Keycloak's claims, times shifted."""
    own = RSAKey.generate_key(2048, private=True)
    pem = own.as_pem(private=True).decode()
    published = _add_key(tier, "imported", priority=5, privateKey=[pem])
    shape = claims(Linking(tier.url()).sign_in(tier.new_user())["access_token"])

    def shifted(by: int, *, exp_in: int = 300) -> str:
        now = int(time.time())
        body = {**shape, "iat": now + by, "auth_time": now + by, "exp": now + by + exp_in,
                "jti": uuid.uuid4().hex}  # fmt: skip
        return jwt.encode({"alg": "RS256", "typ": "JWT", "kid": published["kid"]}, body, own)

    # The key is Keycloak's: accepted once the gateway refetched the JWKS (bounded by the interval).
    eventually(
        lambda: post(tier.url(), LIST, shifted(0)).status_code == 200,
        timeout=JWKS_MIN_REFRESH + 5, what="the imported key accepted",
    )  # fmt: skip
    # Keycloak's clock 5 s ahead of the gateway's: issued "in the future", within the leeway.
    assert post(tier.url(), LIST, shifted(+5)).status_code == 200
    # 5 s behind: a token that has just expired by the gateway's clock, within the leeway.
    assert post(tier.url(), LIST, shifted(-5, exp_in=2)).status_code == 200
    # Past the leeway (30 s here) either way: refused.
    assert post(tier.url(), LIST, shifted(+60)).status_code == 401
    expired = post(tier.url(), LIST, shifted(-60, exp_in=2))
    assert expired.status_code == 401 and "expired" in expired.json()["error_description"]
