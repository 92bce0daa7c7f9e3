"""A gateway process on ``--tenants-from kubernetes``: a real kube-apiserver + etcd, no operator.

The tests play the operator's part by writing ``status.endpoint`` themselves,
and read what the gateway serves from its protected-resource metadata (the
tenant's audience and issuer). The API server's own metrics say how the
gateway read it: one list, then a watch.
"""

from __future__ import annotations

import base64
import logging
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import yaml

from gateway._types import Tenant, TenantName
from gateway.directory._directory import TenantDirectory
from gateway.directory._kube_source import KubeTenantSource, routable
from stowage_testing.gateway import GatewayProcess, running_gateway
from stowage_testing.kube import KubeCluster, running_kube
from stowage_testing.operator import API, tenant_doc
from stowage_testing.tools import eventually

pytestmark = pytest.mark.kube

CRDS = Path(__file__).resolve().parents[2] / "charts" / "stowage" / "crds"


@pytest.fixture(scope="module")
def kube() -> Iterator[KubeCluster]:
    """A real kube-apiserver + etcd with the Stowage CRDs installed."""
    with running_kube() as cluster:
        for crd in sorted(CRDS.glob("*.yaml")):
            cluster.apply(crd.read_text())
        yield cluster


@pytest.fixture
def namespace(kube: KubeCluster) -> str:
    name = f"gw-{uuid.uuid4().hex[:8]}"
    kube.create_namespace(name)
    return name


def provisioned(kube: KubeCluster, name: str, namespace: str, **spec: Any) -> None:
    """A Tenant with its worker's endpoint in status, as the operator leaves it."""
    kube.apply(tenant_doc(name, namespace, "eu-west", **spec))
    kube.request(
        "PATCH",
        kube.path(API, "Tenant", name, namespace) + "/status",
        json={"status": {"endpoint": f"{name}-worker.{namespace}.svc:50051"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )


def from_kube(kube: KubeCluster, namespace: str | None) -> tuple[str, ...]:
    """The gateway's flags to read Tenants from ``namespace`` (None: all namespaces)."""
    args = ("--tenants-from", "kubernetes", "--kubeconfig", str(kube.kubeconfig))
    return args if namespace is None else (*args, "--kube-namespace", namespace)


def served(gateway: GatewayProcess, tenant: str) -> dict[str, Any] | None:
    """The tenant's protected-resource metadata, or None when the gateway does not serve it."""
    response = httpx.get(
        f"{gateway.base}/.well-known/oauth-protected-resource/t/{tenant}/mcp", timeout=10
    )
    if response.status_code == 404:
        return None
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def issuer_served(gateway: GatewayProcess, tenant: str) -> str | None:
    body = served(gateway, tenant)
    return None if body is None else body["authorization_servers"][0]


def tenant_requests(kube: KubeCluster, metric: str, verb: str) -> float:
    """A metric of the API server's summed over its series for Tenant requests of ``verb``."""
    total = 0.0
    for line in kube.request("GET", "/metrics").splitlines():
        if line.startswith(metric + "{"):
            labels, _, value = line.rpartition(" ")
            if re.search(r'\bresource="tenants"', labels) and f'verb="{verb}"' in labels:
                total += float(value)
    return total


def test_a_changed_tenant_is_served_from_the_watch_without_listing_again(
    kube: KubeCluster, namespace: str, tmp_path: Path
) -> None:
    provisioned(kube, "acme", namespace)
    provisioned(kube, "unready", namespace)
    kube.request(  # the operator has not published this one's endpoint yet
        "PATCH",
        kube.path(API, "Tenant", "unready", namespace) + "/status",
        json={"status": {"endpoint": None}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    with running_gateway(tmp_path, extra_args=from_kube(kube, namespace)) as gateway:
        assert issuer_served(gateway, "acme") == "https://login.example.com/"
        assert served(gateway, "unready") is None
        lists = tenant_requests(kube, "apiserver_request_total", "LIST")
        assert lists >= 1

        auth = {"issuer": "https://login.acme.example/", "audience": gateway.url("acme")}
        kube.apply(tenant_doc("acme", namespace, "eu-west", auth=auth))
        eventually(
            lambda: issuer_served(gateway, "acme") == "https://login.acme.example/",
            what="the changed issuer is served",
        )
        provisioned(kube, "newco", namespace)
        eventually(lambda: served(gateway, "newco") is not None, what="a new Tenant is served")
        kube.delete(API, "Tenant", "acme", namespace)
        eventually(lambda: served(gateway, "acme") is None, what="a deleted Tenant is dropped")

        assert tenant_requests(kube, "apiserver_request_total", "LIST") == lists
        assert tenant_requests(kube, "apiserver_longrunning_requests", "WATCH") >= 1


def test_a_name_in_two_namespaces_is_served_from_the_first_and_then_from_the_other(
    kube: KubeCluster, tmp_path: Path
) -> None:
    first, second = sorted(f"gw-{uuid.uuid4().hex[:8]}" for _ in range(2))
    for namespace in (first, second):
        kube.create_namespace(namespace)
    name = f"twin-{uuid.uuid4().hex[:6]}"
    provisioned(kube, name, first)
    provisioned(
        kube,
        name,
        second,
        auth={"issuer": "https://login.second.example/", "audience": "https://x/t/twin/mcp"},
    )
    with running_gateway(tmp_path, extra_args=from_kube(kube, None)) as gateway:
        assert issuer_served(gateway, name) == "https://login.example.com/"
        kube.delete(API, "Tenant", name, first)
        eventually(
            lambda: issuer_served(gateway, name) == "https://login.second.example/",
            what="the other namespace's Tenant takes the name over",
        )
        assert "is used in more than one namespace" in gateway.logs()


class Published:
    """A directory and a way to wait, without polling, until what was published fits."""

    def __init__(self) -> None:
        self.directory = TenantDirectory()
        self._changed = anyio.Event()

    def publish(self, tenants: Mapping[TenantName, Tenant]) -> None:
        self.directory.publish(tenants)
        self._changed.set()

    async def until(self, predicate: Callable[[TenantDirectory], bool]) -> None:
        with anyio.fail_after(30):
            while True:
                changed = self._changed = anyio.Event()
                if predicate(self.directory):
                    return
                await changed.wait()


@pytest.mark.anyio
async def test_tenants_listed_over_many_pages_are_all_served_then_followed(
    kube: KubeCluster, namespace: str
) -> None:
    for i in range(7):
        provisioned(kube, f"p{i}", namespace)
    published = Published()
    source = KubeTenantSource(kubeconfig=kube.kubeconfig, namespace=namespace, page_size=2)
    async with anyio.create_task_group() as tg:
        tg.start_soon(source.watch, published.publish)
        await published.until(lambda d: d.loaded)
        assert sorted(published.directory.all()) == [f"p{i}" for i in range(7)]
        kube.delete(API, "Tenant", "p3", namespace)
        await published.until(lambda d: d.get("p3") is None)
        assert len(published.directory.all()) == 6
        tg.cancel_scope.cancel()


def new_service_account_token(kube: KubeCluster, namespace: str, name: str) -> str:
    """A token of a new ServiceAccount: no rights yet."""
    account = {"name": name, "namespace": namespace}
    kube.apply({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": account})
    return kube.service_account_token(namespace, name)


def grant_read(kube: KubeCluster, namespace: str, account: str) -> None:
    """What the chart grants the gateway: get, list and watch on Tenants."""
    rbac = "rbac.authorization.k8s.io/v1"
    meta = {"name": f"{account}-tenants", "namespace": namespace}
    verbs = ["get", "list", "watch"]
    rule = {"apiGroups": ["stowage.dev"], "resources": ["tenants"], "verbs": verbs}
    kube.apply({"apiVersion": rbac, "kind": "Role", "metadata": meta, "rules": [rule]})
    kube.apply(
        {
            "apiVersion": rbac,
            "kind": "RoleBinding",
            "metadata": meta,
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": meta["name"],
            },
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
        }
    )


def token_kubeconfig(kube: KubeCluster, token: str, path: Path) -> Path:
    """A kubeconfig with the cluster's CA inline and a bearer token, beside other contexts."""
    ca = base64.b64encode(kube.ca_cert.read_bytes()).decode()
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "elsewhere", "cluster": {"server": "https://127.0.0.1:1"}},
                    {
                        "name": "test",
                        "cluster": {"server": kube.server, "certificate-authority-data": ca},
                    },
                ],
                "users": [{"name": "gateway", "user": {"token": token}}],
                "contexts": [
                    {"name": "other", "context": {"cluster": "elsewhere", "user": "gateway"}},
                    {"name": "gateway", "context": {"cluster": "test", "user": "gateway"}},
                ],
                "current-context": "gateway",
            }
        )
    )
    return path


