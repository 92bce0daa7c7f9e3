"""Who reaches which port: the chart's policies and the one the operator writes, read together.

The chart is rendered by the real ``helm``; the tenant worker's policy is
written by the operator's own code with the settings the rendered operator
Deployment gives it (its environment). Every peer a cluster would hold (the
release's Prometheus, a look-alike elsewhere, the gateway, a gateway-labelled
pod in a tenant namespace, the ingress controller, ...) is tried against every
port a component listens on, and the whole matrix must equal the expected one:
each scrape target and data path admitted, nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from stowage_operator import OperatorSettings
from stowage_operator._manifests import deployment, network_policy
from stowage_operator._types import Region, TenantRef

from stowage_testing.operator import tenant_doc
from tests.chart.policies import Cluster, Endpoint, table
from tests.chart.support import Helm, container, find, plain_env

pytestmark = pytest.mark.helm

RELEASE = "stowage"
NAMESPACE = "stowage-system"
TENANTS = "tenants-a"
INGRESS_NS = "ingress-nginx"
NAME_KEY = "kubernetes\\.io/metadata\\.name"  # as --set spells kubernetes.io/metadata.name
#: The ingress controller's namespace is the only source of MCP traffic.
GATEWAY_FROM = {
    f"networkPolicy.gatewayFrom[0].namespaceSelector.matchLabels.{NAME_KEY}": INGRESS_NS
}

#: Destinations: (component, port name) as a column of the matrix.
COLUMNS = (
    "gateway:http",
    "operator:metrics",
    "operator:health",
    "redis:redis",
    "worker:grpc",
    "worker:metrics",
    "postgres:5432",
)


def named_ports(workload: Mapping[str, Any], name: str) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in container(workload, name)["ports"]}


def pod_labels(workload: Mapping[str, Any]) -> dict[str, str]:
    return dict(workload["spec"]["template"]["metadata"]["labels"])


def rendered_world(helm: Helm, sets: Mapping[str, str]) -> tuple[Cluster, dict[str, Endpoint]]:
    """The policies of a render plus the operator's for Tenant acme, and every endpoint."""
    docs = helm.template(sets=sets, release=RELEASE, namespace=NAMESPACE)
    op = find(docs, "Deployment", "-operator")
    gw = find(docs, "Deployment", "-gateway")
    redis = find(docs, "Deployment", "-redis")
    settings = OperatorSettings.from_env(plain_env(container(op, "operator")))

    ref = TenantRef(TENANTS, "acme", "uid", 1)  # type: ignore[arg-type]
    region = Region(
        name="eu",  # type: ignore[arg-type]
        host="pg.eu.internal",
        port=5432,
        database="postgres",
        ssl_mode="require",
        admin_secret_name="pg-eu-admin",
        admin_secret_namespace=NAMESPACE,
    )
    worker = deployment(ref, tenant_doc("acme", TENANTS, "eu")["spec"], region, settings)
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    policies.append(network_policy(ref, settings))
    for p in policies:
        p["metadata"].setdefault("namespace", NAMESPACE)

    gateway_labels = pod_labels(gw)
    other_release = {**gateway_labels, "app.kubernetes.io/instance": "other"}
    prometheus = {"app.kubernetes.io/name": "prometheus", "prometheus": "k8s"}
    other_worker = {**pod_labels(worker), "stowage.dev/tenant": "beta"}
    endpoints = {
        # Sources
        "prometheus (monitoring)": Endpoint("p", "monitoring", prometheus),
        "prometheus look-alike (tenants-a)": Endpoint("p2", TENANTS, prometheus),
        "ingress controller": Endpoint("i", INGRESS_NS, {"app.kubernetes.io/name": "ingress"}),
        "gateway": Endpoint("g", NAMESPACE, gateway_labels, named_ports(gw, "gateway")),
        "gateway look-alike (tenants-a)": Endpoint("g2", TENANTS, gateway_labels),
        "other release's gateway": Endpoint("g3", NAMESPACE, other_release),
        "operator": Endpoint("o", NAMESPACE, pod_labels(op), named_ports(op, "operator")),
        "other pod (stowage-system)": Endpoint("x", NAMESPACE, {"app": "debug"}),
        "other pod (tenants-a)": Endpoint("y", TENANTS, {"app": "debug"}),
        "worker of another tenant": Endpoint("w2", "tenants-b", other_worker),
        "worker": Endpoint("w", TENANTS, pod_labels(worker), named_ports(worker, "worker")),
        "kubelet (node)": Endpoint("n", node=True),
        # Destinations only
        "redis": Endpoint("r", NAMESPACE, pod_labels(redis), named_ports(redis, "redis")),
        "postgres": Endpoint("pg", ip="10.20.0.5", ports={"5432": 5432}),
    }
    namespaces: dict[str, dict[str, str]] = {
        n: {} for n in ("monitoring", TENANTS, "tenants-b", INGRESS_NS, NAMESPACE)
    }
    return Cluster(policies, namespaces), endpoints


