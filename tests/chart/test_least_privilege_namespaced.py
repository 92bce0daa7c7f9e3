"""The namespaced operator mode, and the ClusterRoles for people, against the real API server.

A second release is installed with ``operator.rbac.scope=namespaced`` and one
watched namespace: its operator gets a Role there, a Role to read Secrets in
the release namespace and a ClusterRole that can only get Regions and watch
CRDs and namespaces. Its ServiceAccount is asked what it may do in its namespace, in another
one and cluster-wide; then the operator runs with exactly the installed
Deployment's arguments and environment, as that ServiceAccount, and
provisions and deletes a Tenant. The aggregated view/edit ClusterRoles are
checked against the API server's own default roles and through a user's
access review.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from stowage_testing.kube import KubeCluster
from stowage_testing.operator import (
    make_region,
    secret_data,
    tenant_doc,
    wait_for_tenant,
    wait_gone,
)
from stowage_testing.postgres import PostgresServer
from stowage_testing.tools import free_port
from tests.chart.support import CHART, Helm, container, find, restricted_namespace
from tests.chart.test_least_privilege import (
    API,
    WATCHED_FOR_DRIFT,
    allowed,
    running_as_deployed,
    token_client,
)

pytestmark = [pytest.mark.kube, pytest.mark.helm, pytest.mark.postgres]

RELEASE = "scoped"
NAMESPACE = "stowage-scoped"
WATCHED = "tenants-scoped"
ELSEWHERE = "tenants-elsewhere"


@pytest.fixture(scope="module")
def scoped(kube: KubeCluster, cluster_helm: Helm) -> list[dict[str, Any]]:
    """The chart with a namespaced operator for one namespace (and no gateway); its manifest."""
    restricted_namespace(kube, NAMESPACE)
    for namespace in (WATCHED, ELSEWHERE):
        kube.create_namespace(namespace)
    cluster_helm.run(
        "install", RELEASE, str(CHART), "-n", NAMESPACE,
        "--set", "operator.rbac.scope=namespaced",
        "--set", f"operator.watchNamespaces={{{WATCHED}}}",
        "--set", f"operator.metrics.port={free_port()}",
        "--set", f"operator.health.port={free_port()}",
        "--set", "operator.resyncSeconds=3",
        "--set", "gateway.enabled=false",
        "--set", "redis.deploy=false",
    )  # fmt: skip
    manifest = cluster_helm.run("get", "manifest", RELEASE, "-n", NAMESPACE).stdout
    return [d for d in yaml.safe_load_all(manifest) if d]


def operator_account(manifest: list[dict[str, Any]]) -> str:
    deployment = find(manifest, "Deployment", "-operator")
    return str(deployment["spec"]["template"]["spec"]["serviceAccountName"])


def test_namespaced_mode_binds_roles_in_the_watched_namespace_and_no_cluster_wide_writes(
    scoped: list[dict[str, Any]],
) -> None:
    bindings = {
        (d["kind"], d["metadata"].get("namespace")) for d in scoped if "Binding" in d["kind"]
    }
    assert bindings == {
        ("ClusterRoleBinding", None),
        ("RoleBinding", WATCHED),
        ("RoleBinding", NAMESPACE),
    }
    cluster_role = find(scoped, "ClusterRole", "-operator")
    assert cluster_role["rules"] == [
        {"apiGroups": ["stowage.dev"], "resources": ["regions"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]},
        {
            "apiGroups": ["apiextensions.k8s.io"],
            "resources": ["customresourcedefinitions"],
            "verbs": ["list", "watch"],
        },
    ]


def test_namespaced_operator_may_act_in_its_namespace_only(
    kube: KubeCluster, scoped: list[dict[str, Any]]
) -> None:
    token = kube.service_account_token(NAMESPACE, operator_account(scoped))
    with token_client(kube, token) as client:
        review = AccessReview(client)
        # Its namespace: the Tenants and everything made for them.
        assert review.can("watch", "tenants", "stowage.dev", WATCHED)
        assert review.can("patch", "tenants", "stowage.dev", WATCHED, "status")
        for verb in ("get", "create", "patch", "delete"):
            assert review.can(verb, "secrets", "", WATCHED), verb
        assert not review.can("list", "secrets", "", WATCHED)
        for resource, group in WATCHED_FOR_DRIFT:
            for verb in ("list", "watch", "create", "patch", "delete"):
                assert review.can(verb, resource, group, WATCHED), (verb, resource)
            assert not review.can("update", resource, group, WATCHED), resource
        for verb in ("list", "watch"):
            assert review.can(verb, "jobs", "batch", WATCHED)
            assert review.can(verb, "pods", "", WATCHED)
        assert not review.can("create", "pods", "", WATCHED, "exec")

        # The release namespace: the Regions' admin Secrets, read by name only.
        assert review.can("get", "secrets", "", NAMESPACE)
        for verb in ("list", "watch", "create", "delete"):
            assert not review.can(verb, "secrets", "", NAMESPACE), verb
        assert not review.can("create", "deployments", "apps", NAMESPACE)

        # Any other namespace, and every namespace at once: nothing.
        for namespace in (ELSEWHERE, None):
            for verb, resource, group in (
                ("get", "secrets", ""),
                ("create", "deployments", "apps"),
                ("create", "cronjobs", "batch"),
                ("delete", "networkpolicies", "networking.k8s.io"),
                ("list", "pods", ""),
                ("watch", "tenants", "stowage.dev"),
                ("patch", "tenants", "stowage.dev"),
            ):
                assert not review.can(verb, resource, group, namespace), (verb, resource, namespace)

        # Cluster-wide: a Region read by name, the CRDs watched; nothing else.
        assert review.can("get", "regions", "stowage.dev")
        for verb in ("list", "watch", "patch", "create", "delete"):
            assert not review.can(verb, "regions", "stowage.dev"), verb
        assert review.can("watch", "customresourcedefinitions", "apiextensions.k8s.io")
        assert review.can("watch", "namespaces", "")
        assert not review.can("get", "namespaces", "")
        assert not review.can("create", "clusterrolebindings", "rbac.authorization.k8s.io")
    print(f"\nnamespaced operator ({RELEASE} in {NAMESPACE}, watching {WATCHED}):")
    print(review.report())


class AccessReview:
    """SelfSubjectAccessReviews, remembered for the report."""

    def __init__(self, client: httpx.Client) -> None:
        self._client = client
        self._seen: list[tuple[str, str, bool]] = []

    def can(
        self, verb: str, resource: str, group: str, namespace: str | None = None, sub: str = ""
    ) -> bool:
        answer = allowed(self._client, verb, resource, group, namespace, sub)
        where = namespace or "(cluster-wide)"
        name = f"{resource}/{sub}" if sub else resource
        self._seen.append((where, f"{verb} {name}{'.' + group if group else ''}", answer))
        return answer

    def report(self) -> str:
        return "\n".join(
            f"  {where:20} {what:45} {'yes' if answer else 'no'}"
            for where, what, answer in self._seen
        )


@pytest.fixture
def scoped_operator(
    kube: KubeCluster, scoped: list[dict[str, Any]], tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    deployment = find(scoped, "Deployment", "-operator")
    assert all("value" in e for e in container(deployment, "operator").get("env") or [])
    with running_as_deployed(kube, deployment, "operator", tmp_path, namespace=NAMESPACE) as run:
        yield run


def test_namespaced_operator_provisions_and_deletes_a_tenant_with_only_its_roles(
    kube: KubeCluster,
    postgres: PostgresServer,
    scoped_operator: tuple[subprocess.Popen[bytes], Path],
) -> None:
    proc, log = scoped_operator
    region = make_region(kube, postgres, admin_namespace=NAMESPACE)
    kube.apply(tenant_doc("acme", WATCHED, region, deletionPolicy="Delete"))
    tenant = wait_for_tenant(kube, WATCHED, "acme", ready=True, timeout=90)
    assert proc.poll() is None, log.read_text()
    assert tenant["status"]["endpoint"] == f"tenant-acme-worker.{WATCHED}.svc:50051"
    assert secret_data(kube, WATCHED, "tenant-acme-db")["username"]

    # A Tenant in a namespace it does not serve is left alone.
    kube.apply(tenant_doc("stray", ELSEWHERE, region))

    kube.delete(API, "Tenant", "acme", WATCHED)
    wait_gone(kube, API, "Tenant", "acme", WATCHED, timeout=60)
    assert kube.get("apps/v1", "Deployment", "tenant-acme-worker", WATCHED) is None
    stray = kube.get(API, "Tenant", "stray", ELSEWHERE) or {}
    assert not stray.get("status") and not stray["metadata"].get("finalizers"), stray
    kube.delete(API, "Tenant", "stray", ELSEWHERE)

    text = log.read_text()
    assert "forbidden" not in text.lower(), text
    assert "are not watched" not in text, text


def test_aggregated_roles_let_a_namespace_editor_declare_tenants_and_nothing_more(
    kube: KubeCluster, scoped: list[dict[str, Any]]
) -> None:
    view = find(scoped, "ClusterRole", "-view")
    edit = find(scoped, "ClusterRole", "-edit")

    # The API server's own default roles select them for aggregation.
    def aggregated_into(role: str, labels: dict[str, str]) -> bool:
        found = kube.get("rbac.authorization.k8s.io/v1", "ClusterRole", role, None) or {}
        selectors = (found.get("aggregationRule") or {}).get("clusterRoleSelectors") or []
        return any(
            all(labels.get(k) == v for k, v in (s.get("matchLabels") or {}).items())
            for s in selectors
        )

    for role, expected in (("view", True), ("edit", True), ("admin", True)):
        assert aggregated_into(role, view["metadata"]["labels"]) is expected, role
    for role, expected in (("view", False), ("edit", True), ("admin", True)):
        assert aggregated_into(role, edit["metadata"]["labels"]) is expected, role

    # What a user gets from them (bound directly here: no controller-manager aggregates).
    user = f"dev-{uuid.uuid4().hex[:6]}"
    for granted in (view, edit):
        kube.apply(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": f"{user}-{granted['metadata']['name']}", "namespace": WATCHED},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": granted["metadata"]["name"],
                },
                "subjects": [
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}
                ],
            }
        )

    def can(verb: str, resource: str, namespace: str | None, sub: str = "") -> bool:
        attributes = {"verb": verb, "resource": resource, "group": "stowage.dev"}
        if namespace:
            attributes["namespace"] = namespace
        if sub:
            attributes["subresource"] = sub
        review = kube.request(
            "POST",
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            json={
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": {"user": user, "resourceAttributes": attributes},
            },
        )
        return bool(review["status"].get("allowed"))

    for verb in ("get", "list", "watch", "create", "patch", "delete"):
        assert can(verb, "tenants", WATCHED), verb
        assert not can(verb, "tenants", ELSEWHERE), verb
    assert not can("patch", "tenants", WATCHED, "status")
    for verb in ("create", "patch", "delete"):
        assert not can(verb, "regions", None), verb
