"""Fixtures for the operator tier: a real control plane, real PostgreSQL, the operator in-process.

The operator runs in a thread with its own event loop (``run_operator`` with a
stop flag), watching only ``op-*`` namespaces; each test gets a fresh one
(namespaces never finish terminating without a controller-manager, so they
are left behind with the throwaway cluster).

The control plane and the operator are this package's: they stop when its last
test is done, not at the end of the session, so no later tier runs beside an
operator still resyncing this tier's Tenants (and logging into streams pytest
has closed).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from stowage_operator import OperatorSettings

from stowage_testing.kube import KubeCluster
from stowage_testing.operator import (
    control_plane,
    make_region,
    operator_settings,
    running_operator,
)
from stowage_testing.postgres import PostgresServer


@pytest.fixture(scope="package")
def kube() -> Iterator[KubeCluster]:
    """A real kube-apiserver + etcd with the Stowage CRDs installed."""
    with control_plane() as cluster:
        yield cluster


@pytest.fixture(scope="package")
def operator(kube: KubeCluster) -> Iterator[OperatorSettings]:
    """The operator, watching ``op-*`` namespaces, for this package's tests."""
    settings = operator_settings(kube, "op-*")
    with running_operator(settings):
        yield settings


@pytest.fixture
def namespace(kube: KubeCluster, operator: OperatorSettings) -> str:
    """A fresh namespace the session's operator watches."""
    name = f"op-{uuid.uuid4().hex[:8]}"
    kube.create_namespace(name)
    return name


RegionFactory = Callable[..., str]


@pytest.fixture
def region(kube: KubeCluster, postgres: PostgresServer) -> str:
    """A Region on the session's PostgreSQL server."""
    return make_region(kube, postgres)
