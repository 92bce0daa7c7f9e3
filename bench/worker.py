"""``make bench-worker``: Put/Get over gRPC to a worker on PostgreSQL, beside raw psycopg.

Both sides run in this process against one throwaway PostgreSQL cluster, in
the same run: the worker (a real ``stowage worker serve`` process) in its own
database, the baseline in a second, identically migrated database: raw psycopg
running the worker's own prepared statements (its Put, with the version check,
the quotas, the usage counters and the audit row in one statement, and its Get),
with the parameters the worker gives them. A second, plainer reference runs a bare
upsert and select of the same rows (``raw psycopg, plain SQL``): the gap between
the two is what the worker's SQL costs PostgreSQL, the gap between the baseline
and the worker what the worker costs beside its SQL. Measures, does not assert.

The worker is called as the gateway calls it, its unary methods as frames on one
``Calls`` stream per channel, and (``--hops``, both by default) a second target on
the same worker makes an RPC a call, the path before the stream.

Beside throughput and latency it reports the CPU milliseconds per call of the
worker's process tree (all its processes) and of the PostgreSQL cluster, and,
with ``--processes 1 2``, a scale row: the same load on a worker serving with
two processes. ``--profile DIR`` records the one-process worker with py-spy
(raw folded stacks) during the highest concurrency. ``--compare CHECKOUT`` adds a
one-process worker running the code of another checkout of the repository (the
same tables), in rounds interleaved with this one's, for a before/after on a
busy machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import psycopg

from bench import _profile
from bench._cpu import CpuMeter, parent_of
from bench._stats import Row, report, summarize, with_ratios
from gateway.forwarding._stream import CallStream, StreamedChannel
from stowage.v1 import worker_pb2 as pb
from stowage.v1 import worker_pb2_grpc
from stowage.wire import TENANT_KEY
from stowage_testing.postgres import PostgresServer, running_postgres
from stowage_testing.worker import WorkerProcess, running_worker
from tenant_worker import migrate
from tenant_worker.objects import _objects, _pg_writes
from tenant_worker.storage._db import Prepared
from tenant_worker.storage._store import usage_slot

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
    address: str, concurrency: int, seconds: float, hop: str = "stream"
) -> tuple[dict[str, list[float]], float]:
    """``hop``: "stream", the unary calls on one ``Calls`` stream as the gateway makes
    them; "unary", an RPC a call."""
    channel = grpc.aio.insecure_channel(address)
    via: Any = channel
    calls = CallStream(channel, [(TENANT_KEY, TENANT)])
    if hop == "stream":
        via = StreamedChannel(channel, calls)
    stub = worker_pb2_grpc.TenantWorkerStub(via)
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
    await calls.close()
    await channel.close(grace=5)
    return result, elapsed


async def _raw_client(
    dsn: str, conns: list[psycopg.AsyncConnection[object]]
) -> tuple[psycopg.AsyncConnection[object], str]:
    """A raw psycopg client in autocommit, and the user of its own it writes as."""
    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    conns.append(conn)
    owner = uuid.uuid4().hex
    await conn.execute(
        "INSERT INTO users (id, issuer, subject, created_at) VALUES (%s, %s, %s, now())",
        (owner, "https://bench/", owner),
    )
    return conn, owner


async def _drive_raw(
    concurrency: int,
    seconds: float,
    make_ops: Callable[[int], Awaitable[tuple[Op, Op]]],
    conns: list[psycopg.AsyncConnection[object]],
) -> tuple[dict[str, list[float]], float]:
    """``_drive`` for raw psycopg clients; their connections closed after."""
    start = time.perf_counter()
    result = await _drive(concurrency, seconds, make_ops)
    elapsed = time.perf_counter() - start
    for conn in conns:
        await conn.close()
    return result, elapsed


async def bench_worker_sql(
    dsn: str, concurrency: int, seconds: float
) -> tuple[dict[str, list[float]], float]:
    """The worker's Put and Get statements with raw psycopg, prepared, in autocommit, as
    the worker runs them on its pooled connections (``storage._db.one_row``)."""
    data = json.dumps(PAYLOAD, separators=(",", ":"))
    conns: list[psycopg.AsyncConnection[object]] = []

    async def run(
        conn: psycopg.AsyncConnection[object], statement: Prepared[Any], values: dict[str, Any]
    ) -> Any:
        cursor = psycopg.AsyncRawCursor(conn)
        await cursor.execute(statement.sql, statement.args(values), prepare=True)
        row = await cursor.fetchone()
        assert row is not None, "the statement found nothing: the bench measures no work"
        return statement.row(row)

    async def make_ops(c: int) -> tuple[Op, Op]:
        conn, owner = await _raw_client(dsn, conns)
        target = {"owner": owner, "collection": "items", "key": "", "request_hash": "",
                  "retained_after": None, "expected": None, "slot": usage_slot(owner)}  # fmt: skip

        async def put(i: int) -> None:
            now = datetime.now(UTC)
            record = {"collection": "items", "id": f"o{i}", "data": PAYLOAD,
                      "updated_at": now.isoformat()}  # fmt: skip
            written = await run(conn, _pg_writes.PUT, {
                **target, "object_id": f"o{i}", "now": now, "correlation_id": f"b{c}-{i}",
                "data": data, "schema_version": 0, "size": len(data), "expires_at": None,
                "max_objects": 10**9, "max_bytes": 10**12, "user_max_objects": None,
                "user_max_bytes": None, "record": json.dumps(record),
            })  # fmt: skip
            assert written.written_version is not None, "the worker's Put refused the write"

        async def get(i: int) -> None:
            await run(conn, _objects._PG_GET, {**target, "object_id": f"o{i}"})

        return put, get

    return await _drive_raw(concurrency, seconds, make_ops, conns)


async def bench_psycopg(
    dsn: str, concurrency: int, seconds: float
) -> tuple[dict[str, list[float]], float]:
    data = json.dumps(PAYLOAD)
    conns: list[psycopg.AsyncConnection[object]] = []

    async def make_ops(c: int) -> tuple[Op, Op]:
        conn, owner = await _raw_client(dsn, conns)

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

    return await _drive_raw(concurrency, seconds, make_ops, conns)


BASELINE = "raw psycopg, the worker's SQL (baseline)"
PLAIN = "raw psycopg, plain SQL"
WORKER = "worker over gRPC"
COMPARE = "worker over gRPC (compared)"
#: The suffix of a target whose calls are RPCs of their own (not on the call stream).
UNARY = ", an RPC a call"


async def _bench_at(
    address: str, seconds: float, hop: str, concurrency: int
) -> tuple[dict[str, list[float]], float]:
    return await bench_worker(address, concurrency, seconds, hop)


@contextlib.contextmanager
def _worker(
    server: PostgresServer, tmp: Path, processes: int, checkout: Path | None = None
) -> Iterator[WorkerProcess]:
    """A worker serving with ``processes`` processes, on a fresh database; with
    ``checkout``, running that checkout's code instead of this one's."""
    name = f"w{processes}" if checkout is None else "compare"
    db = _fresh(server, f"bench_{name}")
    env = {}
    if checkout is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(checkout), str(checkout / "operator")])
        env["PYTHONSAFEPATH"] = "1"  # not this checkout, the working directory, first
    with contextlib.ExitStack() as stack:
        os.environ["STOWAGE_WORKER_PROCESSES"] = str(processes)  # read by the worker at start
        try:
            worker = stack.enter_context(
                running_worker(server.sqlalchemy_url(db), tmp / name, {}, env=env)
            )
        finally:
            os.environ.pop("STOWAGE_WORKER_PROCESSES", None)
        yield worker


def _round(
    target: str,
    level: int,
    seconds: float,
    run: Callable[[int], Coroutine[Any, Any, tuple[dict[str, list[float]], float]]],
    meter: CpuMeter,
) -> tuple[list[Row], dict[str, Any]]:
    meter.start()
    latencies, elapsed = asyncio.run(run(level))
    used = meter.delta()
    calls = len(latencies["put"]) + len(latencies["get"])
    rows = [summarize(target, op, level, latencies[op], elapsed) for op in ("put", "get")]
    cpu = {name: round(1000 * sec / calls, 3) if calls else None for name, sec in used.items()}
    return rows, {"target": target, "concurrency": level, "calls": calls, "cpu_ms_per_call": cpu}


def _levels(
    server: PostgresServer, workers: dict[str, WorkerProcess], args: argparse.Namespace
) -> tuple[list[Row], list[dict[str, Any]]]:
    """Each level: the baseline, then each worker, back to back; rows and CPU per call."""
    rows: list[Row] = []
    cpu: list[dict[str, Any]] = []
    baseline_db = _fresh(server, "bench_raw")
    plain_db = _fresh(server, "bench_plain")
    postgres = [_postmaster(server)]
    for level in args.concurrency:
        for target, db, bench_sql in (
            (BASELINE, baseline_db, bench_worker_sql),
            (PLAIN, plain_db, bench_psycopg),
        ):
            run = functools.partial(bench_sql, server.dsn(db), seconds=args.seconds)
            r, c = _round(target, level, args.seconds, run, CpuMeter({"postgres": postgres}))
            rows += r
            cpu.append(c)
        for target, worker in workers.items():
            assert worker.proc is not None
            spies = []
            profiled = f"worker-{level}" if target == WORKER else f"compare-{level}"
            if args.profile and target in (WORKER, COMPARE) and level == max(args.concurrency):
                spies = _profile.record({profiled: worker.proc.pid}, min(6.0, args.seconds),
                                        args.profile)  # fmt: skip
            meter = CpuMeter({"worker": [worker.proc.pid], "postgres": postgres})
            hop = "unary" if target.endswith(UNARY) else "stream"
            bench = functools.partial(_bench_at, worker.address, args.seconds, hop)
            r, c = _round(target, level, args.seconds, bench, meter)
            rows += r
            cpu.append(c)
            for spy in spies:
                spy.wait()
                print(_profile.top(args.profile / f"{profiled}.folded"))
    return rows, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=5.0, help="per target and level")
    parser.add_argument(
        "--processes", type=int, nargs="+", default=[1, 2], help="worker processes to compare"
    )
    parser.add_argument("--profile", type=Path, help="write py-spy folded stacks here")
    parser.add_argument(
        "--compare", type=Path, help="another checkout whose worker runs beside this one's"
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="times to run every level, interleaved"
    )
    parser.add_argument(
        "--hops",
        nargs="+",
        choices=("stream", "unary"),
        default=["stream", "unary"],
        help="how the one-process worker is called: on the gateway's call stream, and "
        "(a second target, on the same worker) an RPC a call",
    )
    args = parser.parse_args()

    with contextlib.ExitStack() as stack:
        server = stack.enter_context(running_postgres())
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        workers = {
            WORKER + (f", {n} processes" if n > 1 else ""): stack.enter_context(
                _worker(server, tmp, n)
            )
            for n in args.processes
        }
        if "stream" not in args.hops:
            workers[WORKER + UNARY] = workers.pop(WORKER)
        elif "unary" in args.hops:
            workers[WORKER + UNARY] = workers[WORKER]
        if args.compare is not None:
            workers[COMPARE] = stack.enter_context(_worker(server, tmp, 1, args.compare))
        rows, cpu = [], []
        for _ in range(args.rounds):
            r, c = _levels(server, workers, args)
            rows += r
            cpu += c
    rows = with_ratios(rows, BASELINE)
    print()
    for c in cpu:
        per = "  ".join(f"{k} {v} ms" for k, v in c["cpu_ms_per_call"].items())
        print(f"cpu per call  {c['target']:<42}{c['concurrency']:>4}  {per}")
    print()
    report(
        "worker",
        rows,
        {
            "seconds_per_level": args.seconds,
            "payload_bytes": len(json.dumps(PAYLOAD)),
            "what": "each client alternates put then get of its own objects; ops/s counts "
            "each operation type over the level's wall time",
            "cpu_ms_per_call": cpu,
        },
    )


def _postmaster(server: PostgresServer) -> int:
    """The cluster's postmaster: its children are the backends serving both sides."""
    with psycopg.connect(server.dsn()) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    return parent_of(int(row[0]))


def _fresh(server: PostgresServer, prefix: str) -> str:
    name = server.create_database(prefix)
    migrate(server.sqlalchemy_url(name))
    with psycopg.connect(server.dsn(name)) as conn:
        conn.execute("ANALYZE")
    return name


if __name__ == "__main__":
    main()
