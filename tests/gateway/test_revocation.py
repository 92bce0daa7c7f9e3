"""A user (or an operator) revokes access: older tokens are refused at every gateway.

Real parts throughout: the tenant's worker on PostgreSQL keeps the revocation,
gateway processes enforce it, Redis carries it between them, and the ``mcp``
client calls the revoking tool.
"""

from __future__ import annotations

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
from stowage_testing.worker import WorkerProcess
from tenant_worker.storage._db import sync_url
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
