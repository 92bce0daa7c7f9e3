"""Revocation across refreshes with Keycloak: its refreshed tokens keep ``auth_time``.

Keycloak goes on refreshing a grant the gateway has revoked (it knows nothing of
Stowage's revocations); the gateway refuses those tokens because they carry the
sign-in's ``auth_time``, and lets in only a new sign-in.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time

import httpx
import pytest

from stowage_testing.gateway import mcp_client, post, rpc
from stowage_testing.tools import eventually
from tests.keycloak.conftest import Tier
from tests.keycloak.linking import Linking, claims

pytestmark = [pytest.mark.postgres, pytest.mark.anyio]

LIST = rpc("tools/list")


def _status(tier: Tier, token: str) -> int:
    return post(tier.url(), LIST, token).status_code


def _after_the_second_of(moment: float) -> None:
    """Let the clock pass ``moment``'s whole second (JWT times are whole seconds), bounded."""
    eventually(lambda: time.time() >= math.floor(moment) + 1, timeout=2, what="the next second")


def _access(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stowage", "access", *args],
        capture_output=True, text=True, timeout=60, env=dict(os.environ),
    )  # fmt: skip


async def test_after_a_revocation_keycloak_refreshes_are_refused_and_only_a_new_sign_in_gets_in(
    tier: Tier,
) -> None:
    user = tier.new_user()
    linking = Linking(tier.url())
    # The user's browser: it keeps Keycloak's SSO session between sign-ins.
    with httpx.Client(timeout=30) as browser:
        tokens = linking.sign_in(user, browser=browser)
        signed_in = claims(tokens["access_token"])
        async with mcp_client(tier.url(), tokens["access_token"]) as client:
            await client.list_tools()
            result = await client.call_tool("my_access_revoke", {"confirm": True})
        assert not result.is_error, result
        revoked_at = time.time()
        assert _status(tier, tokens["access_token"]) == 401

        # Keycloak still refreshes the grant; the new token is newer than the revocation
        # but of the same sign-in, and is refused.
        _after_the_second_of(revoked_at)
        refreshed = linking.refreshed(tokens)
        again = claims(refreshed["access_token"])
        assert again["iat"] > revoked_at
        assert (again["auth_time"], again["sid"]) == (signed_in["auth_time"], signed_in["sid"])
        refused = post(tier.url(), LIST, refreshed["access_token"])
        assert refused.status_code == 401 and "revoked" in refused.json()["error_description"]

        # Linking again in the same browser reuses Keycloak's SSO session: no password
        # asked, the same auth_time, still refused. That is a refresh in disguise.
        reused = linking.sign_in(user, browser=browser)
        assert claims(reused["access_token"])["auth_time"] == signed_in["auth_time"]
        assert _status(tier, reused["access_token"]) == 401

        # Signing in again for real (prompt=login, or a new browser) gets back in.
        relogged = linking.sign_in(user, browser=browser, prompt="login")
        assert claims(relogged["access_token"])["auth_time"] > revoked_at
        assert _status(tier, relogged["access_token"]) == 200
        fresh = linking.sign_in(user)
        assert claims(fresh["access_token"])["sid"] != signed_in["sid"]
        assert _status(tier, fresh["access_token"]) == 200
        assert _status(tier, linking.refreshed(fresh)["access_token"]) == 200


def test_an_operator_revocation_and_a_tenant_cut_off_outlast_keycloak_refreshes(
    tier: Tier,
) -> None:
    linking = Linking(tier.url())
    dora, eve = tier.new_user(), tier.new_user()
    doras, eves = linking.sign_in(dora), linking.sign_in(eve)
    target = ("--worker", tier.workers["acme"], "--tenant", "acme")

    subject = claims(doras["access_token"])["sub"]
    ran = _access("revoke", *target, "--issuer", tier.issuer, "--subject", subject)
    assert ran.returncode == 0, ran.stderr
    eventually(lambda: _status(tier, doras["access_token"]) == 401, timeout=5, what="revoked")
    _after_the_second_of(time.time())
    assert _status(tier, linking.refreshed(doras)["access_token"]) == 401
    assert _status(tier, linking.sign_in(dora)["access_token"]) == 200
    eves = linking.refreshed(eves)
    assert _status(tier, eves["access_token"]) == 200

    ran = _access("revoke", *target, "--all-before", "now")
    assert ran.returncode == 0, ran.stderr
    cut = time.time()
    eventually(lambda: _status(tier, eves["access_token"]) == 401, timeout=5, what="cut off")
    _after_the_second_of(cut)
    assert _status(tier, linking.refreshed(eves)["access_token"]) == 401
    assert _status(tier, linking.sign_in(eve)["access_token"]) == 200