ROWS = (
    "prometheus (monitoring)",
    "prometheus look-alike (tenants-a)",
    "ingress controller",
    "gateway",
    "gateway look-alike (tenants-a)",
    "other release's gateway",
    "operator",
    "worker",
    "worker of another tenant",
    "other pod (stowage-system)",
    "other pod (tenants-a)",
    "kubelet (node)",
)


def matrix(cluster: Cluster, endpoints: Mapping[str, Endpoint]) -> dict[tuple[str, str], bool]:
    cells: dict[tuple[str, str], bool] = {}
    for row in ROWS:
        for column in COLUMNS:
            component, port = column.split(":")
            destination = endpoints[component]
            source = endpoints[row]
            if source is destination:
                cells[(row, column)] = False  # a pod reaching itself is not a path
                continue
            cells[(row, column)] = cluster.admits(source, destination, port)
    return cells


def expected(admitted: Mapping[str, Sequence[str]]) -> dict[tuple[str, str], bool]:
    return {(r, c): c in admitted.get(r, ()) for r in ROWS for c in COLUMNS}


#: Scrapes: Prometheus on every metrics port. Data: ingress → gateway, gateway →
#: worker and Redis, operator and worker → PostgreSQL. Probes: the kubelet.
#: Pods we do not police (the ingress controller, Prometheus, strangers) may
#: reach PostgreSQL as far as our policies go: that is the database's own firewall.
PRODUCTION = {
    "prometheus (monitoring)": (
        "gateway:http", "operator:metrics", "worker:metrics", "postgres:5432",
    ),
    "prometheus look-alike (tenants-a)": ("postgres:5432",),
    "ingress controller": ("gateway:http", "postgres:5432"),
    "gateway": ("redis:redis", "worker:grpc"),
    "gateway look-alike (tenants-a)": ("postgres:5432",),
    "other release's gateway": ("postgres:5432",),
    "operator": ("postgres:5432",),
    "worker": ("postgres:5432",),
    "worker of another tenant": ("postgres:5432",),
    "other pod (stowage-system)": ("postgres:5432",),
    "other pod (tenants-a)": ("postgres:5432",),
    "kubelet (node)": COLUMNS,
}  # fmt: skip


def test_every_scrape_and_data_path_is_admitted_and_nothing_else(
    helm: Helm, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster, endpoints = rendered_world(helm, GATEWAY_FROM)
    cells = matrix(cluster, endpoints)
    with capsys.disabled():
        print(f"\ngatewayFrom = namespace {INGRESS_NS}, default networkPolicy.prometheus:")
        print(table(ROWS, COLUMNS, cells))
    assert cells == expected(PRODUCTION)


def test_without_gateway_from_the_gateway_port_is_open_and_the_rest_unchanged(
    helm: Helm,
) -> None:
    cluster, endpoints = rendered_world(helm, {})
    cells = matrix(cluster, endpoints)
    # Every source whose own egress we do not police now reaches it too.
    policed = {"gateway", "operator", "kubelet (node)"}
    open_gateway = {
        row: PRODUCTION[row] if row in policed else (*PRODUCTION[row], "gateway:http")
        for row in ROWS
    }
    assert cells == expected(open_gateway)


def test_scrapers_are_chosen_in_values_and_reach_every_metrics_port_alike(helm: Helm) -> None:
    """Another Prometheus by selector, an agent by metricsFrom; the default one no more."""
    sets = {
        **GATEWAY_FROM,
        "networkPolicy.prometheus.namespaceSelector.matchLabels.team": "observability",
        "networkPolicy.prometheus.podSelector.matchLabels.app": "vmagent",
        "networkPolicy.metricsFrom[0].podSelector.matchLabels.app": "debug",
        f"networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.{NAME_KEY}": NAMESPACE,
    }
    cluster, endpoints = rendered_world(helm, sets)
    cluster = Cluster(
        cluster.policies, {**cluster.namespace_labels, "obs": {"team": "observability"}}
    )
    vmagent = {"app": "vmagent", "app.kubernetes.io/name": "prometheus"}
    endpoints = {**endpoints, "vmagent": Endpoint("v", "obs", vmagent)}
    metrics = ("gateway:http", "operator:metrics", "worker:metrics")
    for scraper in ("vmagent", "other pod (stowage-system)"):
        for column in metrics:
            component, port = column.split(":")
            assert cluster.admits(endpoints[scraper], endpoints[component], port), (scraper, column)
    for column in metrics:  # the default Prometheus, in its namespace, is no longer chosen
        component, port = column.split(":")
        assert not cluster.admits(endpoints["prometheus (monitoring)"], endpoints[component], port)
    assert not cluster.admits(Endpoint("v2", "monitoring", vmagent), endpoints["worker"], "metrics")


def test_with_no_scrapers_the_metrics_ports_admit_nobody(helm: Helm) -> None:
    cluster, endpoints = rendered_world(
        helm, {**GATEWAY_FROM, "networkPolicy.prometheus.enabled": "false"}
    )
    cells = matrix(cluster, endpoints)
    assert not any(
        cells[(row, column)]
        for row in ROWS
        if row != "kubelet (node)"
        for column in ("gateway:http", "operator:metrics", "worker:metrics")
        if row != "ingress controller" or column != "gateway:http"
    )
