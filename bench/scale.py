"""``make bench-scale``: many tenants at once, for the operator and for the gateway.

Operator: a real kube-apiserver + etcd and PostgreSQL, the operator in this
process (as its tests run it; with ``--checkout DIR``, first that copy's, in a
process of its own, on its own servers); N Tenants are created at once and the time to
each one's Ready condition, the CPU seconds of the operator (this process and
its migration processes), of the API server with etcd and of PostgreSQL, the
reconcile errors retried, and the operator's API requests per Tenant (the API
server's ``apiserver_request_total``, by verb and resource; watches and the
round's own Tenant applies left out) are reported. With ``--warm`` the bursts meet an
operator that has served the region a while (its template built, its spare
databases made: ``--spare-databases``); without, the first burst also waits for
the template. Then, with every Tenant of every round present, the operator's
idle CPU (resyncs only) as a share of one core.

Gateway: a gateway process reading a tenants file of N tenants (YAML and the
JSON fast path), each declaring one collection with a JSON Schema: the same
schema for all (``shared``) or one of each tenant's own (``own``, as real
tenants do); with ``--checkout DIR`` each round runs first with the gateway of
that copy of the repository (the baseline, ``checkout`` in the table), then
with this one. Reported are the time from start to ``/readyz`` (and its
longest answer while the file loads), its resident memory (and per tenant
beyond the smallest file's), the time until a changed tenant is served (its
protected-resource metadata shows the change), the longest ``/healthz`` and
``tools/list`` answers meanwhile and, for comparison, while idle, and the p50
of ``tools/list``. The same gateway on
``--tenants-from kubernetes`` with N Tenant resources: :mod:`bench.scale_kube`.

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
import threading
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import psycopg
import yaml
from prometheus_client import REGISTRY
from stowage_operator import OperatorSettings

from bench._cpu import cpu_seconds, parent_of
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
from bench._stats import RESULTS
from bench.scale_kube import kube_source_table
from stowage.crd import TENANT_PLURAL, collection_path
from stowage_testing.kube import KubeCluster
from stowage_testing.operator import (
    apiserver_requests,
    condition,
    control_plane,
    make_region,
    operator_settings,
    running_operator,
    tenant_doc,
)
from stowage_testing.postgres import PostgresServer, running_postgres
from stowage_testing.tools import free_port, terminate

ADMIN_NAMESPACE = "stowage-system"


def _errors_retried() -> float:
    total = 0.0
    for metric in REGISTRY.collect():
        if metric.name == "stowage_operator_errors":
            total += sum(s.value for s in metric.samples if s.name.endswith("_total"))
    return total


def _operator_processes(postgres: PostgresServer) -> dict[str, list[int]]:
    """The processes whose CPU the operator table reports, by what they are.

    ``operator``: this process (the operator's thread, and this script's polling)
    and its migration processes; ``kube``: the API server and etcd it started;
    ``postgres``: the postmaster, whose reaped backends count through it.
    """
    groups: dict[str, list[int]] = {"operator": [os.getpid()], "kube": [], "postgres": []}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        name = os.path.basename(argv[0].decode(errors="replace"))
        pid = int(entry.name)
        if pid == os.getpid():
            continue
        mine = _parent_of_or_none(pid) == os.getpid()
        if mine and b"multiprocessing" in b" ".join(argv):
            groups["operator"].append(pid)
        elif mine and name in {"kube-apiserver", "etcd"}:
            groups["kube"].append(pid)
        elif name == "postgres" and f"-p {postgres.port} ".encode() in b" ".join(argv) + b" ":
            groups["postgres"].append(pid)
    return groups


def _parent_of_or_none(pid: int) -> int | None:
    try:
        return parent_of(pid)
    except ProcessLookupError:
        return None


def _cpu(groups: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds so far per group; the operator's without the API server and etcd it started."""
    return {
        "operator": sum(cpu_seconds([p], with_children=False) for p in groups["operator"]),
        "kube": cpu_seconds(groups["kube"]),
        "postgres": cpu_seconds(groups["postgres"]),
    }


