"""A user (or an operator) revokes access: older tokens are refused at every gateway.

Real parts throughout: the tenant's worker on PostgreSQL keeps the revocation,
gateway processes enforce it, Redis carries it between them, and the ``mcp``
client calls the revoking tool.
"""

from __future__ import annotations

import base64
import json
import math
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from gateway._settings import with_password
from gateway.auth._revocation_bus import CHANNEL, decode
from stowage_testing.gateway import (
    GatewayProcess,
    Issuer,
    mcp_client,
    post,
    rpc,
    running_gateway,
    tenant_entry,
    tool_error,
)
from stowage_testing.redis import redis_server, running_redis
from stowage_testing.tools import eventually
from stowage_testing.worker import WorkerProcess
from tenant_worker.storage._db import sync_url
from tests.dev.oauth import Client as OAuthClient
from tests.dev.oauth import discover
from tests.gateway.conftest import WorkerFor

pytestmark = [pytest.mark.postgres, pytest.mark.anyio]

#: A gateway that would not notice a revocation for an hour on its own: whatever
#: it refuses sooner came through Redis.
NO_POLLING = ("--revocation-sync-interval", "3600")
SAVE = rpc("tools/call", {"name": "items_save", "arguments": {"id": "kept", "data": {"k": 1}}})


def _status(url: str, token: str) -> int:
    return post(url, rpc("tools/list"), token).status_code


def _refused_within(url: str, token: str, seconds: float) -> float:
    """Poll until ``token`` is refused at ``url``; how long it took."""
    start = time.monotonic()
    while _status(url, token) != 401:
        assert time.monotonic() - start < seconds, f"still accepted after {seconds}s"
    return time.monotonic() - start


def _audit(worker: WorkerProcess) -> list[dict[str, Any]]:
    engine = sa.create_engine(sync_url(worker.database_url))
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT user_id, detail FROM audit_events "
                "WHERE action = 'access.revoke' ORDER BY id"
            )
        ).all()
    engine.dispose()
    return [{"user_id": r.user_id, **r.detail} for r in rows]


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


# Over 60 lines on purpose: one end-to-end scenario across two gateways and Redis, read top to
# bottom.
async def test_a_user_who_revokes_access_is_refused_at_a_second_gateway_within_seconds(
    worker_for: WorkerFor, issuer: Issuer, tmp_path: Path
) -> None:
    worker = worker_for("revoke")
    with running_redis() as redis_url:
        first = GatewayProcess(workdir=tmp_path / "a", redis_url=redis_url)
        second = GatewayProcess(workdir=tmp_path / "b", redis_url=redis_url, extra_args=NO_POLLING)
        # Both replicas serve the same public URL, so the audience is the first one's.
        tenants = [tenant_entry("revoke", first, issuer, worker.address)]
        with (
            running_gateway(first.workdir, tenants, port=first.port, redis_url=redis_url),
            running_gateway(
                second.workdir,
                tenants,
                port=second.port,
                redis_url=redis_url,
                extra_args=NO_POLLING,
            ),
        ):
            user = _unique("rita")
            token = issuer.token(first.url("revoke"), subject=user)
            bystander = issuer.token(first.url("revoke"), subject=_unique("bert"))
            assert post(second.url("revoke"), SAVE, token).status_code == 200
            assert _status(second.url("revoke"), bystander) == 200

            async with mcp_client(first.url("revoke"), token) as client:
                listed = {t.name: t for t in (await client.list_tools()).tools}
                revoke = listed["my_access_revoke"]
                assert revoke.annotations is not None and revoke.annotations.destructive_hint
                result = await client.call_tool("my_access_revoke", {"confirm": True})
            assert not result.is_error, result
            assert result.structured_content is not None
            revoked_at = time.time()

            # The revoking gateway refuses at once; the other within seconds, via Redis.
            refused = post(first.url("revoke"), rpc("tools/list"), token)
            assert refused.status_code == 401
            challenge = refused.headers["www-authenticate"]
            assert 'error="invalid_token"' in challenge and "revoked" in challenge
            assert "revoked" in refused.json()["error_description"]
            # From ChatGPT (the Apps SDK's metadata on the call), the refusal is the
            # tool-level challenge, so it offers to connect the app again in the chat.
            from_chatgpt = rpc(
                "tools/call",
                {
                    "name": "items_get",
                    "arguments": {"id": "kept"},
                    "_meta": {"openai/userAgent": "ChatGPT/1.2026.300"},
                },
            )
            in_band = post(first.url("revoke"), from_chatgpt, token)
            assert in_band.status_code == 200
            answer = in_band.json()["result"]
            assert tool_error(answer)["error"]["code"] == "access_revoked"
            [linked] = answer["_meta"]["mcp/www_authenticate"]
            assert linked == in_band.headers["www-authenticate"] == challenge
            _refused_within(second.url("revoke"), token, seconds=5)
            took = time.time() - revoked_at
            print(f"\nrevocation refused at the second gateway {took:.3f}s after the tool call")
            assert _status(second.url("revoke"), bystander) == 200

            # A new sign-in (a token issued after the revocation) works, and the data is kept.
            fresh = issuer.token(first.url("revoke"), subject=user, now=revoked_at + 1)
            for gateway in (first, second):
                got = post(
                    gateway.url("revoke"),
                    rpc("tools/call", {"name": "items_get", "arguments": {"id": "kept"}}),
                    fresh,
                )
                assert got.status_code == 200, got.text
                assert got.json()["result"]["structuredContent"]["object"]["data"] == {"k": 1}

    (audit,) = [a for a in _audit(worker) if a["requested_by"] == "user"]
    assert audit["scope"] == "identity" and audit["user_id"]


