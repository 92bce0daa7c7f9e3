"""The worker dying, hostile request bodies, and tenant file reloads: the gateway stays up."""

from __future__ import annotations

import gc
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway._types import AuthConfig, Principal, Tenant, TenantName
from gateway.auth._revocations import Revocations, Standing
from gateway.forwarding._worker import WorkerPool
from stowage.tenant_spec import TenantSpec
from stowage_testing.gateway import (
    WORKER_POLICY,
    GatewayProcess,
    Issuer,
    mcp_client,
    post,
    rpc,
    running_gateway,
    tenant_entry,
    tool_error,
)
from stowage_testing.postgres import PostgresServer
from stowage_testing.tools import eventually
from stowage_testing.worker import WorkerProcess, running_worker
from tests.gateway.conftest import WorkerFor

pytestmark = pytest.mark.postgres


@pytest.fixture
def own_worker(postgres: PostgresServer, tmp_path: Path) -> Iterator[WorkerProcess]:
    url = postgres.sqlalchemy_url(postgres.create_database("gwkill"))
    with running_worker(url, tmp_path / "worker", WORKER_POLICY) as w:
        yield w


@pytest.fixture
def pair(
    own_worker: WorkerProcess, issuer: Issuer, tmp_path: Path
) -> Iterator[tuple[GatewayProcess, WorkerProcess]]:
    g = GatewayProcess(workdir=tmp_path / "gw")
    g.workdir.mkdir()
    g.write_tenants([tenant_entry("acme", g, issuer, own_worker.address)])
    with running_gateway(g.workdir, port=g.port) as started:
        yield started, own_worker


