"""The parts every platform benchmark starts: PostgreSQL, the tenant's worker, an issuer, a
gateway shell with the ``bench`` tenant (limits opened up) written to its tenants file."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from bench._spaces import SHARED
from stowage_testing.gateway import COLLECTIONS as TEST_COLLECTIONS
from stowage_testing.gateway import WORKER_POLICY, GatewayProcess, tenant_entry
from stowage_testing.issuer import Issuer, running_issuer
from stowage_testing.postgres import PostgresServer, running_postgres
from stowage_testing.worker import WorkerProcess, running_worker

TENANT = "bench"
#: The tests' collections and a shared one (``bench._spaces``).
COLLECTIONS = [*TEST_COLLECTIONS, SHARED]
#: Limits no benchmark reaches: the benchmarks measure calls, not refusals.
OPEN_LIMITS = {
    "perUser": {"requestsPerMinute": 10_000_000, "burst": 1_000_000},
    "perTenant": {"requestsPerMinute": 10_000_000, "burst": 1_000_000},
}


@dataclass(frozen=True)
class Stack:
    postgres: PostgresServer
    worker: WorkerProcess
    issuer: Issuer
    #: Not started: its tenants file is written; start it with ``running_gateway``.
    gateway: GatewayProcess


def start_stack(stack: ExitStack, work: Path) -> Stack:
    """Start PostgreSQL, the worker and the issuer on ``stack``; write the gateway's tenants."""
    print("starting PostgreSQL, worker, issuer, gateway and baseline ...", flush=True)
    postgres = stack.enter_context(running_postgres())
    database_url = postgres.sqlalchemy_url(postgres.create_database(TENANT))
    worker = stack.enter_context(
        running_worker(
            database_url,
            work / "worker",
            # Files for the files rows (bench._files); the gateway offers them only there.
            {**WORKER_POLICY, "collections": COLLECTIONS, "files": {"maxFileBytes": "64Mi"}},
            TENANT,
        )
    )
    issuer = stack.enter_context(running_issuer(work))
    gateway = GatewayProcess(workdir=work / "gw")
    gateway.workdir.mkdir()
    gateway.write_tenants(
        [
            tenant_entry(
                TENANT,
                gateway,
                issuer,
                worker.address,
                rateLimits=OPEN_LIMITS,
                collections=COLLECTIONS,
            )
        ]
    )
    return Stack(postgres, worker, issuer, gateway)