async def test_a_revocation_survives_a_gateway_restart_without_redis(
    worker_for: WorkerFor, issuer: Issuer, tmp_path: Path
) -> None:
    worker = worker_for("restart")
    first = GatewayProcess(workdir=tmp_path / "a")
    polling = GatewayProcess(
        workdir=tmp_path / "b", extra_args=("--revocation-sync-interval", "0.5")
    )
    tenants = [tenant_entry("restart", first, issuer, worker.address)]
    with running_gateway(first.workdir, tenants, port=first.port) as gateway:
        user = _unique("rob")
        token = issuer.token(first.url("restart"), subject=user)
        with running_gateway(
            polling.workdir, tenants, port=polling.port, extra_args=polling.extra_args
        ):
            assert _status(polling.url("restart"), token) == 200
            async with mcp_client(first.url("restart"), token) as client:
                await client.list_tools()  # as clients do before calling: the result is checked
                result = await client.call_tool("my_access_revoke", {"confirm": True})
            assert not result.is_error, result
            revoked_at = time.time()
            # Without Redis, another replica catches up from the worker on its own.
            took = _refused_within(polling.url("restart"), token, seconds=5)
            print(f"\nrevocation refused by a polling gateway (no Redis) after {took:.3f}s")

        gateway.stop()
        gateway.start()
        # The restarted gateway asks the worker before it judges the first token.
        assert _status(first.url("restart"), token) == 401
        fresh = issuer.token(first.url("restart"), subject=user, now=revoked_at + 1)
        assert _status(first.url("restart"), fresh) == 200