def _cpu_since(before: dict[str, float], groups: dict[str, list[int]]) -> dict[str, float]:
    now = _cpu(groups)
    return {k: round(now[k] - before[k], 2) for k in now}


#: Requests of others than the operator's client: the API server's own (a Service's
#: cluster IP, its lease), and non-resource paths (``resource=""``: /metrics, /readyz).
_NOT_THE_OPERATORS = {"ipaddresses", "leases", ""}


def _api_requests(kube: KubeCluster) -> dict[str, int]:
    """The API server's answered requests so far, by ``VERB resource[/subresource]``,
    watches left out (one long request each, counted when it ends)."""
    counts: dict[str, int] = {}
    for (verb, resource, sub), n in apiserver_requests(kube).items():
        if verb in {"WATCH", "WATCHLIST"} or resource in _NOT_THE_OPERATORS:
            continue
        key = f"{verb} {resource}{'/' + sub if sub else ''}"
        counts[key] = counts.get(key, 0) + n
    return counts


def _requests_per_tenant(
    before: dict[str, int], after: dict[str, int], count: int
) -> tuple[float, str]:
    """The operator's requests per Tenant in a round (the round's own Tenant applies left
    out), in all and by kind."""
    made = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    made["APPLY tenants"] = made.get("APPLY tenants", 0) - count
    kinds = {k: round(v / count, 2) for k, v in sorted(made.items()) if v}
    return round(sum(made.values()) / count, 2), ", ".join(f"{k} {v}" for k, v in kinds.items())


def _watch_ready(
    kube: KubeCluster,
    namespace: str,
    count: int,
    start: float,
    deadline: float,
    ready_at: dict[str, float],
) -> None:
    """Fill ``ready_at`` (seconds after ``start``) from a watch of the namespace's Tenants.

    A watch, not a list polled: at a thousand Tenants each list is megabytes, and
    parsing it five times a second in this process, which also runs the operator,
    cost more than the operator's own work.
    """
    own = dataclasses.replace(kube, _client=None)  # a client of its own, for this thread
    path = collection_path(TENANT_PLURAL, namespace)
    version = "0"
    try:
        while len(ready_at) < count and time.monotonic() < deadline:
            params = {"watch": "true", "resourceVersion": version, "timeoutSeconds": "60"}
            with own.http.stream("GET", path, params=params, timeout=90) as response:
                for line in response.iter_lines():
                    event = json.loads(line) if line else {}
                    if event.get("type") == "ERROR":  # e.g. the version expired: from now on
                        version = "0"
                        break
                    tenant = event.get("object") or {}
                    version = tenant.get("metadata", {}).get("resourceVersion", version)
                    name = tenant.get("metadata", {}).get("name")
                    ok = condition(tenant, "Ready").get("status") == "True"
                    if ok and name and name not in ready_at:
                        ready_at[name] = time.monotonic() - start
                    if len(ready_at) >= count or time.monotonic() > deadline:
                        return
    finally:
        own.close()


def operator_round(
    kube: KubeCluster, region: str, count: int, postgres: PostgresServer
) -> dict[str, Any]:
    namespace = f"scale-{uuid.uuid4().hex[:6]}"
    kube.create_namespace(namespace)
    errors_before = _errors_retried()
    groups = _operator_processes(postgres)
    cpu_before = _cpu(groups)
    start = time.monotonic()
    deadline = start + max(300.0, count * 1.0)
    ready_at: dict[str, float] = {}
    watcher = threading.Thread(
        target=_watch_ready, args=(kube, namespace, count, start, deadline, ready_at), daemon=True
    )
    watcher.start()
    requests_before = _api_requests(kube)
    for i in range(count):
        kube.apply(tenant_doc(f"t{i}", namespace, region, worker={"replicas": 1}))
    watcher.join()
    per_tenant, by_kind = _requests_per_tenant(requests_before, _api_requests(kube), count)
    times = sorted(ready_at.values())
    return {
        "tenants": count,
        "ready": len(times),
        "ready_p50_s": round(statistics.median(times), 2) if times else None,
        "ready_p95_s": round(times[int(0.95 * (len(times) - 1))], 2) if times else None,
        "last_ready_s": round(times[-1], 2) if times else None,
        **{f"{k}_cpu_s": v for k, v in _cpu_since(cpu_before, groups).items()},
        "errors_retried": int(_errors_retried() - errors_before),
        "api_requests_per_tenant": per_tenant,
        "api_requests_per_tenant_by_kind": by_kind,
    }


