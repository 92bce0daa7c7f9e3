"""The gateway's calls to a worker on one long-lived ``Calls`` stream, against real workers.

Each call on the stream must answer exactly as its own RPC would (results, refusals
with their trailing metadata, another tenant's worker); a worker that stops must
answer the calls under way before it goes; a worker that has no stream (an older
one, while a release rolls) must still be served, an RPC a call.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import grpc
import pytest
import yaml

from gateway._errors import (
    Conflict,
    NotFound,
    PermanentError,
    QuotaExceeded,
    TemporaryError,
    WrongWorker,
)
from gateway._types import CorrelationId, UserId
from gateway.forwarding._worker import WorkerClient, WorkerPool
from stowage_testing.gateway import WORKER_POLICY
from stowage_testing.postgres import PostgresServer
from stowage_testing.tools import free_port
from stowage_testing.worker import WorkerProcess, running_worker
from tenant_worker import migrate
from tenant_worker._server import serve
from tenant_worker._settings import WorkerSettings
from tenant_worker.rpc._servicer import WorkerServicer

pytestmark = [pytest.mark.postgres, pytest.mark.anyio]

CID = CorrelationId("0123456789abcdef0123456789abcdef")


@pytest.fixture(autouse=True)
def _collected() -> Iterator[None]:
    yield
    gc.collect()  # the closed channels, and with the last of them gRPC's poller thread


@pytest.fixture
def worker(postgres: PostgresServer, tmp_path: Path) -> Iterator[WorkerProcess]:
    url = postgres.sqlalchemy_url(postgres.create_database("stream"))
    with running_worker(url, tmp_path / "worker", WORKER_POLICY) as w:
        yield w


async def _save(client: WorkerClient, user: UserId, key: str, **kw: Any) -> dict[str, Any]:
    return await client.put_object(
        user,
        CID,
        collection="items",
        object_id=key,
        data={"key": key},
        expected_version=kw.get("expected_version"),
        idempotency_key="",
        ttl_seconds=0,
    )


async def _get(client: WorkerClient, user: UserId, key: str) -> dict[str, Any]:
    return await client.get_object(user, CID, collection="items", object_id=key)


async def test_calls_under_way_together_share_one_stream_and_answer_as_their_rpcs(
    worker: WorkerProcess,
) -> None:
    pool = WorkerPool(timeout=10)
    try:
        client = pool.client(worker.address, "acme")
        user = await client.resolve_user("https://issuer.example", "many", CID)
        keys = [f"o{i}" for i in range(40)]
        saved = await asyncio.gather(*(_save(client, user, k) for k in keys))
        assert [s["object"]["version"] for s in saved] == [1] * len(keys)
        got = await asyncio.gather(*(_get(client, user, k) for k in keys))
        assert [g["object"]["data"]["key"] for g in got] == keys  # each its own answer
        assert client._calls.supported and client._calls._stream is not None

        # Refusals keep their code and trailing metadata: the conflict's current object.
        with pytest.raises(Conflict) as conflict:
            await _save(client, user, "o3", expected_version=7)
        assert conflict.value.current is not None
        assert conflict.value.current["version"] == 1
        assert conflict.value.current["data"] == {"key": "o3"}
        with pytest.raises(NotFound):
            await _get(client, user, "missing")

        # Each call is checked as its RPC was: the worker refuses another tenant's.
        stranger = pool.client(worker.address, "globex")
        with pytest.raises(WrongWorker):
            await stranger.resolve_user("https://issuer.example", "many", CID)
    finally:
        await pool.close()


async def test_a_stopping_worker_answers_the_calls_under_way_and_none_is_cut_off(
    worker: WorkerProcess,
) -> None:
    """Calls keep coming while the worker is told to stop (SIGTERM, as a pod is) and
    comes back: each is answered, or refused as retriable; none is cut off mid-way
    (CANCELLED, which says nothing of whether a save was applied)."""
    pool = WorkerPool(timeout=10)
    outcomes: list[str] = []
    try:
        client = pool.client(worker.address, "acme")
        user = await client.resolve_user("https://issuer.example", "stopping", CID)
        stopped = anyio.Event()

        async def load(n: int) -> None:
            i = 0
            while not stopped.is_set() or i < 5:
                key = f"c{n}-{i}"
                try:
                    await _save(client, user, key)
                    outcomes.append("saved")
                except TemporaryError:
                    outcomes.append("retriable")
                except PermanentError as e:
                    outcomes.append(f"failed: {e}")
                i += 1

        async def restart() -> None:
            await anyio.sleep(0.5)
            await anyio.to_thread.run_sync(worker.stop)
            assert worker.proc is not None and worker.proc.returncode == 0, worker.logs()[-2000:]
            await anyio.to_thread.run_sync(worker.start)
            stopped.set()

        async with anyio.create_task_group() as tg:
            for n in range(8):
                tg.start_soon(load, n)
            tg.start_soon(restart)
    finally:
        await pool.close()
    failed = [o for o in outcomes if o.startswith("failed")]
    assert failed == [], failed[:5]
    assert outcomes.count("saved") > 8 * 5, outcomes.count("saved")


@contextlib.asynccontextmanager
async def _worker_in_process(url: str, policy: Path) -> Any:
    port = free_port()
    settings = WorkerSettings.from_env(
        {},
        database_url=url,
        tenant="acme",
        listen=f"127.0.0.1:{port}",
        policy_file=policy,
    )
    stop = asyncio.Event()
    task = asyncio.get_running_loop().create_task(serve(settings, stop))
    try:
        yield f"127.0.0.1:{port}"
    finally:
        stop.set()
        await task


async def test_a_worker_without_the_stream_is_called_an_rpc_a_call(
    postgres: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker older than the gateway (while a release rolls) answers ``Calls``
    UNIMPLEMENTED, as gRPC does for a method a server lacks: its calls are sent again
    as RPCs of their own, then every later one too."""

    async def no_such_method(self: WorkerServicer, requests: Any, context: Any) -> None:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")  # gRPC's own

    monkeypatch.setattr(WorkerServicer, "Calls", no_such_method)
    url = postgres.sqlalchemy_url(postgres.create_database("older"))
    migrate(url)
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(WORKER_POLICY))
    pool = WorkerPool(timeout=10)
    async with _worker_in_process(url, policy) as address:
        try:
            client = pool.client(address, "acme")
            user = await client.resolve_user("https://issuer.example", "older", CID)
            assert not client._calls.supported
            saved = await asyncio.gather(*(_save(client, user, f"k{i}") for i in range(5)))
            assert [s["object"]["version"] for s in saved] == [1] * 5
            assert (await _get(client, user, "k2"))["object"]["data"] == {"key": "k2"}
        finally:
            await pool.close()