@pytest.mark.anyio
async def test_a_token_without_rights_is_refused_clearly_and_served_once_granted(
    kube: KubeCluster, namespace: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    provisioned(kube, "acme", namespace)
    token = new_service_account_token(kube, namespace, "gateway")
    config = token_kubeconfig(kube, token, tmp_path / "kubeconfig")
    published = Published()
    source = KubeTenantSource(kubeconfig=config, namespace=namespace, retry_delay=0.1)
    caplog.set_level(logging.WARNING, logger="gateway.directory._kube_source")
    async with anyio.create_task_group() as tg:
        tg.start_soon(source.watch, published.publish)
        await published.until(lambda d: d.loaded)  # after the first refusal: nothing yet
        assert published.directory.all() == {}
        assert 'HTTP 403: tenants.stowage.dev is forbidden: User "system:serviceaccount:' in (
            caplog.text
        )
        grant_read(kube, namespace, "gateway")
        await published.until(lambda d: d.get("acme") is not None)
        provisioned(kube, "newco", namespace)
        await published.until(lambda d: d.get("newco") is not None)  # watched with the token
        tg.cancel_scope.cancel()


def test_a_tenant_routes_to_the_worker_instance_its_status_names() -> None:
    body = tenant_doc("acme", "tenants", "eu-west")
    body["status"] = {"endpoint": "tenant-acme-worker.tenants.svc:50051", "instance": "0a1b2c"}
    found = routable(body)
    assert found is not None and found.instance == "0a1b2c"
    del body["status"]["instance"]  # an operator that publishes none: any worker of the tenant
    found = routable(body)
    assert found is not None and found.instance is None
