"""Components whose HTML is held in a ConfigMap (``htmlFrom``): what the operator reports.

The API server refuses a malformed reference; the operator reads the named
ConfigMap from the Tenant's namespace and reports a missing one, or HTML the
gateway would refuse, in the Ready condition naming the field. A fixed
ConfigMap is picked up without touching the Tenant. The Tenants here name a
Region that does not exist: the component check comes first, so what follows
it in the condition (RegionNotFound) shows the check passed.
"""

from __future__ import annotations

from typing import Any

import pytest
from stowage_operator._spec import policy_document

from stowage_testing.kube import KubeCluster, KubeError
from stowage_testing.operator import condition, tenant_doc, wait_for_tenant

pytestmark = pytest.mark.kube

REF = {"configMapKeyRef": {"name": "views", "key": "index.html"}}


def _doc(namespace: str, **component: Any) -> dict[str, Any]:
    board = {"name": "board", "tools": ["notes_get"], **component}
    return tenant_doc("acme", namespace, "no-such-region", components=[board])


def _views(kube: KubeCluster, namespace: str, html: str) -> None:
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "views",
                "namespace": namespace,
                "labels": {"stowage.dev/component": "true"},
            },
            "data": {"index.html": html},
        }
    )


def test_a_missing_or_refused_component_configmap_is_reported_naming_htmlfrom(
    kube: KubeCluster, namespace: str
) -> None:
    kube.apply(_doc(namespace, htmlFrom=REF))
    tenant = wait_for_tenant(kube, namespace, "acme", ready=False, reason="ComponentNotFound")
    assert condition(tenant, "Ready")["message"] == (
        f"spec.components[0].htmlFrom: ConfigMap {namespace}/views not found"
    )

    _views(kube, namespace, '<script src="https://evil.example/x.js"></script>')
    tenant = wait_for_tenant(kube, namespace, "acme", ready=False, reason="InvalidSpec")
    assert condition(tenant, "Ready")["message"].startswith(
        "spec.components[0].htmlFrom: loads 'https://evil.example/x.js' from an origin"
    )

    _views(kube, namespace, "<p>" + "x" * (700 * 1024) + "</p>")  # past the inline limit
    wait_for_tenant(kube, namespace, "acme", ready=False, reason="RegionNotFound")


def test_the_api_server_refuses_a_component_with_both_html_and_htmlfrom_or_a_namespaced_name(
    kube: KubeCluster, namespace: str
) -> None:
    for component, words in (
        ({"html": "<p>x</p>", "htmlFrom": REF}, "set exactly one of html"),
        ({}, "set exactly one of html"),
        ({"htmlFrom": {"configMapKeyRef": {"name": "other/views", "key": "k"}}},
         "spec.components[0].htmlFrom.configMapKeyRef.name"),
    ):  # fmt: skip
        with pytest.raises(KubeError) as refused:
            kube.apply(_doc(namespace, **component))
        assert refused.value.status == 422, refused.value.body
        assert words in refused.value.body["message"]


def test_the_workers_policy_keeps_the_reference_not_the_html() -> None:
    spec = _doc("t", htmlFrom=REF)["spec"]
    [component] = policy_document(spec)["components"]
    assert component["htmlFrom"] == REF and "html" not in component