def checkout_operator_table(checkout: Path, counts: list[int]) -> list[dict[str, Any]]:
    """The operator rounds of another copy of the repository (the baseline), run there, in a
    process of their own, before this copy's."""
    env = {**os.environ, "PYTHONPATH": f"{checkout}{os.pathsep}{checkout / 'operator'}"}
    command = [sys.executable, "-m", "bench.scale", "--skip-gateway", "--idle-seconds", "0",
               "--tenants", *map(str, counts)]  # fmt: skip
    print(f"  operator (checkout {checkout}): {counts} Tenants at once", flush=True)
    done = subprocess.run(
        command, cwd=checkout, env=env, capture_output=True, text=True, check=True
    )
    rows: list[dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])["operator"]
    return [{"operator": "checkout", **row} for row in rows]


def operator_idle(postgres: PostgresServer, tenants: int, seconds: float) -> dict[str, Any]:
    """The CPU of an operator with ``tenants`` Ready Tenants and nothing to do but resync."""
    groups = _operator_processes(postgres)
    before = _cpu(groups)
    time.sleep(seconds)
    used = _cpu_since(before, groups)
    return {
        "idle_tenants": tenants,
        "idle_seconds": seconds,
        **{f"idle_{k}_cpu_pct_of_a_core": round(100 * v / seconds, 1) for k, v in used.items()},
    }


def _warm_up(kube: KubeCluster, region: str, postgres: PostgresServer, spares: int) -> None:
    """One Tenant first, then until the region's ``spares`` spare databases are there: the
    bursts then meet an operator that has been serving the region for a while."""
    print(f"  operator: warming up (one Tenant, then {spares} spare databases)", flush=True)
    operator_round(kube, region, 1, postgres)
    deadline = time.monotonic() + 300
    with psycopg.connect(postgres.dsn(), autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_database WHERE starts_with(datname, 'stowage-spare-')"
            ).fetchone()
            if row is not None and row[0] >= spares:
                return
            time.sleep(0.2)