def _access(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stowage", "access", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_revoke_reaches_a_redis_that_wants_the_password_kept_apart_from_the_url(
    worker_for: WorkerFor,
) -> None:
    worker = worker_for("locked")
    password = "s3cret/with:odd@chars"
    target = ("--worker", worker.address, "--tenant", "locked", "--all-before", "now")
    with redis_server() as server:
        admin = redis.Redis.from_url(server.url)
        admin.config_set("requirepass", password)
        listener = redis.Redis.from_url(with_password(server.url, password)).pubsub()
        listener.subscribe(CHANNEL)
        assert listener.get_message(timeout=5)["type"] == "subscribe"

        # Without the password: the worker has the revocation, Redis refuses the push.
        refused = _access("revoke", *target, "--redis-url", server.url)
        assert refused.returncode == 0, refused.stderr
        assert "not pushed (Redis unreachable)" in refused.stderr

        # With it from the variable, as a deployment's Secret gives it to the gateway.
        pushed = _access(
            "revoke", *target, "--redis-url", server.url, env={"STOWAGE_REDIS_PASSWORD": password}
        )
        assert pushed.returncode == 0, pushed.stderr
        assert "pushed to the gateways through Redis" in pushed.stdout
        message = listener.get_message(timeout=5)
        assert message is not None and message["type"] == "message", message
        decoded = decode(message["data"])
        assert decoded is not None and decoded[0] == "locked"
        listener.close()


def test_an_operator_revokes_one_identity_then_every_token_issued_before_a_time(
    worker_for: WorkerFor, issuer: Issuer, tmp_path: Path
) -> None:
    worker = worker_for("ops")
    with running_redis() as redis_url:
        gateway = GatewayProcess(workdir=tmp_path / "g", redis_url=redis_url, extra_args=NO_POLLING)
        tenants = [tenant_entry("ops", gateway, issuer, worker.address)]
        with running_gateway(
            gateway.workdir, tenants, port=gateway.port, redis_url=redis_url, extra_args=NO_POLLING
        ):
            url = gateway.url("ops")
            bob, carol = _unique("bob"), _unique("carol")
            bob_token = issuer.token(url, subject=bob)
            carol_token = issuer.token(url, subject=carol)
            assert _status(url, bob_token) == _status(url, carol_token) == 200
            target = ("--worker", worker.address, "--tenant", "ops")

            ran = _access(
                "revoke", *target, "--issuer", issuer.url, "--subject", bob,
                "--reason", "INC-42 lost laptop", "--redis-url", redis_url,
            )  # fmt: skip
            assert ran.returncode == 0, ran.stderr
            assert f"tokens of {bob}" in ran.stdout and "pushed to the gateways" in ran.stdout
            _refused_within(url, bob_token, seconds=5)
            assert _status(url, carol_token) == 200

            ran = _access("revoke", *target, "--all-before", "now", "--redis-url", redis_url)
            assert ran.returncode == 0, ran.stderr
            assert "every token of the tenant" in ran.stdout
            cut = time.time()
            _refused_within(url, carol_token, seconds=5)
            assert _status(url, issuer.token(url, subject=carol, now=cut + 1)) == 200

            listed = _access("list", *target)
            assert listed.returncode == 0, listed.stderr
            assert "all identities" in listed.stdout

            # Mistakes are refused with the reason, and change nothing.
            future = _access("revoke", *target, "--all-before", "2099-01-01T00:00:00Z")
            assert future.returncode == 1 and "future" in future.stderr
            half = _access("revoke", *target, "--issuer", issuer.url)
            assert half.returncode == 2 and "--subject" in half.stderr
            naive = _access("revoke", *target, "--all-before", "2026-01-01T00:00:00")
            assert naive.returncode == 2 and "time zone" in naive.stderr

    audits = [a for a in _audit(worker) if a["requested_by"] == "operator"]
    assert [a["scope"] for a in audits] == ["identity", "tenant"]
    assert audits[0]["reason"] == "INC-42 lost laptop"


# --- revocation across refreshes (the development server's OAuth flow) ------------------------


def _claims(token: str) -> dict[str, Any]:
    """The payload of a JWT the tests already trust (the gateway checks signatures)."""
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


def _after_the_second_of(moment: float) -> None:
    """Let the clock pass ``moment``'s whole second, bounded: JWT times are whole seconds.

    Without it a token issued in the second of a revocation is refused by its ``iat``
    alone, and the refresh below would prove nothing about ``auth_time``.
    """
    eventually(lambda: time.time() >= math.floor(moment) + 1, timeout=2, what="the next second")


def _oauth_client(issuer: Issuer, resource: str) -> OAuthClient:
    return OAuthClient.register(discover(issuer.url), resource)


