"""Fixtures for the chart tier: the real ``helm``, and real control planes to install into.

Rendering tests need only ``helm``. Install tests run it against a real
kube-apiserver (RBAC on, PodSecurity admission on by default) into which the
pinned Prometheus Operator CRDs are applied first, so the chart's
ServiceMonitor, PodMonitor and PrometheusRule pass the API server's own
validation. The Stowage CRDs are left to ``helm install`` (from ``crds/``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stowage_testing.kube import KubeCluster, find_kube_tool
from tests.chart.support import Helm, running_cluster


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """The real helm (built by hack/build-kube-tools.sh), with homes of its own."""
    return Helm(find_kube_tool("helm"), tmp_path_factory.mktemp("helm-home"))


@pytest.fixture(scope="session")
def kube() -> Iterator[KubeCluster]:
    """A real control plane with the Prometheus Operator CRDs (and no Stowage CRDs yet)."""
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def cluster_helm(helm: Helm, kube: KubeCluster) -> Helm:
    return helm.for_cluster(kube.kubeconfig)
