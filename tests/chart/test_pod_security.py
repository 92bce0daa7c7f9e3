"""Every pod the chart or the operator runs fits the ``restricted`` Pod Security Standard.

Proven by the real API server's PodSecurity admission (on by default): each
pod template is created as a Pod, server-side dry-run, in a namespace that
enforces ``restricted``. Deployments are not checked by enforcement, Pods are.
"""

from __future__ import annotations

from typing import Any

import pytest
from stowage_operator import OperatorSettings
from stowage_operator._manifests import deployment
from stowage_operator._types import Region, TenantRef

from stowage_testing.kube import KubeCluster, KubeError
from stowage_testing.operator import tenant_doc
from tests.chart.support import PRODUCTION_VALUES, Helm, pod_templates, restricted_namespace

pytestmark = [pytest.mark.kube, pytest.mark.helm]

NAMESPACE = "pss-restricted"


def admit(kube: KubeCluster, pod: dict[str, Any]) -> dict[str, Any]:
    """Create the pod with dryRun=All: admission runs, nothing is stored."""
    created: dict[str, Any] = kube.request(
        "POST",
        f"/api/v1/namespaces/{NAMESPACE}/pods",
        params={"dryRun": "All", "fieldValidation": "Strict"},
        json={"apiVersion": "v1", "kind": "Pod", **pod},
    )
    return created


@pytest.fixture(scope="module")
def restricted(kube: KubeCluster) -> str:
    return restricted_namespace(kube, NAMESPACE)


def test_the_namespace_really_refuses_a_pod_that_is_not_restricted(
    kube: KubeCluster, restricted: str
) -> None:
    with pytest.raises(KubeError) as refused:
        admit(
            kube,
            {
                "metadata": {"name": "plain"},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        )
    assert refused.value.status == 403
    assert 'violates PodSecurity "restricted:latest"' in str(refused.value)


@pytest.mark.parametrize("values", ["default", "production"])
def test_every_pod_the_chart_renders_is_admitted_as_restricted(
    kube: KubeCluster, restricted: str, helm: Helm, values: str
) -> None:
    files = [PRODUCTION_VALUES] if values == "production" else []
    # The dogfood test pod renders only with a tenant named; the defaults add it too.
    docs = helm.template(
        *files,
        namespace=NAMESPACE,
        sets={"tests.dogfood.tenant": "acme", "tests.dogfood.tokenSecret": "dogfood-token"},
    )
    pods = pod_templates(docs)
    names = {p["metadata"]["name"] for p in pods}
    expected = {"stowage-operator", "stowage-gateway", "stowage-dogfood"}
    if values == "default":
        expected.add("stowage-redis")
    assert names == expected
    for pod in pods:
        stored = admit(kube, pod)
        assert stored["metadata"]["namespace"] == NAMESPACE, pod["metadata"]["name"]


def test_the_tenant_worker_pod_the_operator_creates_is_admitted_as_restricted(
    kube: KubeCluster, restricted: str
) -> None:
    tenant = tenant_doc("acme", NAMESPACE, "eu")
    region = Region(
        name="eu",  # type: ignore[arg-type]
        host="pg.eu.internal",
        port=5432,
        database="postgres",
        ssl_mode="require",
        admin_secret_name="pg-eu-admin",
        admin_secret_namespace="stowage-system",
        node_selector={"topology.kubernetes.io/region": "eu"},
    )
    ref = TenantRef(NAMESPACE, "acme", "0000-uid", 1)  # type: ignore[arg-type]
    worker = deployment(ref, tenant["spec"], region, OperatorSettings(worker_image="stowage:t"))
    (pod,) = pod_templates([worker])
    admit(kube, pod)
