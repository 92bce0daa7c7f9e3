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
from stowage_testing.gateway import GatewayProcess, Issuer, post, rpc, running_gateway
from stowage_testing.kube import KubeCluster, running_kube
from stowage_testing.operator import API, tenant_doc
from stowage_testing.tools import eventually, free_port

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


# -- components whose HTML is held in a ConfigMap (spec.components[].htmlFrom) -----------

#: 700 KiB: over the 512 KiB an inline component may have.
BIG_VIEW = (
    "<!doctype html><html><body><main>notes</main><script>/*"
    + "x" * (700 * 1024)
    + "*/</script></body></html>"
)


def bundle(kube: KubeCluster, namespace: str, name: str, html: str, **meta: Any) -> None:
    """A ConfigMap holding a component's HTML under index.html, labelled as the README says."""
    labels = meta.pop("labels", {"stowage.dev/component": "true"})
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "data": {"index.html": html},
        }
    )


def bundled(name: str = "notes-view", key: str = "index.html") -> list[dict[str, Any]]:
    ref = {"configMapKeyRef": {"name": name, "key": key}}
    return [{"name": "notes-board", "htmlFrom": ref, "tools": ["notes_get"]}]


def mcp(gateway: GatewayProcess, issuer: Issuer, tenant: str, method: str, **params: Any) -> Any:
    token = issuer.token(gateway.url(tenant))
    reply = post(gateway.url(tenant), rpc(method, params or None), token)
    assert reply.status_code == 200, reply.text
    return reply.json()


def resources(gateway: GatewayProcess, issuer: Issuer, tenant: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = mcp(gateway, issuer, tenant, "resources/list")["result"][
        "resources"
    ]
    return found


def configmap_requests(kube: KubeCluster) -> float:
    """The API server's count of every ConfigMap request it answered (any verb, any client)."""
    total = 0.0
    for line in kube.request("GET", "/metrics").splitlines():
        if line.startswith("apiserver_request_total{") and 'resource="configmaps"' in line:
            total += float(line.rpartition(" ")[2])
    return total


def test_a_component_held_in_a_configmap_is_served_and_follows_the_configmap(
    kube: KubeCluster, namespace: str, tmp_path: Path, issuer: Issuer
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/t/acme/mcp"
    bundle(kube, namespace, "notes-view", BIG_VIEW)
    auth = {"issuer": issuer.url, "audience": url}
    provisioned(kube, "acme", namespace, auth=auth, components=bundled())
    args = from_kube(kube, namespace)
    with running_gateway(tmp_path, port=port, extra_args=args) as gateway:
        [listed] = resources(gateway, issuer, "acme")
        uri = listed["uri"]
        assert uri.startswith("ui://components/notes-board/")
        assert listed["size"] == len(BIG_VIEW)
        [content] = mcp(gateway, issuer, "acme", "resources/read", uri=uri)["result"]["contents"]
        assert content["text"] == BIG_VIEW
        assert content["mimeType"] == "text/html;profile=mcp-app"
        tools = mcp(gateway, issuer, "acme", "tools/list")["result"]["tools"]
        [notes_get] = [t for t in tools if t["name"] == "notes_get"]
        assert notes_get["_meta"]["ui"]["resourceUri"] == uri

        # Serving asks the API server nothing: the ConfigMap is watched, not read per call.
        before = configmap_requests(kube)
        for _ in range(5):
            mcp(gateway, issuer, "acme", "resources/read", uri=uri)
            mcp(gateway, issuer, "acme", "tools/list")
        assert configmap_requests(kube) == before

        changed = BIG_VIEW.replace("notes", "notes, v2")
        bundle(kube, namespace, "notes-view", changed)
        eventually(
            lambda: resources(gateway, issuer, "acme")[0]["uri"] != uri,
            timeout=5,
            what="the changed ConfigMap is a new URI",
        )
        [listed] = resources(gateway, issuer, "acme")
        read = mcp(gateway, issuer, "acme", "resources/read", uri=listed["uri"])
        assert read["result"]["contents"][0]["text"] == changed
        stale = mcp(gateway, issuer, "acme", "resources/read", uri=uri)
        assert stale["error"]["code"] == -32002  # the old version is not served from anywhere


def test_a_component_whose_configmap_is_missing_or_refused_is_not_served_but_its_tenant_is(
    kube: KubeCluster, tmp_path: Path, issuer: Issuer
) -> None:
    own, other = (f"gw-{uuid.uuid4().hex[:8]}" for _ in range(2))
    for namespace in (own, other):
        kube.create_namespace(namespace)
    port = free_port()
    suffix = uuid.uuid4().hex[:6]
    names = {case: f"{case}-{suffix}" for case in ("nokey", "script", "elsewhere")}

    def auth(tenant: str) -> dict[str, str]:
        return {"issuer": issuer.url, "audience": f"http://127.0.0.1:{port}/t/{tenant}/mcp"}

    bundle(kube, own, "views", "<p>a view</p>")
    bundle(kube, own, "scripted", '<script src="https://evil.example/x.js"></script>')
    bundle(kube, other, "theirs", "<p>another namespace's view</p>")
    bundle(kube, own, "unlabelled", "<p>not labelled</p>", labels={})
    cases = {
        "nokey": (bundled("views", key="missing.html"), "ConfigMap {own}/views has no key"),
        "script": (bundled("scripted"), "loads 'https://evil.example/x.js' from an origin"),
        "elsewhere": (bundled("theirs"), "ConfigMap {own}/theirs not found"),
    }
    for case, (components, _) in cases.items():
        provisioned(kube, names[case], own, auth=auth(names[case]), components=components)
    args = from_kube(kube, None)  # every namespace: the other one's ConfigMap is in sight
    with running_gateway(tmp_path, port=port, extra_args=args) as gateway:
        for case, (_, reason) in cases.items():
            tenant = names[case]
            assert resources(gateway, issuer, tenant) == [], case
            tools = mcp(gateway, issuer, tenant, "tools/list")["result"]["tools"]
            assert {"notes_get", "notes_save"} <= {t["name"] for t in tools}, case
            line = (
                f"Tenant {own}/{tenant}: component not served: spec.components[0].htmlFrom: "
                + reason.format(own=own)
            )
            assert line in gateway.logs(), case

        # Fixed by the ConfigMap alone: served within seconds, no restart, no Tenant edit.
        kube.apply(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": "views",
                    "namespace": own,
                    "labels": {"stowage.dev/component": "true"},
                },
                "data": {"index.html": "<p>a view</p>", "missing.html": "<p>now here</p>"},
            }
        )
        eventually(
            lambda: len(resources(gateway, issuer, names["nokey"])) == 1,
            timeout=5,
            what="the key added to the ConfigMap is served",
        )
        # A ConfigMap without the label is not read, even when named.
        kube.patch(
            API,
            "Tenant",
            names["elsewhere"],
            {"spec": {"components": bundled("unlabelled")}},
            own,
        )
        unlabelled = f"Tenant {own}/{names['elsewhere']}: component not served: "
        eventually(
            lambda: (
                f"{unlabelled}spec.components[0].htmlFrom: ConfigMap {own}/unlabelled not"
                in gateway.logs()
            ),
            timeout=5,
            what="the unlabelled ConfigMap reported",
        )
        assert resources(gateway, issuer, names["elsewhere"]) == []