def _refreshed(client: OAuthClient, tokens: dict[str, Any]) -> dict[str, Any]:
    answer = client.refresh(tokens["refresh_token"])
    assert answer.status_code == 200, answer.text
    refreshed: dict[str, Any] = answer.json()
    return refreshed


# Over 60 lines on purpose: the whole story of one user, two gateways and Redis, read top to bottom.
async def test_a_refreshed_token_of_a_revoked_grant_is_refused_and_a_new_sign_in_gets_back_in(
    worker_for: WorkerFor, issuer: Issuer, tmp_path: Path
) -> None:
    worker = worker_for("relink")
    with running_redis() as redis_url:
        first = GatewayProcess(workdir=tmp_path / "a", redis_url=redis_url)
        second = GatewayProcess(workdir=tmp_path / "b", redis_url=redis_url, extra_args=NO_POLLING)
        tenants = [tenant_entry("relink", first, issuer, worker.address)]
        with (
            running_gateway(first.workdir, tenants, port=first.port, redis_url=redis_url),
            running_gateway(
                second.workdir, tenants, port=second.port, redis_url=redis_url,
                extra_args=NO_POLLING,
            ),
        ):  # fmt: skip
            url = first.url("relink")
            client = _oauth_client(issuer, url)
            user = _unique("ruth")
            signed_in = client.sign_in(user)
            claims = _claims(signed_in["access_token"])
            assert claims["auth_time"] <= claims["iat"] and claims["sid"]
            assert post(url, SAVE, signed_in["access_token"]).status_code == 200
            bystander = client.sign_in(_unique("bea"))

            async with mcp_client(url, signed_in["access_token"]) as mcp:
                await mcp.list_tools()
                result = await mcp.call_tool("my_access_revoke", {"confirm": True})
            assert not result.is_error, result
            revoked_at = time.time()
            _refused_within(second.url("relink"), signed_in["access_token"], seconds=5)

            # ChatGPT refreshes: the authorization server still honours the grant, and the
            # new token is newer than the revocation, but it is of the same sign-in.
            _after_the_second_of(revoked_at)
            refreshed = _refreshed(client, signed_in)
            again = _claims(refreshed["access_token"])
            assert again["iat"] > revoked_at
            assert (again["auth_time"], again["sid"]) == (claims["auth_time"], claims["sid"])
            for gateway in (first, second):
                refused = post(gateway.url("relink"), SAVE, refreshed["access_token"])
                assert refused.status_code == 401, refused.text
                assert "revoked" in refused.json()["error_description"]
            # ... and so is every later refresh of that grant.
            assert _status(url, _refreshed(client, refreshed)["access_token"]) == 401
            # Another user's grant is untouched, refreshed or not.
            assert _status(url, _refreshed(client, bystander)["access_token"]) == 200

            # A new sign-in is a new session, after the revocation: it gets back in, everywhere.
            back = client.sign_in(user)
            fresh = _claims(back["access_token"])
            assert fresh["auth_time"] > revoked_at and fresh["sid"] != claims["sid"]
            for gateway in (first, second):
                got = post(
                    gateway.url("relink"),
                    rpc("tools/call", {"name": "items_get", "arguments": {"id": "kept"}}),
                    back["access_token"],
                )
                assert got.status_code == 200, got.text
            # Its refreshes keep working.
            assert _status(url, _refreshed(client, back)["access_token"]) == 200


