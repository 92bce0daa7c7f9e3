"""End-to-end tool calls through gateway → worker → PostgreSQL, beside a bare MCPServer.

``make bench`` (``python -m bench.gateway``): starts its own PostgreSQL, a
tenant worker, a development issuer and a gateway (as separate processes),
and a baseline bare ``MCPServer`` with in-process storage. Each client loops
save-then-get with a valid token over stateless JSON-RPC POSTs. Prints
calls/s and p50/p95/p99 at 1, 16 and 64 concurrent clients with the ratio to
the baseline, and writes JSON under ``bench/results/``.

``--profile`` runs the gateway under cProfile for one 16-client round and
prints where its time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pstats
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import httpx

from bench._baseline import start_baseline, stop
from bench._stack import start_stack
from bench._stats import Row, report, summarize, with_ratios
from tests.gateway.harness import GatewayProcess, running_gateway
from tests.support.issuer import Issuer
from tests.support.tools import free_port

HEADERS = {
    "content-type": "application/json",
    "accept": "application/json, text/event-stream",
    "mcp-protocol-version": "2025-11-25",
}


async def _client_loop(
    http: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    stop_at: float,
    saves: list[float],
    gets: list[float],
    errors: list[str],
) -> None:
    n = 0
    object_id = uuid.uuid4().hex[:16]
    while time.monotonic() < stop_at:
        n += 1
        for tool, args, sink in (
            ("items_save", {"id": object_id, "data": {"n": n, "text": "hello world"}}, saves),
            ("items_get", {"id": object_id}, gets),
        ):
            body = {"jsonrpc": "2.0", "id": n, "method": "tools/call",
                    "params": {"name": tool, "arguments": args}}  # fmt: skip
            start = time.perf_counter()
            response = await http.post(url, json=body, headers=headers)
            elapsed = time.perf_counter() - start
            result = response.json().get("result") if response.status_code == 200 else None
            if result is None or result.get("isError"):
                errors.append(f"{response.status_code} {response.text[:200]}")
            else:
                sink.append(elapsed)


async def _round(
    target: str, url: str, headers: dict[str, str], concurrency: int, seconds: float
) -> tuple[list[Row], int]:
    saves: list[float] = []
    gets: list[float] = []
    errors: list[str] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as http:
        # Warm up: connections, JIT-free caches (JWKS, user ids, catalogues).
        await _client_loop(http, url, headers, time.monotonic() + 0.3, [], [], [])
        start = time.monotonic()
        stop_at = start + seconds
        await asyncio.gather(
            *(
                _client_loop(http, url, headers, stop_at, saves, gets, errors)
                for _ in range(concurrency)
            )
        )
        elapsed = time.monotonic() - start
    if errors:
        print(f"  {target} c={concurrency}: {len(errors)} errors, e.g. {errors[0]}", flush=True)
    rows = [
        summarize(target, "call", concurrency, saves + gets, elapsed),
        summarize(target, "save", concurrency, saves, elapsed),
        summarize(target, "get", concurrency, gets, elapsed),
    ]
    return rows, len(errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", 5)))
    parser.add_argument("--concurrency", type=int, nargs="*", default=[1, 16, 64])
    parser.add_argument("--profile", action="store_true", help="profile the gateway instead")
    args = parser.parse_args()

    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="stowage-bench-")))
        parts = start_stack(stack, work)
        shell, issuer = parts.gateway, parts.issuer
        if args.profile:
            _profile(shell, issuer, args.seconds)
            return
        gateway = stack.enter_context(running_gateway(shell.workdir, port=shell.port))
        token = issuer.token(gateway.url("bench"), subject="bench-user", ttl=86400)
        gw_headers = {**HEADERS, "authorization": f"Bearer {token}"}

        base_port = free_port()
        baseline = start_baseline(base_port, work / "baseline.log")
        stack.callback(stop, baseline)
        base_url = f"http://127.0.0.1:{base_port}/mcp"

        rows: list[Row] = []
        failures = 0
        for concurrency in args.concurrency:
            for target, url, headers in (
                ("baseline bare MCPServer", base_url, HEADERS),
                ("gateway→worker→postgres", gateway.url("bench"), gw_headers),
            ):
                print(f"  {target}, {concurrency} clients, {args.seconds}s", flush=True)
                found, errors = asyncio.run(_round(target, url, headers, concurrency, args.seconds))
                rows += found
                failures += errors
        print()
        report(
            "gateway",
            with_ratios(rows, "baseline bare MCPServer"),
            {
                "seconds_per_round": args.seconds,
                "errors": failures,
                "workload": "each client loops items_save then items_get on its own object; "
                "stateless JSON-RPC POSTs with JSON responses; load generator, gateway, "
                "worker, PostgreSQL and baseline share the machine",
            },
        )


def _profile(shell: GatewayProcess, issuer: Issuer, seconds: float) -> None:
    """Serve the gateway from a thread of this process under cProfile, for one 16-client round.

    (A profiled subprocess would lose its profile: uvicorn re-raises SIGTERM after shutdown.)
    The JSON log lines go to a file, so their cost is in the profile as in production.
    """
    import cProfile
    import logging
    import threading

    import uvicorn

    from gateway import GatewaySettings, create_app
    from stowage._logging import JsonFormatter

    handler = logging.FileHandler(shell.workdir / "gateway.log")
    handler.setFormatter(JsonFormatter())
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
    app = create_app(GatewaySettings(tenants_file=shell.tenants_file, public_url=shell.base))
    config = uvicorn.Config(app, host="127.0.0.1", port=shell.port, log_config=None,
                            access_log=False)  # fmt: skip
    server = uvicorn.Server(config)
    profiler = cProfile.Profile()

    def run() -> None:
        profiler.enable()
        try:
            server.run()
        finally:
            profiler.disable()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the profiled gateway did not start")
        time.sleep(0.05)
    token = issuer.token(shell.url("bench"), subject="bench-user", ttl=86400)
    headers = {**HEADERS, "authorization": f"Bearer {token}"}
    rows, _ = asyncio.run(_round("gateway (profiled)", shell.url("bench"), headers, 16, seconds))
    server.should_exit = True
    thread.join(timeout=30)
    print(f"profiled round: {rows[0].ops_per_s} calls/s (profiler overhead included)")
    stats = pstats.Stats(profiler)
    print("\n== gateway thread, by own time ==")
    stats.sort_stats("tottime").print_stats(30)
    print("\n== gateway thread, by cumulative time ==")
    stats.sort_stats("cumulative").print_stats(60)


if __name__ == "__main__":
    main()
