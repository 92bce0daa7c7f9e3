"""Real parts for the client tier: a worker on PostgreSQL, an issuer, a gateway, the Node tools."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stowage_dev._platform import notes_component
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
from tests.clients.tools import NodeTools


@pytest.fixture(scope="session")
def node_tools(tmp_path_factory: pytest.TempPathFactory) -> NodeTools:
    return NodeTools.find(tmp_path_factory.mktemp("node-home"))


@pytest.fixture(scope="session")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Issuer]:
    with running_issuer(tmp_path_factory.mktemp("issuer")) as found:
        yield found


@pytest.fixture(scope="session")
def worker(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """Tenant acme's worker; a test may stop it, and starts it again before it ends."""
    url = postgres.sqlalchemy_url(postgres.create_database("clients"))
    with running_worker(url, tmp_path_factory.mktemp("worker"), WORKER_POLICY, tenant="acme") as w:
        yield w


@pytest.fixture(scope="session")
def gateway(
    worker: WorkerProcess, issuer: Issuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    workdir = tmp_path_factory.mktemp("gateway")
    g = GatewayProcess(workdir=workdir)
    # With the demo tenant's component, so resources/list and resources/read have one to serve.
    g.write_tenants(
        [tenant_entry("acme", g, issuer, worker.address, components=[notes_component()])]
    )
    with running_gateway(workdir, port=g.port) as started:
        yield started
