"""Faults behind the worker under a burst of gRPC writers: PostgreSQL restarted, the worker killed.

The clients are what the gateway is to a worker: one gRPC channel each (with
the gateway's quick reconnect), every call naming the worker's tenant, a
resolved internal user and its own correlation id. Afterwards the database
itself is read: every acknowledged write must be there with its own data.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import grpc

from stowage.v1 import worker_pb2 as pb
from stowage.v1 import worker_pb2_grpc
from stowage.wire import CORRELATION_KEY, TENANT_KEY, USER_ID_KEY
from stowage_testing.postgres import PostgresServer, running_own_postgres
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
    stored_objects,
    unexpected_errors,
    verify,
    wait_for_acks,
)

CLIENTS = 16
#: Writes acknowledged before the fault, and again after the repair, before the burst ends.
BEFORE, AFTER = 200, 200
#: A retriable outage is all a client may see: the worker or its database is down.
RETRIABLE = {"UNAVAILABLE"}
COLLECTION = "items"
#: The gateway's own reconnect settings (gateway/forwarding/_worker.py), so recovery is
#: measured as it sees it.
CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
]


def writers(worker: WorkerProcess, stack: ExitStack) -> Callable[[int], Send]:
    """A sender per client: its own channel and its own user, resolved before the burst."""
    senders: list[Send] = []
    for index in range(CLIENTS):
        channel = stack.enter_context(grpc.insecure_channel(worker.address, CHANNEL_OPTIONS))
        stub = worker_pb2_grpc.TenantWorkerStub(channel)
        user = stub.ResolveUser(
            pb.ResolveUserRequest(issuer="https://issuer.test/", subject=f"writer-{index}"),
            metadata=[(TENANT_KEY, worker.tenant)],
            timeout=15,
        ).user_id
        senders.append(put_with(stub, worker.tenant, user))
    return senders.__getitem__


def put_with(stub: worker_pb2_grpc.TenantWorkerStub, tenant: str, user: str) -> Send:
    def send(write: Write) -> tuple[str, str] | None:
        request = pb.PutObjectRequest(
            collection=COLLECTION, id=write.object_id, data_json=json.dumps(write.data).encode()
        )
        metadata = [
            (TENANT_KEY, tenant),
            (USER_ID_KEY, user),
            (CORRELATION_KEY, write.correlation_id),
        ]
        try:
            reply = stub.PutObject(request, metadata=metadata, timeout=10)
        except grpc.RpcError as e:
            return e.code().name, e.details() or ""
        if (reply.object.id, reply.object.version, reply.created) != (write.object_id, 1, True):
            return "wrong reply", str(reply)
        return None

    return send


def run_fault(
    worker: WorkerProcess,
    inject: Callable[[], None],
    repair: Callable[[], None],
    run: str,
) -> tuple[Ledger, float, float]:
    """A burst with ``inject`` after BEFORE acknowledged writes, then ``repair``; the timings."""
    ledger = Ledger()
    with ExitStack() as stack, burst(CLIENTS, writers(worker, stack), run, ledger):
        wait_for_acks(ledger, BEFORE)
        fault_at = time.monotonic()
        inject()
        eventually(
            lambda: ledger.error_count() >= CLIENTS,
            what="the clients run into the fault",
        )
        repair_at = time.monotonic()
        repair()
        wait_for_acks(ledger, AFTER, since=repair_at)
    recovery = first_ack_after(ledger, repair_at)
    return ledger, recovery + (repair_at - fault_at), recovery


def test_acknowledged_writes_survive_a_database_restart_and_the_worker_recovers_by_itself(
    tmp_path: Path, fault_report: Report
) -> None:
    # A cluster of this test's own: restarting the session's server would disturb other tiers.
    with running_own_postgres() as pg:
        database = pg.create_database("faultpg")
        with running_worker(pg.sqlalchemy_url(database), tmp_path / "worker") as worker:
            assert worker.proc is not None
            pid = worker.proc.pid
            ledger, outage, recovery = run_fault(worker, pg.stop, pg.start, "pg")
            assert worker.proc.pid == pid and worker.proc.poll() is None, "the worker restarted"
        verdict = verify(ledger, stored_objects(pg.dsn(database), COLLECTION))
    fault_report(
        FaultRow(
            "PostgreSQL restarted (pg_ctl stop -m fast, start)",
            f"{CLIENTS} gRPC writers → 1 worker",
            len(ledger.acked),
            len(verdict.lost),
            ledger.errors,
            outage,
            recovery,
        )
    )
    assert unexpected_errors(ledger, RETRIABLE) == {}
    assert ledger.errors["UNAVAILABLE"] >= CLIENTS
    assert verdict.lost == [] and verdict.foreign == [] and verdict.unknown == []
    assert len(ledger.acked) >= BEFORE + AFTER


def test_acknowledged_writes_survive_a_worker_killed_during_a_burst(
    postgres: PostgresServer, tmp_path: Path, fault_report: Report
) -> None:
    database = postgres.create_database("faultkill")
    with running_worker(postgres.sqlalchemy_url(database), tmp_path / "worker") as worker:
        ledger, outage, recovery = run_fault(worker, worker.kill, worker.start, "kill")
    verdict = verify(ledger, stored_objects(postgres.dsn(database), COLLECTION))
    fault_report(
        FaultRow(
            "worker killed (SIGKILL) and started again",
            f"{CLIENTS} gRPC writers → 1 worker",
            len(ledger.acked),
            len(verdict.lost),
            ledger.errors,
            outage,
            recovery,
        )
    )
    assert unexpected_errors(ledger, RETRIABLE) == {}
    assert ledger.errors["UNAVAILABLE"] >= CLIENTS
    assert verdict.lost == [] and verdict.foreign == [] and verdict.unknown == []
    assert len(ledger.acked) >= BEFORE + AFTER
