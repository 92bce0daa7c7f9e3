"""Gateway tests run against real parts: a worker on PostgreSQL, gateway processes, an issuer."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from stowage_testing.gateway import (
    WORKER_POLICY,
    GatewayProcess,
    Issuer,
    running_gateway,
    running_issuer,
    tenant_entry,
)
from stowage_testing.postgres import PostgresServer
from stowage_testing.worker import WorkerProcess, running_worker


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Issuer]:
    with running_issuer(tmp_path_factory.mktemp("issuer")) as found:
        yield found


WorkerFor = Callable[[str], WorkerProcess]


@pytest.fixture(scope="session")
def worker_for(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerFor]:
    """Each tenant's own worker on its own database, started on first use.

    A worker refuses calls meant for another tenant, so every tenant a test
    routes to needs its own, as in production.
    """
    with ExitStack() as stack:
        started: dict[str, WorkerProcess] = {}

        def get(tenant: str) -> WorkerProcess:
            if tenant not in started:
                url = postgres.sqlalchemy_url(postgres.create_database("gw"))
                workdir = tmp_path_factory.mktemp(f"worker-{tenant}")
                started[tenant] = stack.enter_context(
                    running_worker(url, workdir, WORKER_POLICY, tenant=tenant)
                )
            return started[tenant]

        yield get


@pytest.fixture(scope="session")
def worker(worker_for: WorkerFor) -> WorkerProcess:
    """Tenant acme's worker."""
    return worker_for("acme")


@pytest.fixture(scope="session")
def gateway(
    worker_for: WorkerFor, issuer: Issuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    """One gateway with tenants acme and globex, each on its own worker."""
    workdir: Path = tmp_path_factory.mktemp("gateway")
    g = GatewayProcess(workdir=workdir)
    g.write_tenants(
        [tenant_entry(name, g, issuer, worker_for(name).address) for name in ("acme", "globex")]
    )
    with running_gateway(workdir, port=g.port) as started:
        yield started
