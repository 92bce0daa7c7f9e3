"""Gateway tests run against real parts: a worker on PostgreSQL, gateway processes, an issuer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway.harness import (
    WORKER_POLICY,
    GatewayProcess,
    Issuer,
    running_gateway,
    running_issuer,
    tenant_entry,
)
from tests.support.postgres import PostgresServer
from tests.support.worker import WorkerProcess, running_worker


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Issuer]:
    with running_issuer(tmp_path_factory.mktemp("issuer")) as found:
        yield found


@pytest.fixture(scope="session")
def worker(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    url = postgres.sqlalchemy_url(postgres.create_database("gw"))
    with running_worker(url, tmp_path_factory.mktemp("worker"), WORKER_POLICY) as w:
        yield w


@pytest.fixture(scope="session")
def gateway(
    worker: WorkerProcess, issuer: Issuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    """One gateway with tenants acme and globex on the shared worker."""
    workdir: Path = tmp_path_factory.mktemp("gateway")
    g = GatewayProcess(workdir=workdir)
    g.write_tenants([tenant_entry(name, g, issuer, worker.address) for name in ("acme", "globex")])
    with running_gateway(workdir, port=g.port) as started:
        yield started
