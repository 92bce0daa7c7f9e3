"""The gateway's Kubernetes tenant source with many Tenant resources (part of ``make bench-scale``).

A real kube-apiserver + etcd with the Stowage CRDs; N Tenants are created (and
their ``status.endpoint`` written, as the operator would) with bounded
concurrency, then a gateway process runs with ``--tenants-from kubernetes``.
Reported: the time from its start to ``/readyz`` (which it answers after its
first complete list), the longest ``/readyz`` answer while it lists, how many
tenants it serves when ready, its resident memory, the time until a changed
Tenant is served, the longest ``/healthz`` and ``tools/list`` answers
meanwhile (and, for comparison, while idle), and the API server's own count of
Tenant LIST requests during the change (0: the change came through the watch)
and of open Tenant WATCH requests.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx

from bench._gateway_probes import (
    CHANGED,
    IDLE_SECONDS,
    ms,
    rounded,
    rss_mb,
    tools_list_of_t0,
    until_ready,
    worst_answers,
)
from stowage.crd import API_VERSION, TENANT_KIND, TENANT_PLURAL
from stowage_testing.kube import KubeCluster, running_kube
from stowage_testing.operator import CRDS, tenant_doc
from stowage_testing.tools import free_port, terminate

#: Requests in flight while the Tenants are created: enough to keep the API server busy.
CREATE_CONCURRENCY = 24


def _tenant(name: str, namespace: str, base: str, issuer: str) -> dict[str, Any]:
    auth = {"issuer": issuer, "audience": f"{base}/t/{name}/mcp"}
    return tenant_doc(name, namespace, "eu-west", auth=auth, worker={"replicas": 1})


def create_tenants(kube: KubeCluster, namespace: str, count: int, base: str, issuer: str) -> None:
    """``count`` Tenants with a worker endpoint in status, ``CREATE_CONCURRENCY`` at a time."""
    context = ssl.create_default_context(cafile=str(kube.ca_cert))
    context.load_cert_chain(str(kube.admin_cert), str(kube.admin_key))
    collection = kube.path(API_VERSION, TENANT_KIND, None, namespace)

    async def create_all() -> None:
        limiter = anyio.CapacityLimiter(CREATE_CONCURRENCY)
        async with httpx.AsyncClient(base_url=kube.server, verify=context, timeout=60) as http:

            async def create(i: int) -> None:
                async with limiter:
                    name = f"t{i}"
                    created = await http.post(
                        collection, json=_tenant(name, namespace, base, issuer)
                    )
                    created.raise_for_status()
                    status = await http.patch(
                        f"{collection}/{name}/status",
                        json={"status": {"endpoint": "127.0.0.1:1"}},
                        headers={"content-type": "application/merge-patch+json"},
                    )
                    status.raise_for_status()

            async with anyio.create_task_group() as tg:
                for i in range(count):
                    tg.start_soon(create, i)

    anyio.run(create_all)


def tenant_requests(kube: KubeCluster, metric: str, verb: str) -> float:
    """An API server metric summed over its series for Tenant requests of ``verb``."""
    total = 0.0
    for line in kube.request("GET", "/metrics").splitlines():
        if line.startswith(metric + "{") and f'resource="{TENANT_PLURAL}"' in line:
            labels, _, value = line.rpartition(" ")
            if f'verb="{verb}"' in labels:
                total += float(value)
    return total


@contextmanager
def _gateway(
    work: Path, kube: KubeCluster, namespace: str, port: int, checkout: Path | None
) -> Iterator[subprocess.Popen[bytes]]:
    """The gateway process; from ``checkout`` (another copy of the repository) when given."""
    env = None if checkout is None else {**os.environ, "PYTHONPATH": str(checkout)}
    with (work / f"gateway-kube-{port}.log").open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "stowage", "gateway", "serve", "--tenants-from", "kubernetes",
             "--kubeconfig", str(kube.kubeconfig), "--kube-namespace", namespace,
             "--port", str(port)],
            stdout=log, stderr=log, env=env, cwd=checkout,
        )  # fmt: skip
        try:
            yield proc
        finally:
            terminate(proc, grace=30)


def kube_round(work: Path, kube: KubeCluster, issuer: Any, count: int) -> dict[str, Any]:
    namespace = f"scale-gw-{uuid.uuid4().hex[:6]}"
    kube.create_namespace(namespace)
    port = free_port()
    created_at = time.monotonic()
    create_tenants(kube, namespace, count, f"http://127.0.0.1:{port}", issuer.url)
    created = time.monotonic() - created_at
    return {"create_s": round(created, 1), **measure(work, kube, issuer, namespace, count, port)}


def measure(
    work: Path,
    kube: KubeCluster,
    issuer: Any,
    namespace: str,
    count: int,
    port: int,
    checkout: Path | None = None,
) -> dict[str, Any]:
    """A gateway on ``port`` over the ``count`` Tenants of ``namespace``: ready, memory,
    one Tenant changed (and changed back after). ``checkout``: run another copy of the
    repository's gateway (to compare before and after a change)."""
    base = f"http://127.0.0.1:{port}"
    lists_before_start = tenant_requests(kube, "apiserver_request_total", "LIST")
    start = time.monotonic()
    with _gateway(work, kube, namespace, port, checkout) as proc, httpx.Client(timeout=60) as http:
        ready_after, loading, ready = until_ready(base, proc, start)
        rss = rss_mb(proc.pid)
        call = None if count == 1 else tools_list_of_t0(http, base, issuer)
        idle = worst_answers(http, base, call, lambda: False, IDLE_SECONDS)
        lists_before_change = tenant_requests(kube, "apiserver_request_total", "LIST")
        last = f"t{count - 1}"
        changed = {"spec": {"auth": {"issuer": issuer.url + CHANGED}}}
        kube.patch(API_VERSION, TENANT_KIND, last, changed, namespace)
        prm = f"{base}/.well-known/oauth-protected-resource/t/{last}/mcp"
        change = worst_answers(
            http,
            base,
            call,
            lambda: http.get(prm).json()["authorization_servers"] == [issuer.url + CHANGED],
            600,
        )
        lists_during_change = tenant_requests(kube, "apiserver_request_total", "LIST")
        watches = tenant_requests(kube, "apiserver_longrunning_requests", "WATCH")
    kube.patch(
        API_VERSION, TENANT_KIND, last, {"spec": {"auth": {"issuer": issuer.url}}}, namespace
    )
    return {
        "tenants": count,
        "start_to_ready_s": round(ready_after, 2),
        "served_at_ready": ready["tenants"],
        "readyz_worst_while_loading_ms": ms(loading),
        "rss_mb": rss,
        "change_served_after_s": rounded(change.done_after),
        "healthz_worst_during_change_ms": ms(change.healthz),
        "healthz_worst_idle_ms": ms(idle.healthz),
        "tools_list_worst_during_change_ms": ms(change.call),
        "tools_list_worst_idle_ms": ms(idle.call),
        "lists_to_start": int(lists_before_change - lists_before_start),
        "lists_during_change": int(lists_during_change - lists_before_change),
        "watches_open": int(watches),
    }


def kube_source_table(counts: list[int]) -> list[dict[str, Any]]:
    """One row per count of Tenant resources, each in a namespace of its own; memory per
    tenant is beyond the smallest count's (the baseline)."""
    from stowage_testing.gateway import running_issuer

    if not counts:
        return []
    rows = []
    with (
        tempfile.TemporaryDirectory(prefix="stowage-scale-kube-") as tmp,
        ExitStack() as stack,
    ):
        work = Path(tmp)
        issuer = stack.enter_context(running_issuer(work))
        kube = stack.enter_context(running_kube())
        for crd in sorted(CRDS.glob("*.yaml")):
            kube.apply(crd.read_text())
        for count in counts:
            print(f"  gateway from Kubernetes: {count} Tenants", flush=True)
            rows.append(kube_round(work, kube, issuer, count))
    base = min(rows, key=lambda r: r["tenants"], default=None)
    for row in rows:
        assert base is not None
        extra = row["tenants"] - base["tenants"]
        row["kb_per_tenant_beyond_baseline"] = (
            round((row["rss_mb"] - base["rss_mb"]) * 1024 / extra, 1) if extra else None
        )
    return rows
