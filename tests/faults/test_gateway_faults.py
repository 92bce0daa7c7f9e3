"""Faults at the gateway under load: the gateway restarted, the shared Redis down and back.

The clients are MCP clients over real HTTP (raw JSON-RPC ``tools/call`` of
``items_save``, each request with its own ``X-Request-Id``, which the worker
stores as the object's correlation id), each with its own user's token.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from stowage_testing.gateway import (
    MCP_HEADERS,
    WORKER_POLICY,
    GatewayProcess,
    Issuer,
    rpc,
    running_gateway,
    tenant_entry,
)
from stowage_testing.postgres import PostgresServer
from stowage_testing.redis import redis_server
from stowage_testing.tools import eventually
from stowage_testing.worker import WorkerProcess, running_worker
from tests.faults.conftest import Report
from tests.faults.load import (
    FaultRow,
    Ledger,
    Send,
    Write,
    burst,
    first_ack_after,
    new_write,
    stored_objects,
    unexpected_errors,
    verify,
    wait_for_acks,
)

CLIENTS = 16
BEFORE, AFTER = 150, 150
COLLECTION = "items"
#: What a client may see while the gateway restarts: the connection refused or cut, or a 503.
CONNECTION_ERRORS = {"ConnectError", "RemoteProtocolError", "ReadError", "WriteError", "HTTP 503"}


@pytest.fixture
def tenant_worker(postgres: PostgresServer, tmp_path: Path) -> Iterator[tuple[WorkerProcess, str]]:
    """Tenant ``acme``'s worker on a database of its own, and that database's DSN."""
    database = postgres.create_database("faultgw")
    url = postgres.sqlalchemy_url(database)
    with running_worker(url, tmp_path / "worker", WORKER_POLICY, tenant="acme") as worker:
        yield worker, postgres.dsn(database)


def saver(client: httpx.Client, url: str) -> Send:
    """``items_save`` of one write; None when the save was acknowledged."""

    def send(write: Write) -> tuple[str, str] | None:
        arguments = {"id": write.object_id, "data": write.data, "idempotency_key": write.object_id}
        body = json.dumps(rpc("tools/call", {"name": "items_save", "arguments": arguments}))
        try:
            response = client.post(
                url, content=body, headers={"x-request-id": write.correlation_id}
            )
        except httpx.TransportError as e:
            return type(e).__name__, str(e)
        return judge(response, write)

    return send


def judge(response: httpx.Response, write: Write) -> tuple[str, str] | None:
    if "Traceback" in response.text or 'File "' in response.text:
        return "traceback in a response", response.text[:500]
    if response.status_code != 200:
        return f"HTTP {response.status_code}", response.text[:300]
    message = response.json()
    if "result" not in message:
        return "JSON-RPC error", response.text[:300]
    structured = message["result"]["structuredContent"]
    if message["result"].get("isError"):
        return f"tool error {structured['error']['code']}", response.text[:300]
    saved = structured["object"]
    if (saved["id"], saved["version"], saved["data"]) != (write.object_id, 1, write.data):
        return "wrong reply", response.text[:300]
    return None


def http_client(stack: ExitStack, token: str) -> httpx.Client:
    headers = {**MCP_HEADERS, "authorization": f"Bearer {token}"}
    return stack.enter_context(httpx.Client(headers=headers, timeout=15))


def test_a_gateway_restart_under_load_shows_clients_connection_errors_only_and_loses_no_save(
    tenant_worker: tuple[WorkerProcess, str], issuer: Issuer, tmp_path: Path, fault_report: Report
) -> None:
    worker, dsn = tenant_worker
    planned = GatewayProcess(workdir=tmp_path / "gateway")
    tenants = [tenant_entry("acme", planned, issuer, worker.address)]
    url = planned.url("acme")
    ledger = Ledger()
    with (
        running_gateway(planned.workdir, tenants, port=planned.port) as gateway,
        ExitStack() as stack,
    ):
        senders = [
            saver(http_client(stack, issuer.token(url, subject=f"writer-{i}")), url)
            for i in range(CLIENTS)
        ]
        with burst(CLIENTS, senders.__getitem__, "gw", ledger):
            wait_for_acks(ledger, BEFORE)
            fault_at = time.monotonic()
            gateway.stop()  # SIGTERM: uvicorn finishes what it is answering, then exits
            eventually(lambda: ledger.error_count() >= CLIENTS, what="clients find it gone")
            repair_at = time.monotonic()
            gateway.start()  # same port
            wait_for_acks(ledger, AFTER, since=repair_at)
        assert gateway.alive()
        assert "Traceback" not in gateway.logs()
    recovery = first_ack_after(ledger, repair_at)
    verdict = verify(ledger, stored_objects(dsn, COLLECTION))
    fault_report(
        FaultRow(
            "gateway restarted (SIGTERM, started again on the same port)",
            f"{CLIENTS} MCP clients → 1 gateway → 1 worker",
            len(ledger.acked),
            len(verdict.lost),
            ledger.errors,
            recovery + (repair_at - fault_at),
            recovery,
        )
    )
    assert unexpected_errors(ledger, CONNECTION_ERRORS) == {}
    assert ledger.error_count() >= CLIENTS
    assert verdict.lost == [] and verdict.foreign == [] and verdict.unknown == []
    assert len(ledger.acked) >= BEFORE + AFTER


#: A user's bucket: BURST calls, then 429 (refill of 1 a minute is negligible within the test).
BURST = 4
USERS = 8
LIMITED = {
    "rateLimits": {
        "perUser": {"requestsPerMinute": 1, "burst": BURST},
        "perTenant": {"requestsPerMinute": 60000, "burst": 10000},
    }
}
FAIL_OPEN_CALLS = 6
LIMITED_THEN = ["200"] * BURST + ["429"]


class Caller:
    """One user calling ``items_save`` through the gateways in turn (a load balancer)."""

    def __init__(
        self, name: str, gateways: list[GatewayProcess], token: str, ledger: Ledger
    ) -> None:
        self.name, self.gateways, self.ledger = name, gateways, ledger
        self.url = gateways[0].url("limited")
        self.token = token
        self.calls = 0

    def saves(self, count: int) -> list[str]:
        """``count`` saves, each through the next gateway; the outcome of each."""
        outcomes: list[str] = []
        with httpx.Client(
            headers={**MCP_HEADERS, "authorization": f"Bearer {self.token}"}, timeout=15
        ) as client:
            for _ in range(count):
                gateway = self.gateways[self.calls % len(self.gateways)]
                self.calls += 1
                write = new_write(0, self.calls, f"rl-{self.name}")
                self.ledger.record_sent(write)
                outcomes.append(self._save(client, gateway.url("limited"), write))
        return outcomes

    def _save(self, client: httpx.Client, url: str, write: Write) -> str:
        arguments: dict[str, Any] = {"id": write.object_id, "data": write.data}
        body = json.dumps(rpc("tools/call", {"name": "items_save", "arguments": arguments}))
        response = client.post(url, content=body, headers={"x-request-id": write.correlation_id})
        if response.status_code == 429:
            retry_after = int(response.headers.get("retry-after", "0"))
            kind = "429 with Retry-After" if retry_after >= 1 else "429 without Retry-After"
            self.ledger.record_error(kind, response.text[:300])
            return "429"
        failure = judge(response, write)
        if failure is None:
            self.ledger.record_ack(write)
            return "200"
        self.ledger.record_error(*failure)
        return failure[0]


def all_at_once(callers: list[Caller], count: int) -> list[list[str]]:
    with ThreadPoolExecutor(max_workers=len(callers)) as pool:
        return list(pool.map(lambda c: c.saves(count), callers))


# Over 60 lines on purpose: one fault scenario in its phases: Redis down, calls admitted, Redis
# back, the limit shared again.
def test_with_redis_down_calls_are_admitted_and_once_it_is_back_the_shared_limit_applies(
    postgres: PostgresServer, issuer: Issuer, tmp_path: Path, fault_report: Report
) -> None:
    database = postgres.create_database("faultredis")
    url = postgres.sqlalchemy_url(database)
    ledger = Ledger()
    with (
        redis_server() as redis,
        running_worker(url, tmp_path / "worker", WORKER_POLICY, tenant="limited") as worker,
    ):
        first = GatewayProcess(workdir=tmp_path / "a", redis_url=redis.url)
        second = GatewayProcess(workdir=tmp_path / "b", redis_url=redis.url)
        # Both replicas serve one public URL: the first one's is the audience.
        tenants = [tenant_entry("limited", first, issuer, worker.address, **LIMITED)]
        with (
            running_gateway(first.workdir, tenants, port=first.port, redis_url=redis.url) as a,
            running_gateway(second.workdir, tenants, port=second.port, redis_url=redis.url) as b,
        ):
            audience = a.url("limited")

            def caller(name: str) -> Caller:
                return Caller(name, [a, b], issuer.token(audience, subject=name), ledger)

            users = [caller(f"user-{i}") for i in range(USERS)]
            assert all_at_once(users, BURST + 1) == [LIMITED_THEN] * USERS

            fault_at = time.monotonic()
            redis.stop()
            # Every user's bucket is spent, yet with the limiter gone every call is admitted.
            assert all_at_once(users, FAIL_OPEN_CALLS) == [["200"] * FAIL_OPEN_CALLS] * USERS
            for gateway in (a, b):
                assert gateway.alive()
                assert httpx.get(f"{gateway.base}/healthz").status_code == 200
                assert "rate limiter unavailable, admitting the call" in gateway.logs()

            repair_at = time.monotonic()
            redis.start()  # empty: the buckets start full again
            probes = iter(range(1000))
            eventually(
                lambda: caller(f"probe-{next(probes)}").saves(BURST + 1) == LIMITED_THEN,
                timeout=20,
                what="both gateways share the limit through Redis again",
            )
            enforced_at = time.monotonic()
            assert all_at_once(users, BURST + 1) == [LIMITED_THEN] * USERS
            assert a.alive() and b.alive()
            logs = a.logs() + b.logs()
    verdict = verify(ledger, stored_objects(postgres.dsn(database), COLLECTION))
    fault_report(
        FaultRow(
            "Redis (shared rate limits) stopped, started again empty",
            f"{USERS} users x 2 gateways sharing Redis",
            len(ledger.acked),
            len(verdict.lost),
            ledger.errors,
            enforced_at - fault_at,
            enforced_at - repair_at,
        )
    )
    assert unexpected_errors(ledger, {"429 with Retry-After"}) == {}
    assert "Traceback" not in logs
    assert verdict.lost == [] and verdict.foreign == [] and verdict.unknown == []


def test_a_gateway_still_loading_its_tenants_answers_503_with_retry_after_never_404(
    tenant_worker: tuple[WorkerProcess, str], issuer: Issuer, tmp_path: Path
) -> None:
    worker, _ = tenant_worker
    gateway = GatewayProcess(workdir=tmp_path / "gateway")
    gateway.workdir.mkdir()
    # A large file takes the new process a while to read: calls arrive meanwhile.
    many = [tenant_entry(f"t{i}", gateway, issuer, "127.0.0.1:1") for i in range(4000)]
    gateway.write_tenants([*many, tenant_entry("acme", gateway, issuer, worker.address)])
    url = gateway.url("acme")
    token = issuer.token(url, subject="early-bird")
    statuses: list[int] = []

    def answered(client: httpx.Client) -> bool:
        try:
            response = client.post(url, content=json.dumps(rpc("tools/list")))
        except httpx.TransportError:
            return False  # not listening yet
        statuses.append(response.status_code)
        if response.status_code == 503:
            assert int(response.headers["retry-after"]) >= 1
            assert response.json()["error"] == "temporarily_unavailable"
        return response.status_code != 503

    headers = {**MCP_HEADERS, "authorization": f"Bearer {token}"}
    with (
        ThreadPoolExecutor(max_workers=1) as starting,
        httpx.Client(headers=headers, timeout=15) as client,
    ):
        started = starting.submit(gateway.start, 60.0)
        try:
            eventually(lambda: answered(client), timeout=60, what="the gateway serves acme")
            started.result()
        finally:
            gateway.stop()
    assert 503 in statuses, "no call arrived while the tenants were loading"
    assert statuses[-1] == 200 and set(statuses) == {503, 200}, statuses
