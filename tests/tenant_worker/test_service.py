"""What operators of the worker rely on: health, metrics, logs, database faults."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import grpc
import psycopg
from grpc_health.v1 import health_pb2, health_pb2_grpc

from stowage.wire import UNAVAILABLE_STORE_KEY
from stowage_testing.postgres import PostgresServer
from stowage_testing.tools import eventually
from stowage_testing.worker import WorkerProcess, running_worker
from tests.tenant_worker.conftest import POLICY, Client, data, open_client, status_of


def test_worker_serves_grpc_health(channel: grpc.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    for service in ("", "stowage.v1.TenantWorker"):
        reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def _metrics(worker: WorkerProcess) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{worker.metrics_port}/metrics") as r:
        return str(r.read().decode())


def _sample(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name}{{{want}}}")


def test_metrics_count_rpcs_by_method_and_status_code(
    client: Client, worker: WorkerProcess
) -> None:
    before = _metrics(worker)
    try:
        nf_before = _sample(
            before, "stowage_worker_rpcs_total", method="GetObject", code="NOT_FOUND"
        )
    except AssertionError:
        nf_before = 0.0
    status_of(lambda: client.get("items", "missing"))
    client.put("items", "m", {"v": 1})
    after = _metrics(worker)
    assert (
        _sample(after, "stowage_worker_rpcs_total", method="GetObject", code="NOT_FOUND")
        == nf_before + 1
    )
    assert _sample(after, "stowage_worker_rpcs_total", method="PutObject", code="OK") >= 1
    assert _sample(after, "stowage_worker_rpc_duration_seconds_count", method="PutObject") >= 1


def test_one_json_log_line_per_call_with_correlation_id_and_no_payload(
    client: Client, worker: WorkerProcess
) -> None:
    client.correlation_id = "log-check-123"
    client.put("items", "logged", {"password": "hunter2-do-not-log"})

    def lines() -> list[dict[str, Any]]:
        out = []
        for raw in worker.logs().splitlines():
            if raw.startswith("{"):
                line = json.loads(raw)
                if line.get("correlation_id") == "log-check-123":
                    out.append(line)
        return out

    eventually(lambda: len(lines()) == 1, what="the call's log line")
    (line,) = lines()
    assert line["method"] == "PutObject" and line["code"] == "OK"
    assert line["tenant"] == worker.tenant and line["duration_ms"] >= 0
    assert "hunter2" not in worker.logs()


def test_database_going_away_is_unavailable_and_the_worker_recovers(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    dbname = postgres.create_database("fault")
    url = postgres.sqlalchemy_url(dbname)
    with running_worker(url, tmp_path, POLICY) as w, ExitStack() as stack:
        client = open_client(w, stack)
        client.put("items", "before", {"v": 1})
        with psycopg.connect(postgres.dsn(), autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false')
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (dbname,),
            )
            error = status_of(lambda: client.put("items", "during", {"v": 1}))
            assert error.code() == grpc.StatusCode.UNAVAILABLE
            # Which store failed, for a caller that must not show the worker's message.
            trailing = dict(error.trailing_metadata() or ())  # type: ignore[attr-defined]
            assert trailing[UNAVAILABLE_STORE_KEY] == b"database unreachable"
            assert status_of(lambda: client.get("items", "before")).code() == (
                grpc.StatusCode.UNAVAILABLE
            )
            admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
        eventually(lambda: _works(client), what="worker recovers")
        assert data(client.get("items", "before")) == {"v": 1}
        assert status_of(lambda: client.get("items", "during")).code() == grpc.StatusCode.NOT_FOUND


def _works(client: Client) -> bool:
    try:
        client.get("items", "before")
    except grpc.RpcError:
        return False
    return True


def test_a_second_worker_on_a_taken_port_fails_loudly_and_never_shares_it(
    worker: WorkerProcess,
) -> None:
    rival = subprocess.run(
        [sys.executable, "-m", "stowage", "worker", "serve",
         "--database-url", worker.database_url, "--tenant", "globex",
         "--listen", worker.address, "--metrics-port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert rival.returncode == 1, rival.stderr
    assert f"cannot listen on {worker.address}" in rival.stderr
    # The port still belongs to the first worker, which still answers for its tenant.
    with grpc.insecure_channel(worker.address) as channel:
        client = Client(channel).as_new_user()
        assert client.put("items", "still-mine", {"v": 1}).object.version == 1
