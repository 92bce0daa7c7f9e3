"""Fixtures for the operator tier: a real control plane, real PostgreSQL, the operator in-process.

The operator runs in a thread with its own event loop (``run_operator`` with a
stop flag), watching only ``op-*`` namespaces; each test gets a fresh one
(namespaces never finish terminating without a controller-manager, so they
are left behind with the throwaway cluster).
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from stowage_operator import OperatorSettings, run_operator

from tests.support.kube import KubeCluster, running_kube
from tests.support.postgres import PostgresServer

REPO = Path(__file__).resolve().parents[2]
CRDS = REPO / "charts" / "stowage" / "crds"
ADMIN_NAMESPACE = "stowage-system"
RESYNC_SECONDS = 2.0


@pytest.fixture(scope="session")
def kube() -> Iterator[KubeCluster]:
    """A real kube-apiserver + etcd with the Stowage CRDs installed."""
    with running_kube() as cluster:
        for crd in sorted(CRDS.glob("*.yaml")):
            cluster.apply(crd.read_text())
        cluster.create_namespace(ADMIN_NAMESPACE)
        yield cluster


@contextmanager
def running_operator(settings: OperatorSettings, timeout: float = 30.0) -> Iterator[None]:
    """Run the operator in a thread until the block ends."""
    stop = threading.Event()
    ready = threading.Event()
    failure: list[BaseException] = []

    def main() -> None:
        try:
            asyncio.run(run_operator(settings, stop_flag=stop, ready_flag=ready))
        except BaseException as e:  # reported to the test below
            failure.append(e)
            ready.set()

    thread = threading.Thread(target=main, name="stowage-operator", daemon=True)
    thread.start()
    if not ready.wait(timeout) or failure:
        stop.set()
        raise RuntimeError(f"operator did not start: {failure}")
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout)
        assert not thread.is_alive(), "operator thread did not stop"


def operator_settings(kube: KubeCluster, *namespaces: str, **overrides: Any) -> OperatorSettings:
    return OperatorSettings(
        kubeconfig=kube.kubeconfig,
        namespaces=namespaces,
        worker_image="stowage:test",
        resync_seconds=RESYNC_SECONDS,
        metrics_port=0,
        **overrides,
    )


@pytest.fixture(scope="session")
def operator(kube: KubeCluster) -> Iterator[OperatorSettings]:
    """The operator, watching ``op-*`` namespaces, for the whole session."""
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


def make_region(kube: KubeCluster, server: PostgresServer, **spec: Any) -> str:
    """A Region (and its admin Secret) on ``server``; returns its name."""
    name = spec.pop("name", None) or f"r-{uuid.uuid4().hex[:8]}"
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"pg-{name}-admin", "namespace": ADMIN_NAMESPACE},
            "stringData": {"username": server.user, "password": server.password},
        }
    )
    kube.apply(
        {
            "apiVersion": "stowage.dev/v1alpha1",
            "kind": "Region",
            "metadata": {"name": name},
            "spec": {
                "postgres": {
                    "host": server.host,
                    "port": server.port,
                    "sslMode": "disable",
                    "adminSecretRef": {"name": f"pg-{name}-admin", "namespace": ADMIN_NAMESPACE},
                },
                "nodeSelector": {"topology.kubernetes.io/region": name},
                **spec,
            },
        }
    )
    return name


@pytest.fixture
def region(kube: KubeCluster, postgres: PostgresServer) -> str:
    """A Region on the session's PostgreSQL server."""
    return make_region(kube, postgres)