@pytest.fixture
def roomy_worker(postgres: PostgresServer, tmp_path: Path) -> Iterator[WorkerProcess]:
    """Objects up to 2 MiB, and messages up to 3 MiB each way."""
    url = postgres.sqlalchemy_url(postgres.create_database("roomy"))
    policy = {
        **WORKER_POLICY,
        "quotas": {"maxObjects": 1000, "maxBytes": "1Gi", "maxObjectBytes": "2Mi"},
    }
    env = {"STOWAGE_WORKER_MAX_MESSAGE_BYTES": str(3 * 2**20)}
    with running_worker(url, tmp_path / "roomy", policy, env=env) as w:
        yield w


async def test_large_requests_and_answers_leave_the_calls_beside_them_alone(
    roomy_worker: WorkerProcess,
) -> None:
    """Batches are cut by size, a large request goes as an RPC of its own, and an answer
    larger than the worker sends fails alone (RESOURCE_EXHAUSTED, as its RPC did): the
    stream and the calls on it go on."""
    pool = WorkerPool(timeout=20)
    try:
        client = pool.client(roomy_worker.address, "acme")
        user = await client.resolve_user("https://issuer.example", "roomy", CID)
        blobs = {f"m{i}": str(i) * (300 * 1024) for i in range(8)}  # together past a batch
        blobs["big"] = "b" * (1536 * 1024)  # past a frame: an RPC of its own

        async def save(key: str) -> dict[str, Any]:
            return await client.put_object(
                user,
                CID,
                collection="items",
                object_id=key,
                data={"blob": blobs[key]},
                expected_version=None,
                idempotency_key="",
                ttl_seconds=0,
            )

        saved = await asyncio.gather(*(save(k) for k in blobs))
        assert [s["object"]["version"] for s in saved] == [1] * len(blobs)
        stream = client._calls._stream
        got = await asyncio.gather(*(_get(client, user, k) for k in blobs))
        assert [g["object"]["data"]["blob"] for g in got] == list(blobs.values())

        async def whole_page() -> dict[str, Any]:  # about 4 MiB: more than the worker sends
            return await client.list_objects(
                user, CID, collection="items", page_size=100, cursor=""
            )

        outcomes = await asyncio.gather(
            whole_page(), _get(client, user, "m3"), return_exceptions=True
        )
        assert isinstance(outcomes[0], QuotaExceeded), outcomes[0]
        assert "larger than" in str(outcomes[0])
        assert not isinstance(outcomes[1], BaseException), outcomes[1]
        assert outcomes[1]["object"]["data"]["blob"] == blobs["m3"]
        assert client._calls._stream is stream and not stream.closed  # the same stream
    finally:
        await pool.close()
