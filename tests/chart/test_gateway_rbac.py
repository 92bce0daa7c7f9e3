"""The gateway's RBAC as rendered: Tenants and the components' ConfigMaps, read-only, scoped
like its Tenant watch (one namespace's RoleBinding, or cluster-wide)."""

from __future__ import annotations

import pytest

from tests.chart.support import Helm, find

pytestmark = pytest.mark.helm

READ = ["get", "list", "watch"]


def test_the_gateway_reads_tenants_and_configmaps_and_nothing_else(helm: Helm) -> None:
    docs = helm.template()
    role = find(docs, "ClusterRole", "-gateway")
    assert role["rules"] == [
        {"apiGroups": ["stowage.dev"], "resources": ["tenants"], "verbs": READ},
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": READ},
    ]
    assert (
        find(docs, "ClusterRoleBinding", "-gateway")["roleRef"]["name"] == role["metadata"]["name"]
    )


def test_a_gateway_watching_one_namespace_reads_configmaps_only_there(helm: Helm) -> None:
    docs = helm.template(sets={"gateway.watchNamespace": "tenants"})
    binding = find(docs, "RoleBinding", "-gateway")
    assert binding["metadata"]["namespace"] == "tenants"
    assert binding["roleRef"]["kind"] == "ClusterRole"
    assert not [
        d
        for d in docs
        if d["kind"] == "ClusterRoleBinding" and d["metadata"]["name"].endswith("-gateway")
    ]
