"""Issuer keys over real HTTP: discovery, caching and the bounded refresh on an unknown kid."""

from __future__ import annotations

import httpx
import pytest
from joserfc.jwk import RSAKey

from gateway.auth._jwks import JwksCache, discovery_urls
from stowage_testing.gateway import Issuer

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_discovery_tries_rfc8414_path_insertion_then_openid_configuration() -> None:
    assert discovery_urls("https://login.example/tenant/x") == [
        "https://login.example/.well-known/oauth-authorization-server/tenant/x",
        "https://login.example/tenant/x/.well-known/openid-configuration",
    ]


async def test_keys_are_discovered_and_cached(issuer: Issuer) -> None:
    async with httpx.AsyncClient() as http:
        cache = JwksCache(http, min_refresh_interval=60)
        first = await cache.key(issuer.url, None, issuer.key.kid)
        second = await cache.key(issuer.url, None, issuer.key.kid)
    assert first is not None and first.kid == issuer.key.kid
    assert second is first
    assert cache.fetches == 1


async def test_unknown_kids_refetch_at_most_once_per_interval(issuer: Issuer) -> None:
    async with httpx.AsyncClient() as http:
        cache = JwksCache(http, min_refresh_interval=60)
        assert await cache.key(issuer.url, None, issuer.key.kid) is not None
        for n in range(20):
            assert await cache.key(issuer.url, None, f"rogue-{n}") is None
        assert cache.fetches == 1  # fetched a moment ago: rogue kids trigger no refetch


async def test_a_rotated_key_is_picked_up_on_first_sight_of_its_kid(issuer: Issuer) -> None:
    old = issuer.server.key
    async with httpx.AsyncClient() as http:
        cache = JwksCache(http, min_refresh_interval=0)
        assert await cache.key(issuer.url, None, old.kid) is not None
        issuer.server.key = RSAKey.generate_key(2048, parameters={"kid": "rotated"}, private=True)
        try:
            rotated = await cache.key(issuer.url, None, "rotated")
        finally:
            issuer.server.key = old
    assert rotated is not None and rotated.kid == "rotated"
    assert cache.fetches == 2


async def test_symmetric_keys_in_a_jwks_are_ignored(issuer: Issuer) -> None:
    # The dev issuer publishes one RSA key; an "oct" key could never be selected.
    async with httpx.AsyncClient() as http:
        jwks = (await http.get(f"{issuer.url}/jwks")).json()
    assert {k["kty"] for k in jwks["keys"]} == {"RSA"}
    assert all("d" not in k for k in jwks["keys"])  # no private parts published