def structured(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    if result.get("isError"):
        return {"is_error": True, **tool_error(result)}
    return {"is_error": False, **result["structuredContent"]}


def save(key: str, version: int) -> dict[str, Any]:
    args = {"id": "doc", "data": {"v": version}, "idempotency_key": key}
    return rpc("tools/call", {"name": "items_save", "arguments": args})


GET = rpc("tools/call", {"name": "items_get", "arguments": {"id": "doc"}})


def test_a_killed_worker_gives_retriable_errors_then_recovers_with_nothing_half_written(
    pair: tuple[GatewayProcess, WorkerProcess], issuer: Issuer
) -> None:
    gateway, worker = pair
    url = gateway.url("acme")
    token = issuer.token(url, subject="survivor")
    assert structured(post(url, save("k1", 1), token))["object"]["version"] == 1

    worker.kill()
    down = structured(post(url, save("k2", 2), token))
    assert down["is_error"]
    assert down["error"]["code"] == "unavailable" and down["error"]["retriable"] is True
    assert "Retry" in down["hint"]
    read = structured(post(url, GET, token))
    assert read["error"]["code"] == "unavailable"
    assert "AioRpcError" not in json.dumps(down) and "grpc" not in json.dumps(down).lower()
    assert httpx.get(f"{gateway.base}/healthz").status_code == 200
    assert gateway.alive()

    worker.start()
    deadline = time.monotonic() + 20
    while (got := structured(post(url, GET, token)))["is_error"]:
        assert time.monotonic() < deadline, got
    assert got["object"]["data"] == {"v": 1}  # the failed write left nothing behind
    retried = structured(post(url, save("k2", 2), token))
    assert retried["object"]["version"] == 2
    replayed = structured(post(url, save("k2", 2), token))
    assert replayed["replayed"] is True and replayed["object"]["version"] == 2
    metrics = httpx.get(f"{gateway.base}/metrics").text
    assert 'stowage_gateway_upstream_errors_total{code="UNAVAILABLE",tenant="acme"}' in metrics


@pytest.mark.anyio
async def test_a_tenants_first_call_waits_for_a_worker_still_coming_up_to_read_revocations(
    own_worker: WorkerProcess,
) -> None:
    """A tool call asks a worker that cannot yet tell the tenant's revocations again,
    within a budget: a worker coming up (a new pod, a restart) makes the tenant's first
    call wait, not fail. Any other request (or a call without a budget) does not wait."""
    spec = TenantSpec(auth=AuthConfig("https://issuer.example", "https://acme.example/mcp"))
    tenant = Tenant(TenantName("acme"), own_worker.address, spec)
    principal = Principal("https://issuer.example", "someone", issued_at=time.time())

    async def standings() -> tuple[Standing, Standing]:
        pool = WorkerPool(timeout=10)
        try:
            own_worker.kill()
            revocations = Revocations(pool, read_seconds=60)
            impatient = await revocations.standing(tenant, principal)
            starting = threading.Thread(target=own_worker.start)
            starting.start()
            try:
                patient = await revocations.standing(tenant, principal, patient=True)
            finally:
                starting.join()
            return impatient, patient
        finally:
            await pool.close()

    assert await standings() == (Standing.UNKNOWN, Standing.GOOD)
    gc.collect()  # the closed channels, and with the last of them gRPC's poller thread


def test_malformed_json_rpc_gets_a_json_rpc_error_and_the_gateway_stays_up(
    gateway: GatewayProcess, issuer: Issuer
) -> None:
    url = gateway.url("acme")
    token = issuer.token(url)
    broken = post(url, b'{"jsonrpc": "2.0", "id": 1, "method": ', token)
    assert broken.status_code in (200, 400)
    assert broken.json()["error"]["code"] == -32700
    not_rpc = post(url, {"hello": "world"}, token)
    assert not_rpc.status_code in (200, 400) and "error" in not_rpc.json()
    unknown = post(url, rpc("no/such/method"), token)
    assert unknown.json()["error"]["code"] == -32601
    unknown_tool = post(url, rpc("tools/call", {"name": "nope", "arguments": {}}), token)
    assert unknown_tool.json()["result"]["isError"] is True
    wrong_args = post(url, rpc("tools/call", {"name": "items_get", "arguments": {}}), token)
    assert tool_error(wrong_args.json()["result"])["error"]["code"] == "invalid_argument"
    assert post(url, rpc("tools/list"), token).status_code == 200


def test_a_wrong_content_type_is_rejected_with_400(gateway: GatewayProcess, issuer: Issuer) -> None:
    url = gateway.url("acme")
    token = issuer.token(url)
    response = post(url, rpc("tools/list"), token, **{"content-type": "text/plain"})
    assert response.status_code in (400, 415)
    assert post(url, rpc("tools/list"), token).status_code == 200


def test_an_oversized_body_gets_413_before_it_is_read_in_full(
    gateway: GatewayProcess, issuer: Issuer
) -> None:
    url = gateway.url("acme")
    token = issuer.token(url)
    big = rpc("tools/call", {"name": "items_save", "arguments": {"data": {"x": "y" * 2_000_000}}})
    assert post(url, big, token).status_code == 413

    def chunks() -> Iterator[bytes]:  # no content-length: the limit applies while reading
        yield b'{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"pad":"'
        for _ in range(40):
            yield b"z" * 65536
        yield b'"}}'

    streamed = httpx.post(
        url,
        content=chunks(),
        headers={"authorization": f"Bearer {token}", "content-type": "application/json",
                 "accept": "application/json, text/event-stream"},
        timeout=30,
    )  # fmt: skip
    assert streamed.status_code == 413
    assert post(url, rpc("tools/list"), token).status_code == 200


def test_a_request_for_the_public_host_is_served_and_an_unknown_host_is_421(
    gateway: GatewayProcess, issuer: Issuer
) -> None:
    url = gateway.url("acme")
    token = issuer.token(url)
    ok = post(url, rpc("tools/list"), token, host=f"127.0.0.1:{gateway.port}")
    assert ok.status_code == 200
    assert post(url, rpc("tools/list"), token, host="evil.example").status_code == 421


@pytest.mark.anyio
async def test_a_tenant_added_to_the_file_is_served_without_a_restart(
    worker_for: WorkerFor, issuer: Issuer, tmp_path: Path
) -> None:
    g = GatewayProcess(workdir=tmp_path)
    g.write_tenants([tenant_entry("acme", g, issuer, worker_for("acme").address)])
    with running_gateway(tmp_path, port=g.port):
        token = issuer.token(g.url("newco"))
        assert post(g.url("newco"), rpc("tools/list"), token).status_code == 404
        g.write_tenants(
            [tenant_entry(n, g, issuer, worker_for(n).address) for n in ("acme", "newco")]
        )
        deadline = time.monotonic() + 10
        while post(g.url("newco"), rpc("tools/list"), token).status_code != 200:
            assert time.monotonic() < deadline
        g.tenants_file.write_text("tenants: [this is: not valid")  # a broken edit
        async with mcp_client(g.url("newco"), token) as client:
            saved = await client.call_tool("items_save", {"data": {"hello": "newco"}})
        assert not saved.is_error
        eventually(lambda: "tenant file rejected" in g.logs(), what="the broken edit is logged")
        assert post(g.url("newco"), rpc("tools/list"), token).status_code == 200


def test_requests_are_answered_while_a_large_tenant_file_is_reloaded(
    worker_for: WorkerFor, issuer: Issuer, tmp_path: Path
) -> None:
    g = GatewayProcess(workdir=tmp_path)
    g.write_tenants([tenant_entry("acme", g, issuer, worker_for("acme").address)])
    with running_gateway(tmp_path, port=g.port):
        token = issuer.token(g.url("late"))
        many = [tenant_entry(f"t{i}", g, issuer, "127.0.0.1:1") for i in range(4000)]
        reads_before = g.logs().count("tenant file changed")
        g.write_tenants([*many, tenant_entry("late", g, issuer, "127.0.0.1:1")])
        eventually(
            lambda: g.logs().count("tenant file changed") > reads_before,
            what="the gateway starts reading the large file",
        )
        answered_meanwhile = 0
        deadline = time.monotonic() + 60
        while post(g.url("late"), rpc("tools/list"), token).status_code == 404:
            assert time.monotonic() < deadline, "the large file was never loaded"
            assert httpx.get(f"{g.base}/healthz", timeout=30).status_code == 200
            answered_meanwhile += 1
        # The event loop kept answering while the file was parsed (a blocking
        # parse answers at most the one request that waited for it).
        assert answered_meanwhile >= 3, answered_meanwhile
