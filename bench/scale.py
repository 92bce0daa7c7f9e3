"""``make bench-scale``: many tenants at once, for the operator and for the gateway.

Operator: a real kube-apiserver + etcd and PostgreSQL, the operator in this
process (as its tests run it); N Tenants are created at once and the time to
each one's Ready condition, the operator's CPU seconds (this process and its
migration processes) and the reconcile errors retried are reported.

Gateway: a gateway process reading a tenants file of N tenants (YAML and the
JSON fast path); reported are the time from start to ``/readyz``, its
resident memory, the longest ``/healthz`` answer and the time until a changed
tenant is served while the file is reloaded, and the p50 of ``tools/list``.

Prints both tables and writes JSON under ``bench/results/``. Measures, asserts
nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client import REGISTRY

from bench._cpu import cpu_seconds
from bench._stats import RESULTS
from tests.operator.conftest import CRDS, make_region, operator_settings, running_operator
from tests.operator.support import API, condition, tenant_doc
from tests.support.kube import KubeCluster, running_kube
from tests.support.postgres import running_postgres
from tests.support.tools import free_port

ADMIN_NAMESPACE = "stowage-system"


def _errors_retried() -> float:
    total = 0.0
    for metric in REGISTRY.collect():
        if metric.name == "stowage_operator_errors":
            total += sum(s.value for s in metric.samples if s.name.endswith("_total"))
    return total


def operator_round(kube: KubeCluster, region: str, count: int) -> dict[str, Any]:
    namespace = f"scale-{uuid.uuid4().hex[:6]}"
    kube.create_namespace(namespace)
    errors_before = _errors_retried()
    cpu_before = cpu_seconds([os.getpid()])
    start = time.monotonic()
    for i in range(count):
        kube.apply(tenant_doc(f"t{i}", namespace, region, worker={"replicas": 1}))
    ready_at: dict[str, float] = {}
    deadline = start + max(300.0, count * 1.0)
    while len(ready_at) < count and time.monotonic() < deadline:
        for tenant in kube.list(API, "Tenant", namespace):
            name = tenant["metadata"]["name"]
            if name not in ready_at and condition(tenant, "Ready").get("status") == "True":
                ready_at[name] = time.monotonic() - start
        time.sleep(0.2)
    times = sorted(ready_at.values())
    return {
        "tenants": count,
        "ready": len(times),
        "ready_p50_s": round(statistics.median(times), 2) if times else None,
        "ready_p95_s": round(times[int(0.95 * (len(times) - 1))], 2) if times else None,
        "last_ready_s": round(times[-1], 2) if times else None,
        "operator_cpu_s": round(cpu_seconds([os.getpid()]) - cpu_before, 2),
        "errors_retried": int(_errors_retried() - errors_before),
    }


def operator_table(counts: list[int]) -> list[dict[str, Any]]:
    rows = []
    with running_kube() as kube, running_postgres() as pg:
        for crd in sorted(CRDS.glob("*.yaml")):
            kube.apply(crd.read_text())
        kube.create_namespace(ADMIN_NAMESPACE)
        region = make_region(kube, pg)
        settings = dataclasses.replace(operator_settings(kube, "scale-*"), resync_seconds=60.0)
        with running_operator(settings):
            for count in counts:
                print(f"  operator: {count} Tenants at once", flush=True)
                rows.append(operator_round(kube, region, count))
    return rows


def _tenants_doc(count: int, base: str, issuer: str, changed: bool = False) -> dict[str, Any]:
    return {
        "tenants": [
            {
                "name": f"t{i}",
                "endpoint": "127.0.0.1:1",
                "auth": {"issuer": issuer, "audience": f"{base}/t/t{i}/mcp"},
                "rateLimits": {"perUser": {"requestsPerMinute": 120 + (changed and i == 0)}},
                "collections": [{"name": "notes", "schema": {"type": "object"}}],
            }
            for i in range(count)
        ]
    }


def _write(path: Path, doc: dict[str, Any], fmt: str) -> None:
    tmp = path.with_suffix(".tmp")
    text = json.dumps(doc) if fmt == "json" else yaml.dump(doc, Dumper=yaml.CSafeDumper)
    tmp.write_text(text)
    tmp.replace(path)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def gateway_round(work: Path, issuer: Any, count: int, fmt: str) -> dict[str, Any]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    tenants = work / f"tenants-{count}-{fmt}.yaml"
    _write(tenants, _tenants_doc(count, base, issuer.url), fmt)
    log = (work / f"gateway-{count}-{fmt}.log").open("ab")
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "stowage", "gateway", "serve", "--tenants-file", str(tenants),
         "--port", str(port), "--reload-interval", "0.2"],
        stdout=log, stderr=log,
    )  # fmt: skip
    try:
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() - start > 600:
                raise RuntimeError("the gateway did not become ready")
            time.sleep(0.05)
        ready = time.monotonic() - start
        rss = _rss_mb(proc.pid)
        token = issuer.token(f"{base}/t/t0/mcp", subject="scale")
        headers = {
            "authorization": f"Bearer {token}",
            "accept": "application/json, text/event-stream",
            "mcp-protocol-version": "2025-11-25",
        }
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        with httpx.Client(timeout=60) as http:
            calls = []
            for _ in range(50):
                t = time.perf_counter()
                http.post(f"{base}/t/t0/mcp", json=body, headers=headers)
                calls.append(time.perf_counter() - t)
            # A change to one tenant: how long until it is served, and /healthz meanwhile.
            _write(tenants, _tenants_doc(count, base, issuer.url, changed=True), fmt)
            changed_at = time.monotonic()
            worst = 0.0
            served = None
            while served is None and time.monotonic() - changed_at < 600:
                t = time.perf_counter()
                http.get(f"{base}/healthz")
                worst = max(worst, time.perf_counter() - t)
                logs = (work / f"gateway-{count}-{fmt}.log").read_text()
                if logs.count("tenant directory loaded") >= 2:
                    served = time.monotonic() - changed_at
        return {
            "tenants": count,
            "format": fmt,
            "start_to_ready_s": round(ready, 2),
            "rss_mb": rss,
            "change_served_after_s": round(served, 2) if served is not None else None,
            "healthz_worst_during_reload_ms": round(worst * 1000, 1),
            "tools_list_p50_ms": round(statistics.median(calls) * 1000, 2),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def gateway_table(counts: list[int]) -> list[dict[str, Any]]:
    from tests.gateway.harness import running_issuer

    rows = []
    with tempfile.TemporaryDirectory(prefix="stowage-scale-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        issuer = stack.enter_context(running_issuer(work))
        for count in counts:
            for fmt in ("yaml", "json"):
                print(f"  gateway: {count} tenants ({fmt})", flush=True)
                rows.append(gateway_round(work, issuer, count, fmt))
    return rows


def _print(title: str, rows: list[dict[str, Any]]) -> None:
    print(f"\n== {title} ==")
    if not rows:
        return
    keys = list(rows[0])
    print(" | ".join(keys))
    for row in rows:
        print(" | ".join(str(row[k]) for k in keys))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tenants", type=int, nargs="*", default=[10, 50, 100])
    parser.add_argument("--gateway-tenants", type=int, nargs="*", default=[1, 1000, 10000])
    parser.add_argument("--skip-operator", action="store_true")
    parser.add_argument("--skip-gateway", action="store_true")
    args = parser.parse_args()
    operator = [] if args.skip_operator else operator_table(args.tenants)
    gateway = [] if args.skip_gateway else gateway_table(args.gateway_tenants)
    _print("operator: Tenants created at once", operator)
    _print("gateway: tenants in its file", gateway)
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    payload = {"benchmark": "scale", "at": stamp, "operator": operator, "gateway": gateway}
    text = json.dumps(payload, indent=2)
    (RESULTS / f"scale-{stamp}.json").write_text(text)
    (RESULTS / "scale-latest.json").write_text(text)
    print(json.dumps(payload))


if __name__ == "__main__":
    main()
