"""``make bench-worker``: Put/Get over gRPC to a worker on PostgreSQL, beside raw psycopg.

Both sides run in this process against one throwaway PostgreSQL cluster, in
the same run: the worker (a real ``stowage worker serve`` process) in its own
database, the baseline doing the same inserts and reads with raw psycopg in a
second, identically migrated database. Measures, does not assert.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import grpc
import psycopg

from bench._stats import Row, report, summarize, with_ratios
from stowage.v1 import worker_pb2 as pb
from stowage.v1 import worker_pb2_grpc
from tenant_worker import migrate
from tests.support.postgres import PostgresServer, running_postgres
from tests.support.worker import running_worker

#: The tenant the benchmark's worker serves (running_worker's default); every call names it.
TENANT = "acme"

PAYLOAD = {"title": "benchmark object", "tags": ["a", "b", "c"], "n": 42, "body": "x" * 64}
Op = Callable[[int], Awaitable[None]]


async def _drive(
    concurrency: int, seconds: float, make_ops: Callable[[int], Awaitable[tuple[Op, Op]]]
) -> dict[str, list[float]]:
    """Each client alternates put(i) then get(i) until time is up."""
    latencies: dict[str, list[float]] = {"put": [], "get": []}
    clients = [await make_ops(c) for c in range(concurrency)]
    deadline = time.perf_counter() + seconds

    async def run(put: Op, get: Op) -> None:
        i = 0
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            await put(i)
            t1 = time.perf_counter()
            await get(i)
            t2 = time.perf_counter()
            latencies["put"].append(t1 - t0)
            latencies["get"].append(t2 - t1)
            i += 1

    await asyncio.gather(*(run(p, g) for p, g in clients))
    return latencies


async def bench_worker(
    address: str, concurrency: int, seconds: float
) -> tuple[dict[str, list[float]], float]:
    channel = grpc.aio.insecure_channel(address)
    stub = worker_pb2_grpc.TenantWorkerStub(channel)
    data = json.dumps(PAYLOAD).encode()

    async def make_ops(c: int) -> tuple[Op, Op]:
        user = await stub.ResolveUser(
            pb.ResolveUserRequest(issuer="https://bench/", subject=uuid.uuid4().hex),
            metadata=(("x-stowage-tenant", TENANT),),
        )
        md = (("x-stowage-tenant", TENANT), ("x-stowage-user-id", user.user_id))

        async def put(i: int) -> None:
            await stub.PutObject(
                pb.PutObjectRequest(collection="items", id=f"o{i}", data_json=data),
                metadata=(*md, ("x-correlation-id", f"b{c}-{i}")),
                timeout=10,
            )

        async def get(i: int) -> None:
            await stub.GetObject(
                pb.GetObjectRequest(collection="items", id=f"o{i}"), metadata=md, timeout=10
            )

        return put, get

    start = time.perf_counter()
    result = await _drive(concurrency, seconds, make_ops)
    elapsed = time.perf_counter() - start
    await channel.close()
    return result, elapsed


async def bench_psycopg(
    dsn: str, concurrency: int, seconds: float
) -> tuple[dict[str, list[float]], float]:
    data = json.dumps(PAYLOAD)
    conns: list[psycopg.AsyncConnection[object]] = []

    async def make_ops(c: int) -> tuple[Op, Op]:
        conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
        conns.append(conn)
        owner = uuid.uuid4().hex
        await conn.execute(
            "INSERT INTO users (id, issuer, subject, created_at) VALUES (%s, %s, %s, now())",
            (owner, "https://bench/", owner),
        )

        async def put(i: int) -> None:
            now = datetime.now(UTC)
            await conn.execute(
                "INSERT INTO objects (owner, collection, object_id, data, schema_version, version,"
                " size_bytes, created_at, updated_at, correlation_id)"
                " VALUES (%s, 'items', %s, %s, 1, 1, %s, %s, %s, %s)"
                " ON CONFLICT (owner, collection, object_id) DO UPDATE SET data = EXCLUDED.data,"
                " version = objects.version + 1, updated_at = EXCLUDED.updated_at",
                (owner, f"o{i}", data, len(data), now, now, f"b{c}-{i}"),
            )

        async def get(i: int) -> None:
            cur = await conn.execute(
                "SELECT data, version FROM objects WHERE owner = %s AND collection = 'items'"
                " AND object_id = %s",
                (owner, f"o{i}"),
            )
            await cur.fetchone()

        return put, get

    start = time.perf_counter()
    result = await _drive(concurrency, seconds, make_ops)
    elapsed = time.perf_counter() - start
    for conn in conns:
        await conn.close()
    return result, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=5.0, help="per target and level")
    args = parser.parse_args()

    rows: list[Row] = []
    with running_postgres() as server, tempfile.TemporaryDirectory() as tmp:
        worker_db = _fresh(server, "bench_worker")
        baseline_db = _fresh(server, "bench_raw")
        with running_worker(server.sqlalchemy_url(worker_db), Path(tmp), {}) as worker:
            for level in args.concurrency:
                for target, run in (
                    (
                        "raw psycopg (baseline)",
                        lambda n: bench_psycopg(server.dsn(baseline_db), n, args.seconds),
                    ),
                    ("worker over gRPC", lambda n: bench_worker(worker.address, n, args.seconds)),
                ):
                    latencies, elapsed = asyncio.run(run(level))
                    for op in ("put", "get"):
                        rows.append(summarize(target, op, level, latencies[op], elapsed))
    rows = with_ratios(rows, "raw psycopg (baseline)")
    report(
        "worker",
        rows,
        {
            "seconds_per_level": args.seconds,
            "payload_bytes": len(json.dumps(PAYLOAD)),
            "what": "each client alternates put then get of its own objects; ops/s counts "
            "each operation type over the level's wall time",
        },
    )


def _fresh(server: PostgresServer, prefix: str) -> str:
    name = server.create_database(prefix)
    migrate(server.sqlalchemy_url(name))
    with psycopg.connect(server.dsn(name)) as conn:
        conn.execute("ANALYZE")
    return name


if __name__ == "__main__":
    main()
