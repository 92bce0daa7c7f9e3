"""``helm install``, ``helm upgrade`` and ``helm uninstall`` against a real API server.

A control plane of its own, so that this release is the one whose ``crds/``
create the Stowage CRDs, and its uninstall is seen to keep them. There is no
kubelet: Deployments get no pods, and the checks are on what the API server
stored and admitted.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from stowage_testing.kube import KubeCluster
from stowage_testing.operator import tenant_doc
from tests.chart.support import (
    CHART,
    PRODUCTION_VALUES,
    Helm,
    container,
    restricted_namespace,
    running_cluster,
)

pytestmark = [pytest.mark.kube, pytest.mark.helm]

NAMESPACE = "stowage-system"
RELEASE = "stowage"
CRD_API = "apiextensions.k8s.io/v1"
STOWAGE_CRDS = ("regions.stowage.dev", "tenants.stowage.dev")
MONITORING = [
    ("ServiceMonitor", f"{RELEASE}-gateway"),
    ("ServiceMonitor", f"{RELEASE}-operator"),
    ("PodMonitor", f"{RELEASE}-workers"),
    ("PrometheusRule", RELEASE),
]


@pytest.fixture(scope="module")
def fresh() -> Iterator[KubeCluster]:
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="module")
def fresh_helm(helm: Helm, fresh: KubeCluster) -> Helm:
    return helm.for_cluster(fresh.kubeconfig)


def gateway(kube: KubeCluster) -> dict[str, Any]:
    found = kube.get("apps/v1", "Deployment", f"{RELEASE}-gateway", NAMESPACE)
    assert found is not None
    return found


def operator(kube: KubeCluster) -> dict[str, Any]:
    found = kube.get("apps/v1", "Deployment", f"{RELEASE}-operator", NAMESPACE)
    assert found is not None
    return found


def test_install_upgrade_and_uninstall_with_production_values(
    fresh: KubeCluster, fresh_helm: Helm
) -> None:
    kube, helm = fresh, fresh_helm
    for crd in STOWAGE_CRDS:
        assert kube.get(CRD_API, "CustomResourceDefinition", crd) is None
    restricted_namespace(kube, NAMESPACE)

    # install: the CRDs from crds/, then every object, each validated by the API
    # server (the monitors against the Prometheus Operator's CRD schemas).
    installed = helm.run(
        "install", RELEASE, str(CHART), "-n", NAMESPACE, "-f", str(PRODUCTION_VALUES)
    )
    assert "STATUS: deployed" in installed.stdout
    assert "https://mcp.acme-platform.example/t/<tenant>/mcp" in installed.stdout  # NOTES
    assert "PodSecurity" not in installed.stderr, installed.stderr  # the namespace warns
    for crd in STOWAGE_CRDS:
        assert kube.get(CRD_API, "CustomResourceDefinition", crd) is not None
    for kind, name in MONITORING:
        assert kube.get("monitoring.coreos.com/v1", kind, name, NAMESPACE) is not None, kind
    assert kube.get("autoscaling/v2", "HorizontalPodAutoscaler", f"{RELEASE}-gateway", NAMESPACE)
    assert kube.get("networking.k8s.io/v1", "Ingress", f"{RELEASE}-gateway", NAMESPACE)
    assert kube.get("rbac.authorization.k8s.io/v1", "ClusterRole", f"{RELEASE}-operator")

    # upgrade: a changed gateway value changes its pod template (so it rolls);
    # the operator's template is untouched.
    gateway_before, operator_before = gateway(kube), operator(kube)
    files_key = kube.get("v1", "Secret", f"{RELEASE}-files-keys", NAMESPACE)
    assert files_key is not None and files_key["data"]["current"]
    helm.run(
        "upgrade",
        RELEASE,
        str(CHART),
        "-n",
        NAMESPACE,
        "-f",
        str(PRODUCTION_VALUES),
        "--set",
        "gateway.logLevel=DEBUG",
    )
    gateway_after, operator_after = gateway(kube), operator(kube)
    assert gateway_after["metadata"]["generation"] > gateway_before["metadata"]["generation"]
    assert gateway_after["spec"]["template"] != gateway_before["spec"]["template"]
    assert "--log-level=DEBUG" in container(gateway_after, "gateway")["args"]
    assert operator_after["metadata"]["generation"] == operator_before["metadata"]["generation"]
    assert operator_after["spec"]["template"] == operator_before["spec"]["template"]
    # The file links' master key is read back (lookup), not made anew: links handed
    # out before the upgrade keep working.
    kept = kube.get("v1", "Secret", f"{RELEASE}-files-keys", NAMESPACE)
    assert kept is not None and kept["data"] == files_key["data"]

    # uninstall: everything of the release goes; the CRDs, and the Tenants in
    # them, stay (Helm never deletes crds/).
    kube.create_namespace("tenants")
    kube.apply(tenant_doc("acme", "tenants", "eu"))
    helm.run("uninstall", RELEASE, "-n", NAMESPACE)
    assert kube.get("apps/v1", "Deployment", f"{RELEASE}-gateway", NAMESPACE) is None
    assert kube.get("apps/v1", "Deployment", f"{RELEASE}-operator", NAMESPACE) is None
    assert kube.get("rbac.authorization.k8s.io/v1", "ClusterRole", f"{RELEASE}-operator") is None
    for kind, name in MONITORING:
        assert kube.get("monitoring.coreos.com/v1", kind, name, NAMESPACE) is None, kind
    for crd in STOWAGE_CRDS:
        assert kube.get(CRD_API, "CustomResourceDefinition", crd) is not None
    assert kube.get("stowage.dev/v1alpha1", "Tenant", "acme", "tenants") is not None
