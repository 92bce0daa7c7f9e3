"""Rate limits: bursts get 429 with Retry-After; replicas share one limit through Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from stowage_testing.gateway import (
    GatewayProcess,
    Issuer,
    post,
    rpc,
    running_gateway,
    tenant_entry,
)
from stowage_testing.redis import running_redis
from tests.gateway.conftest import WorkerFor

pytestmark = pytest.mark.postgres

TIGHT = {
    "rateLimits": {
        "perUser": {"requestsPerMinute": 1, "burst": 3},
        "perTenant": {"requestsPerMinute": 1, "burst": 5},
    }
}


def tool_call(n: int) -> dict[str, object]:
    return rpc("tools/call", {"name": "items_list", "arguments": {}}, id=n)


@pytest.fixture
def tight_gateway(
    worker_for: WorkerFor, issuer: Issuer, tmp_path: Path
) -> Iterator[GatewayProcess]:
    g = GatewayProcess(workdir=tmp_path)
    g.write_tenants([tenant_entry("tight", g, issuer, worker_for("tight").address, **TIGHT)])
    with running_gateway(tmp_path, port=g.port) as started:
        yield started


def test_a_burst_beyond_the_users_bucket_gets_429_with_retry_after(
    tight_gateway: GatewayProcess, issuer: Issuer
) -> None:
    url = tight_gateway.url("tight")
    token = issuer.token(url, subject="bursty")
    statuses = [post(url, tool_call(n), token).status_code for n in range(3)]
    assert statuses == [200, 200, 200]
    limited = post(url, tool_call(4), token)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.json()["error"]["data"]["limit"] == "user"
    # Another user still has their own bucket (the tenant's holds 5).
    assert post(url, tool_call(5), issuer.token(url, subject="calm")).status_code == 200


def test_protocol_chatter_does_not_spend_the_tool_call_budget(
    tight_gateway: GatewayProcess, issuer: Issuer
) -> None:
    url = tight_gateway.url("tight")
    token = issuer.token(url, subject="chatty")
    init = rpc(
        "initialize",
        {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    )
    for n in range(10):
        assert post(url, init, token).status_code == 200
        assert post(url, rpc("ping", id=n), token).status_code == 200
        assert post(url, rpc("tools/list", id=n), token).status_code == 200
        notification = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        assert post(url, notification, token).status_code == 202
    assert [post(url, tool_call(n), token).status_code for n in range(3)] == [200, 200, 200]


@pytest.mark.redis
def test_two_gateways_sharing_redis_enforce_one_limit_together(
    worker_for: WorkerFor, issuer: Issuer, tmp_path: Path
) -> None:
    with running_redis() as redis_url:
        first = GatewayProcess(workdir=tmp_path / "a", redis_url=redis_url)
        second = GatewayProcess(workdir=tmp_path / "b", redis_url=redis_url)
        # Both replicas serve the same public URL, so the audience is the first one's.
        tenants = [
            {
                **tenant_entry("tight", first, issuer, worker_for("tight").address, **TIGHT),
                "rateLimits": {
                    "perUser": {"requestsPerMinute": 1, "burst": 4},
                    "perTenant": {"requestsPerMinute": 1, "burst": 100},
                },
            }
        ]
        with (
            running_gateway(first.workdir, tenants, port=first.port, redis_url=redis_url),
            running_gateway(second.workdir, tenants, port=second.port, redis_url=redis_url),
        ):
            token = issuer.token(first.url("tight"), subject=f"shared-{uuid.uuid4().hex[:6]}")
            statuses = [
                post(gw.url("tight"), tool_call(n), token).status_code
                for n, gw in enumerate([first, second] * 4)
            ]
    assert statuses.count(200) == 4
    assert statuses[4:] == [429] * 4