def test_an_operator_revocation_and_a_tenant_cut_off_hold_across_refreshes(
    worker_for: WorkerFor, issuer: Issuer, tmp_path: Path
) -> None:
    worker = worker_for("cutoff")
    with running_redis() as redis_url:
        gateway = GatewayProcess(workdir=tmp_path / "g", redis_url=redis_url, extra_args=NO_POLLING)
        tenants = [tenant_entry("cutoff", gateway, issuer, worker.address)]
        with running_gateway(
            gateway.workdir, tenants, port=gateway.port, redis_url=redis_url, extra_args=NO_POLLING
        ):
            url = gateway.url("cutoff")
            client = _oauth_client(issuer, url)
            dan, erin = _unique("dan"), _unique("erin")
            dans, erins = client.sign_in(dan), client.sign_in(erin)
            target = ("--worker", worker.address, "--tenant", "cutoff", "--redis-url", redis_url)

            # An operator ends one user's access: their refreshed token stays out.
            ran = _access("revoke", *target, "--issuer", issuer.url, "--subject", dan)
            assert ran.returncode == 0, ran.stderr
            _refused_within(url, dans["access_token"], seconds=5)
            _after_the_second_of(time.time())
            assert _status(url, _refreshed(client, dans)["access_token"]) == 401
            assert _status(url, client.sign_in(dan)["access_token"]) == 200
            erins = _refreshed(client, erins)  # refresh tokens rotate: keep the new one
            assert _status(url, erins["access_token"]) == 200

            # A tenant-wide cut-off: every sign-in before it is out, refreshed or not.
            ran = _access("revoke", *target, "--all-before", "now")
            assert ran.returncode == 0, ran.stderr
            cut = time.time()
            _refused_within(url, erins["access_token"], seconds=5)
            _after_the_second_of(cut)
            assert _status(url, _refreshed(client, erins)["access_token"]) == 401
            assert _status(url, client.sign_in(erin)["access_token"]) == 200


def test_without_auth_time_a_refresh_undoes_a_revocation_unless_the_tenant_requires_it(
    worker_for: WorkerFor, issuer: Issuer, tmp_path: Path
) -> None:
    """A server that sends no ``auth_time``: ``iat`` decides (and a warning says so), or 401."""
    worker = worker_for("noauthtime")
    polling = ("--revocation-sync-interval", "0.2")
    gateway = GatewayProcess(workdir=tmp_path / "g", extra_args=polling)
    lenient = tenant_entry("noauthtime", gateway, issuer, worker.address)
    strict = tenant_entry("strict", gateway, issuer, worker_for("strict").address)
    strict["auth"]["requireAuthTime"] = True
    with running_gateway(gateway.workdir, [lenient, strict], port=gateway.port, extra_args=polling):
        url, user = gateway.url("noauthtime"), _unique("nora")
        bare = issuer.token(url, subject=user, auth_time=None, sid=None)
        assert "auth_time" not in _claims(bare)
        assert _status(url, bare) == 200
        warnings = [
            line for line in gateway.log_lines()
            if "without auth_time" in line.get("msg", "") and line.get("tenant") == "noauthtime"
        ]  # fmt: skip
        assert len(warnings) == 1, warnings

        ran = _access("revoke", "--worker", worker.address, "--tenant", "noauthtime",
                      "--issuer", issuer.url, "--subject", user)  # fmt: skip
        assert ran.returncode == 0, ran.stderr
        revoked_at = time.time()
        eventually(lambda: _status(url, bare) == 401, timeout=5, what="the revocation applied")
        _after_the_second_of(revoked_at)
        # Only iat to go by: a token issued later (as a refresh would be) is accepted.
        assert _status(url, issuer.token(url, subject=user, auth_time=None)) == 200
        # With auth_time, the same later token of the earlier sign-in is refused.
        earlier = issuer.token(url, subject=user, auth_time=int(revoked_at) - 60)
        assert _status(url, earlier) == 401
        assert (
            len([ln for ln in gateway.log_lines() if "without auth_time" in ln.get("msg", "")]) == 1
        )

        # A tenant that requires auth_time refuses the bare token outright.
        refused = post(gateway.url("strict"), rpc("tools/list"), issuer.token(
            gateway.url("strict"), subject=user, auth_time=None))  # fmt: skip
        assert refused.status_code == 401
        assert "auth_time" in refused.json()["error_description"]
        assert (
            _status(gateway.url("strict"), issuer.token(gateway.url("strict"), subject=user)) == 200
        )