def operator_table(
    counts: list[int], idle_seconds: float = 0.0, warm: bool = False, spares: int | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One row per count of Tenants created at once, then (after ``idle_seconds`` > 0) the
    idle CPU with every Tenant of every round present, resyncing at the default interval.
    ``warm``: first one Tenant, and until the spare databases are made (``spares``, or the
    operator's default); else the first burst also waits for the region's template."""
    rows = []
    idle: dict[str, Any] = {}
    with control_plane() as kube, running_postgres() as pg:
        region = make_region(kube, pg)
        settings = dataclasses.replace(
            operator_settings(kube, "scale-*"), resync_seconds=OperatorSettings().resync_seconds
        )
        # (A checkout from before spare databases has no such setting: it keeps none.)
        pool = getattr(settings, "spare_databases", 0)
        if spares is not None and hasattr(settings, "spare_databases"):
            settings = dataclasses.replace(settings, spare_databases=spares)
            pool = spares
        with running_operator(settings):
            if warm:
                _warm_up(kube, region, pg, pool)
            for count in counts:
                print(f"  operator: {count} Tenants at once", flush=True)
                rows.append(operator_round(kube, region, count, pg))
            if idle_seconds > 0:
                # First let the creation bursts' first resyncs (one to two intervals on) pass.
                settle = 2 * settings.resync_seconds
                print(f"  operator: idle, {sum(counts)} Tenants ({settle:.0f} s to settle, "
                      f"{idle_seconds:.0f} s measured)", flush=True)  # fmt: skip
                time.sleep(settle)
                idle = operator_idle(pg, sum(counts), idle_seconds)
    return rows, idle


def _schema(i: int, schemas: str) -> dict[str, Any]:
    """Tenant ``i``'s notes schema: the same for every tenant, or one of its own."""
    if schemas == "shared":
        return {"type": "object"}
    return {
        "type": "object",
        "properties": {
            f"title{i}": {"type": "string", "maxLength": 200},
            "body": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": [f"title{i}"],
    }


def _tenants_doc(
    count: int, base: str, issuer: str, changed: bool = False, schemas: str = "shared"
) -> dict[str, Any]:
    """``count`` tenants; ``changed``: the last one has another issuer and rate limit."""
    last = count - 1
    return {
        "tenants": [
            {
                "name": f"t{i}",
                "endpoint": "127.0.0.1:1",
                "auth": {
                    "issuer": issuer + (CHANGED if changed and i == last else ""),
                    "audience": f"{base}/t/t{i}/mcp",
                },
                "rateLimits": {"perUser": {"requestsPerMinute": 120 + (changed and i == last)}},
                "collections": [{"name": "notes", "schema": _schema(i, schemas)}],
            }
            for i in range(count)
        ]
    }


def _write(path: Path, doc: dict[str, Any], fmt: str) -> None:
    tmp = path.with_suffix(".tmp")
    text = json.dumps(doc) if fmt == "json" else yaml.dump(doc, Dumper=yaml.CSafeDumper)
    tmp.write_text(text)
    tmp.replace(path)


# Over 60 lines on purpose: one measured round read top to bottom: start, load, change, probe, stop.
def gateway_round(
    work: Path,
    issuer: Any,
    count: int,
    fmt: str,
    schemas: str = "shared",
    checkout: Path | None = None,
) -> dict[str, Any]:
    """One gateway over ``count`` tenants; from ``checkout`` (another copy of the
    repository) when given."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    tenants = work / f"tenants-{count}-{fmt}-{schemas}.yaml"
    _write(tenants, _tenants_doc(count, base, issuer.url, schemas=schemas), fmt)
    log = (work / f"gateway-{count}-{fmt}.log").open("ab")
    env = None if checkout is None else {**os.environ, "PYTHONPATH": str(checkout)}
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "stowage", "gateway", "serve", "--tenants-file", str(tenants),
         "--port", str(port), "--reload-interval", "0.2"],
        stdout=log, stderr=log, env=env, cwd=checkout,
    )  # fmt: skip
    try:
        ready, loading, _ = until_ready(base, proc, start)
        rss = rss_mb(proc.pid)
        with httpx.Client(timeout=60) as http:
            tools_list = tools_list_of_t0(http, base, issuer)
            calls = []
            for _ in range(50):
                t = time.perf_counter()
                tools_list()
                calls.append(time.perf_counter() - t)
            call = None if count == 1 else tools_list
            idle = worst_answers(http, base, call, lambda: False, IDLE_SECONDS)
            # A change to one tenant: how long until it is served, and /healthz and
            # tools/list (of another tenant, while there is one) meanwhile.
            _write(tenants, _tenants_doc(count, base, issuer.url, True, schemas), fmt)
            changed_prm = f"{base}/.well-known/oauth-protected-resource/t/t{count - 1}/mcp"
            reload = worst_answers(
                http,
                base,
                call,
                lambda: (
                    http.get(changed_prm).json()["authorization_servers"] == [issuer.url + CHANGED]
                ),
                600,
            )
        return {
            "gateway": "checkout" if checkout is not None else "this",
            "tenants": count,
            "format": fmt,
            "schemas": schemas,
            "start_to_ready_s": round(ready, 2),
            "readyz_worst_while_loading_ms": ms(loading),
            "rss_mb": rss,
            "change_served_after_s": rounded(reload.done_after),
            "healthz_worst_during_reload_ms": ms(reload.healthz),
            "healthz_worst_idle_ms": ms(idle.healthz),
            "tools_list_worst_during_reload_ms": ms(reload.call),
            "tools_list_worst_idle_ms": ms(idle.call),
            "tools_list_p50_ms": round(statistics.median(calls) * 1000, 2),
        }
    finally:
        terminate(proc, grace=30)
        log.close()


def gateway_table(
    counts: list[int], schemas: list[str], checkout: Path | None = None
) -> list[dict[str, Any]]:
    from stowage_testing.gateway import running_issuer

    rows = []
    gateways = [checkout, None] if checkout is not None else [None]
    with tempfile.TemporaryDirectory(prefix="stowage-scale-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        issuer = stack.enter_context(running_issuer(work))
        for count in counts:
            for kind in schemas:
                for fmt in ("yaml", "json"):
                    for gateway in gateways:
                        which = "this" if gateway is None else f"checkout {gateway}"
                        print(f"  gateway ({which}): {count} tenants ({fmt}, {kind} schemas)",
                              flush=True)  # fmt: skip
                        rows.append(gateway_round(work, issuer, count, fmt, kind, gateway))
    return _with_memory_per_tenant(rows)


def _with_memory_per_tenant(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row's memory per tenant beyond the smallest set's (the baseline), in KB."""
    for row in rows:
        alike = [
            r
            for r in rows
            if (r["format"], r["schemas"], r["gateway"])
            == (row["format"], row["schemas"], row["gateway"])
        ]
        base = min(alike, key=lambda r: r["tenants"])
        extra = row["tenants"] - base["tenants"]
        row["kb_per_tenant_beyond_baseline"] = (
            round((row["rss_mb"] - base["rss_mb"]) * 1024 / extra, 1) if extra else None
        )
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
    parser.add_argument(
        "--idle-seconds",
        type=float,
        default=120.0,
        help="after the operator rounds, measure its CPU with all their Tenants for this long "
        "(0: skip)",
    )
    parser.add_argument("--gateway-tenants", type=int, nargs="*", default=[1, 1000, 10000])
    parser.add_argument(
        "--gateway-schemas",
        nargs="*",
        choices=["shared", "own"],
        default=["shared", "own"],
        help="each tenant's collection schema: the same for all, or one of its own",
    )
    parser.add_argument(
        "--checkout",
        type=Path,
        help="another copy of the repository (the baseline): its operator rounds run first, "
        "and its gateway before this one's in each gateway round",
    )
    parser.add_argument(
        "--kube-tenants",
        type=int,
        nargs="*",
        default=[1, 10000],
        help="Tenant resources for the gateway's Kubernetes source (none: skip it)",
    )
    parser.add_argument(
        "--warm",
        action="store_true",
        help="before the operator rounds, one Tenant and then until the region's spare "
        "databases are made (else the first round also waits for the template)",
    )
    parser.add_argument(
        "--spare-databases",
        type=int,
        help="the operator's spare databases per region (default: the operator's default)",
    )
    parser.add_argument("--skip-operator", action="store_true")
    parser.add_argument("--skip-gateway", action="store_true")
    args = parser.parse_args()
    operator: list[dict[str, Any]] = []
    if args.checkout is not None and not args.skip_operator:
        operator = checkout_operator_table(args.checkout, args.tenants)
    mine, idle = (
        ([], {})
        if args.skip_operator
        else operator_table(args.tenants, args.idle_seconds, args.warm, args.spare_databases)
    )
    operator += [{"operator": "this", **row} for row in mine] if args.checkout else mine
    gateway = (
        []
        if args.skip_gateway
        else gateway_table(args.gateway_tenants, args.gateway_schemas, args.checkout)
    )
    kube_source = [] if args.skip_gateway else kube_source_table(args.kube_tenants)
    _print("operator: Tenants created at once", operator)
    _print("operator: idle, resyncing", [idle] if idle else [])
    _print("gateway: tenants in its file", gateway)
    _print("gateway: Tenant resources through its Kubernetes source", kube_source)
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    payload = {
        "benchmark": "scale",
        "at": stamp,
        "operator": operator,
        "operator_idle": idle,
        "gateway": gateway,
        "gateway_kube_source": kube_source,
    }
    text = json.dumps(payload, indent=2)
    (RESULTS / f"scale-{stamp}.json").write_text(text)
    (RESULTS / "scale-latest.json").write_text(text)
    print(json.dumps(payload))


if __name__ == "__main__":
    main()
