"""Fixtures of the trace tier: a real Jaeger, and a traced gateway → worker → PostgreSQL.

The gateway and the worker are the real processes with the standard ``OTEL_*``
variables pointing at Jaeger's OTLP receiver; tokens come from the test issuer.
"""

from __future__ import annotations

from collections.abc import Iterator
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
from stowage_testing.traces import Jaeger, running_jaeger
from stowage_testing.worker import WorkerProcess, running_worker

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="package")
def jaeger() -> Iterator[Jaeger]:
    with running_jaeger() as found:
        yield found


@pytest.fixture(scope="package")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Issuer]:
    with running_issuer(tmp_path_factory.mktemp("issuer")) as found:
        yield found


@pytest.fixture(scope="package")
def traced_worker(
    postgres: PostgresServer, jaeger: Jaeger, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """Tenant acme's worker, sending its spans to Jaeger."""
    url = postgres.sqlalchemy_url(postgres.create_database("traces"))
    workdir: Path = tmp_path_factory.mktemp("worker")
    with running_worker(url, workdir, WORKER_POLICY, env=jaeger.otel_env) as worker:
        yield worker


@pytest.fixture(scope="package")
def traced_gateway(
    traced_worker: WorkerProcess,
    jaeger: Jaeger,
    issuer: Issuer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GatewayProcess]:
    """A gateway for tenant acme (on ``traced_worker``), sending its spans to Jaeger."""
    workdir: Path = tmp_path_factory.mktemp("gateway")
    g = GatewayProcess(workdir=workdir)
    g.write_tenants([tenant_entry("acme", g, issuer, traced_worker.address)])
    with running_gateway(workdir, port=g.port, env=jaeger.otel_env) as started:
        yield started
