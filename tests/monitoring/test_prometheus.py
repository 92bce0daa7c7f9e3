"""A real Prometheus scraping the running stack: every dashboard panel has data, alerts fire.

The stack is the real thing on loopback: a kube-apiserver with the operator
in-process provisioning a Tenant on PostgreSQL, a worker on the database and
policy the operator made for it, the gateway in front, and the development
issuer. Prometheus scrapes the three with the labels the chart's monitors
produce (the PodMonitor's tenant/namespace on the worker, honorLabels on the
gateway and operator) and loads the chart's rule file. The Tenant's Region has
backup storage, and a backup and a drill Job finished for it (left through the
API server as a real run leaves them: there is no kubelet), so the operator
exports its backup metrics.
"""

from __future__ import annotations

import datetime
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml
from prometheus_client import REGISTRY, start_http_server

from stowage_testing.gateway import (
    GatewayProcess,
    Issuer,
    mcp_client,
    post,
    rpc,
    running_gateway,
    running_issuer,
    tenant_entry,
    tool_error,
)
from stowage_testing.kube import KubeCluster, running_kube
from stowage_testing.operator import (
    ADMIN_NAMESPACE,
    CRDS,
    finished_job,
    make_region,
    operator_settings,
    report_restarts,
    running_operator,
    secret_data,
    tenant_doc,
    wait_for_tenant,
    worker_pod,
)
from stowage_testing.postgres import PostgresServer
from stowage_testing.tools import eventually, free_port
from stowage_testing.worker import WorkerProcess
from tests.monitoring.prometheus import Prometheus, Target, running_prometheus

pytestmark = [pytest.mark.postgres, pytest.mark.kube]

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "charts/stowage/files/prometheus/rules.yaml"
DASHBOARD = REPO / "charts/stowage/files/dashboards/stowage.json"
TENANT = "acme"
#: Room for alice's ~20 calls; a burst of 40 is refused however slow the machine is
#: (one token a second comes back).
RATE_LIMITS = {
    "perUser": {"requestsPerMinute": 60, "burst": 30},
    "perTenant": {"requestsPerMinute": 60000, "burst": 1000},
}
#: What Grafana puts in for its built-in variables with a 1s scrape interval.
GRAFANA_VARIABLES = {"$__rate_interval": "15s", "$__interval": "1s", "$__range": "5m"}


@dataclass
class Stack:
    namespace: str
    worker: WorkerProcess
    gateway: GatewayProcess
    issuer: Issuer
    prometheus: Prometheus
    started: float

    @property
    def url(self) -> str:
        return self.gateway.url(TENANT)


@pytest.fixture(scope="module")
def kube() -> Iterator[KubeCluster]:
    """This tier's own control plane, with the Stowage CRDs (stopped when the module ends)."""
    with running_kube() as cluster:
        for crd in sorted(CRDS.glob("*.yaml")):
            cluster.apply(crd.read_text())
        cluster.create_namespace(ADMIN_NAMESPACE)
        yield cluster


def _provision_tenant(kube: KubeCluster, postgres: PostgresServer, namespace: str) -> None:
    """A Tenant that first names a Region not yet there (reconcile errors), then becomes Ready."""
    region = f"r-{uuid.uuid4().hex[:8]}"
    kube.apply(
        tenant_doc(TENANT, namespace, region, worker={"replicas": 1}, rateLimits=RATE_LIMITS)
    )
    eventually(
        lambda: REGISTRY.get_sample_value(
            "stowage_operator_errors_total",
            {"namespace": namespace, "tenant": TENANT, "reason": "RegionNotFound"},
        ),
        timeout=30,
        what="the operator counts the failed reconcile of a Tenant without its Region",
    )
    make_region(
        kube, postgres, name=region, backup={"persistentVolumeClaim": {"claimName": "backups"}}
    )
    wait_for_tenant(kube, namespace, TENANT, timeout=90)
    _finish_backup_and_drill(kube, namespace)
    # The worker runs as a process here; its pod, as the kubelet reports it after the worker
    # was killed for memory once, is what the operator's restart series are made of.
    worker_pod(kube, namespace, TENANT, f"tenant-{TENANT}-worker-0")
    report_restarts(kube, namespace, f"tenant-{TENANT}-worker-0", 1, "OOMKilled")


def _finish_backup_and_drill(kube: KubeCluster, namespace: str) -> None:
    """A backup Job and a drill Job that finished an hour ago, with the results they write."""
    taken = datetime.datetime.now(datetime.UTC).replace(microsecond=0) - datetime.timedelta(hours=1)
    backup = "20261123T020012Z-744a"
    finished_job(
        kube,
        namespace,
        TENANT,
        "backup",
        succeeded=True,
        finished=taken + datetime.timedelta(minutes=1),
        result={
            "command": "run",
            "result": "Succeeded",
            "backup": backup,
            "backupTime": taken.isoformat(),
            "sizeBytes": 15201,
        },
    )
    finished_job(
        kube,
        namespace,
        TENANT,
        "drill",
        succeeded=True,
        finished=taken + datetime.timedelta(minutes=5),
        result={"command": "drill", "result": "Succeeded", "backup": backup},
    )


# Over 60 lines on purpose: the whole monitored stack a real Prometheus scrapes, built in the order
# it depends on.
@pytest.fixture(scope="module")
def stack(
    kube: KubeCluster, postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("monitoring")
    namespace = f"mon-{uuid.uuid4().hex[:8]}"
    kube.create_namespace(namespace)
    with ExitStack() as stack:
        # The operator's metrics live in this process's default registry.
        operator_port = free_port()
        httpd, _ = start_http_server(operator_port, addr="127.0.0.1")
        stack.callback(httpd.server_close)
        stack.callback(httpd.shutdown)
        stack.enter_context(running_operator(operator_settings(kube, "mon-*")))
        _provision_tenant(kube, postgres, namespace)

        # The worker runs on what the operator made: its database Secret and policy ConfigMap.
        creds = secret_data(kube, namespace, f"tenant-{TENANT}-db")
        config_map = kube.get("v1", "ConfigMap", f"tenant-{TENANT}-policy", namespace)
        assert config_map is not None
        worker = WorkerProcess(
            database_url=creds["url"], workdir=tmp / "worker", tenant=TENANT, purge_interval=1.0
        )
        worker.workdir.mkdir()
        worker.write_policy(yaml.safe_load(config_map["data"]["policy.yaml"]))
        worker.start()
        stack.callback(worker.stop)

        issuer = stack.enter_context(running_issuer(tmp))
        spec = tenant_doc(TENANT, namespace, "unused")["spec"]
        gateway = GatewayProcess(workdir=tmp / "gateway")
        gateway.workdir.mkdir()
        gateway.write_tenants(
            [
                tenant_entry(
                    TENANT,
                    gateway,
                    issuer,
                    worker.address,
                    collections=spec["collections"],
                    retention=spec["retention"],
                    rateLimits=RATE_LIMITS,
                )
            ]
        )
        stack.enter_context(running_gateway(gateway.workdir, port=gateway.port))

        targets = [
            Target(
                "stowage-gateway",
                f"127.0.0.1:{gateway.port}",
                {"namespace": "stowage-system", "pod": "stowage-gateway-0"},
                honor_labels=True,
            ),
            Target(
                "stowage-operator",
                f"127.0.0.1:{operator_port}",
                {"namespace": "stowage-system", "pod": "stowage-operator-0"},
                honor_labels=True,
            ),
            # The PodMonitor's relabelling: stowage.dev/tenant -> tenant, the pod's namespace.
            Target(
                "stowage-workers",
                f"127.0.0.1:{worker.metrics_port}",
                {"namespace": namespace, "tenant": TENANT, "pod": f"tenant-{TENANT}-worker-0"},
            ),
        ]
        prometheus = stack.enter_context(running_prometheus(targets, [RULES]))
        yield Stack(namespace, worker, gateway, issuer, prometheus, time.time())


async def _drive_tool_calls(url: str, token: str) -> None:
    """Successes and the domain errors a real client meets: not found, validation."""
    async with mcp_client(url, token) as client:
        for i in range(5):
            saved = await client.call_tool("items_save", {"id": f"o{i}", "data": {"i": i}})
            assert not saved.is_error
        assert not (await client.call_tool("items_list", {})).is_error
        assert not (await client.call_tool("preferences_get", {})).is_error
        missing = await client.call_tool("items_get", {"id": "nowhere"})
        assert tool_error(missing)["error"]["code"] == "not_found"
        invalid = await client.call_tool("notes_save", {"data": {"title": 42}})
        assert invalid.is_error
        assert tool_error(invalid)["error"]["code"] == "invalid_argument"


async def _call_while_worker_is_down(url: str, token: str) -> None:
    async with mcp_client(url, token) as client:
        down = await client.call_tool("items_get", {"id": "o1"})
    assert tool_error(down)["error"]["code"] == "unavailable"


def _drive_rejections(s: Stack, burster: str) -> None:
    """Auth failures (no token, a token for another audience) and a burst over the user limit."""
    assert post(s.url, rpc("tools/list")).status_code == 401
    wrong = s.issuer.token("https://elsewhere.example/t/acme/mcp", subject="alice")
    assert post(s.url, rpc("tools/list"), wrong).status_code == 401
    token = s.issuer.token(s.url, subject=burster)
    call = rpc("tools/call", {"name": "items_list", "arguments": {}})
    statuses = [post(s.url, call, token).status_code for _ in range(40)]
    assert 429 in statuses and 200 in statuses, statuses


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, expression) of every target of every panel in the generated dashboard."""
    model = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in model["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]


def grafana_substitute(expr: str, tenant: str) -> str:
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    return expr.replace("$tenant", tenant)


def _alert_expr(name: str) -> str:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return str(next(r["expr"] for g in groups for r in g["rules"] if r.get("alert") == name))


def _worker_down_alerts(s: Stack) -> list[dict[str, Any]]:
    return [
        a
        for a in s.prometheus.alerts()
        if a["labels"].get("alertname") == "StowageTenantWorkerDown"
        and a["labels"].get("namespace") == s.namespace
        and a["labels"].get("tenant") == TENANT
    ]


# Over 60 lines on purpose: one scenario: traffic of every kind, each panel's query, then the alert.
@pytest.mark.timeout(420)
def test_traffic_fills_every_dashboard_panel_and_a_stopped_worker_raises_its_alert(
    stack: Stack,
) -> None:
    s, prom = stack, stack.prometheus
    eventually(
        lambda: (
            prom.targets_up()
            == {
                "stowage-gateway": "up",
                "stowage-operator": "up",
                "stowage-workers": "up",
            }
        ),
        timeout=30,
        what=f"all three targets scraped: {prom.targets_up()}",
    )

    # Two rounds of traffic: a counter's first increment creates its series, and
    # rate() sees an increase only between two scrapes of it, in Prometheus as in
    # production; the second round runs once the first one's series are scraped.
    token = s.issuer.token(s.url, subject="alice")
    anyio.run(_drive_tool_calls, s.url, token)
    _drive_rejections(s, burster="mallory")
    tenant = f'tenant="{TENANT}"'
    for series in (
        f'stowage_gateway_tool_calls_total{{{tenant},outcome="not_found"}}',
        f'stowage_gateway_tool_calls_total{{{tenant},outcome="invalid_argument"}}',
        f"stowage_gateway_rate_limited_total{{{tenant}}}",
        f"stowage_gateway_auth_failures_total{{{tenant}}}",
    ):
        eventually(lambda q=series: prom.query(q), timeout=30, what=f"{series} scraped")
    anyio.run(_drive_tool_calls, s.url, token)
    _drive_rejections(s, burster="eve")

    # The tenant variable's query lists the tenant.
    eventually(
        lambda: TENANT in prom.label_values("tenant", "stowage_gateway_tool_calls_total"),
        timeout=30,
        what="the tenant in label_values(stowage_gateway_tool_calls_total, tenant)",
    )

    # While the Ready tenant's worker is scraped, the worker-down condition holds for nobody.
    scope = f'{{namespace="{s.namespace}",tenant="{TENANT}"}}'
    eventually(
        lambda: (
            prom.query(f"stowage_operator_tenant_ready{scope} == 1")
            and prom.query(f"stowage_worker_database_up{scope} == 1")
        ),
        timeout=30,
        what="the Tenant Ready and its worker's database up, in Prometheus",
    )
    worker_down = _alert_expr("StowageTenantWorkerDown")
    assert not [r for r in prom.query(worker_down) if r["metric"].get("namespace") == s.namespace]
    assert not _worker_down_alerts(s)

    # An hour-old backup that passed its drill: scraped, and no backup alert's condition holds.
    eventually(
        lambda: prom.query(f"stowage_backup_last_drill_success{scope} == 1"),
        timeout=30,
        what="the passed drill in Prometheus",
    )
    age = prom.query(f"time() - stowage_backup_last_success_timestamp_seconds{scope}")
    assert 3500 < float(age[0]["value"][1]) < 3700, age
    for name in ("StowageBackupStale", "StowageBackupDrillFailed", "StowageBackupDrillStale"):
        held = [
            r
            for r in prom.query(_alert_expr(name))
            # This Tenant only: the API server may hold other tests' Tenants too.
            if r["metric"].get("tenant") == TENANT and r["metric"].get("namespace") == s.namespace
        ]
        assert not held, (name, held)

    # The induced fault: the worker stops; calls now fail as unavailable.
    s.worker.stop()
    anyio.run(_call_while_worker_is_down, s.url, token)

    # Every panel's query, as Grafana sends it for this tenant, returns data.
    for title, expr in dashboard_queries():
        query = grafana_substitute(expr, TENANT)
        eventually(
            lambda q=query: prom.finite_series(q, s.started, time.time()),
            timeout=60,
            what=f"data for panel {title!r}: {query}",
        )

    # And the alert goes pending (its `for` is 5m) or firing in Prometheus itself.
    eventually(
        lambda: [a for a in _worker_down_alerts(s) if a["state"] in {"pending", "firing"}],
        timeout=60,
        what="StowageTenantWorkerDown pending or firing for the stopped worker",
    )
    alert = _worker_down_alerts(s)[0]
    assert alert["labels"]["severity"] == "critical"
    assert alert["annotations"]["summary"] == (
        f"Tenant {s.namespace}/{TENANT} is Ready but no worker of it is scraped"
    )
    assert alert["annotations"]["runbook_url"].endswith("/StowageTenantWorkerDown.md")
