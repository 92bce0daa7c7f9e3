"""``make bench``: save+get tool calls through the platform beside a bare MCPServer, driven by wrk.

Starts its own PostgreSQL, a tenant worker, a development issuer and a
gateway (separate processes), and the baseline: a bare ``MCPServer`` doing the
same storage work in-process (``bench._mcp_baseline``). ``wrk`` (a native load
generator, so the client is not the bottleneck) runs ``bench/tool_calls.lua``
against each at several concurrencies, in the same run, alternating
``items_save`` and ``items_get`` over stateless JSON-RPC.

For each round it prints calls/s, p50/p95/p99 latency, errors, the ratio to
the baseline's calls/s at the same concurrency, and the CPU milliseconds per
call of each process (gateway, worker, PostgreSQL, baseline, and wrk itself),
read from /proc before and after the round; and writes the same as JSON under
``bench/results/``. It measures; it asserts nothing.

Then the components rows: ``tools/list`` and save+get with the tenant's
components (MCP Apps) declared and without, alternating, to show what linking
tools to a component costs per call; and the spaces rows (``bench._spaces``):
save+get in a shared space beside personal save+get (the membership check),
and the first page of a space of 10,000 objects beside one of 10.

With ``--gateway-processes 1 2`` (``make bench`` passes it) the run ends with a
scale row: the same platform with the gateway at 1 and at 2 processes
(``stowage gateway serve --processes N``), both sharing rate limits through a
Redis it starts, at ``--scale-concurrency`` connections; the gateway's CPU is
summed over its processes, Redis's is its own column.

With ``--files`` (``make bench`` passes it) the files rows (``bench._files``): MB/s of
uploads and downloads through signed links (gateway → worker → PostgreSQL chunks)
beside psycopg writing and reading the same chunks, with the ratio; then the same for
a tenant whose files live in an S3-compatible bucket (``bench._bucket_files``: a moto
server and a second worker, gateway → worker → multipart upload) beside aiobotocore
putting and getting the same bytes in the same parts. ``--concurrency`` with no value
and the components and spaces rows at 0 leave only the rows asked for (no save+get
table then).

With ``--tracing off 1% 100%`` (``make bench`` passes it) the tracing rows
(``bench._tracing``): save+get with tracing off, with 1 % and with 100 % of the
calls sampled into a Jaeger the bench starts, alternating.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import psycopg

from bench import _profile
from bench._baseline import start_baseline, stop
from bench._bucket_files import PART, bucket_files_rounds
from bench._cpu import CpuMeter, parent_of, waiting_seconds
from bench._files import (
    FILES_SPEC,
    files_rounds,
    keys_dir,
    offer_files,
    print_files_table,
    write_files_json,
)
from bench._spaces import Spaces, spaces_rounds
from bench._stack import COLLECTIONS, OPEN_LIMITS, TENANT, start_stack
from bench._stats import RESULTS
from bench._tracing import SAMPLERS, tracing_rounds
from stowage_dev._platform import notes_component
from stowage_testing.gateway import (
    GatewayProcess,
    post,
    rpc,
    running_gateway,
    running_processes,
    tenant_entry,
)
from stowage_testing.issuer import Issuer
from stowage_testing.postgres import PostgresServer
from stowage_testing.redis import redis_server
from stowage_testing.tools import free_port

SCRIPT = Path(__file__).resolve().parent / "tool_calls.lua"
BASELINE = "bare MCPServer"
PLATFORM = "gateway→worker→postgres"


@dataclass(frozen=True)
class Round:
    target: str
    concurrency: int
    calls: int
    seconds: float
    calls_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int
    #: CPU milliseconds per call, by process.
    cpu_ms_per_call: dict[str, float] = field(default_factory=dict)
    ratio_to_baseline: float | None = None
    #: The share of the round in which some task of the machine waited for a core
    #: (``bench._cpu.waiting_seconds``); None where the kernel keeps no such count.
    core_wait: float | None = None


def _run_wrk(
    url: str,
    concurrency: int,
    seconds: float,
    token: str,
    *,
    saves_only: bool = False,
    tools_list: bool = False,
    space: str = "",
    collection: str = "items",
    lists: bool = False,
) -> subprocess.Popen[str]:
    program = shutil.which("wrk")
    if program is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (hack/test-deps.sh does)")
    threads = max(1, min(2, concurrency))
    env = {
        **os.environ,
        "BENCH_TOKEN": token,
        "BENCH_OBJECTS": str(-(-concurrency // threads)),
        "BENCH_SAVES_ONLY": "1" if saves_only else "0",
        "BENCH_TOOLS_LIST": "1" if tools_list else "0",
        "BENCH_SPACE": space,
        "BENCH_COLLECTION": collection,
        "BENCH_LIST": "1" if lists else "0",
    }
    return subprocess.Popen(
        [program, "-t", str(threads), "-c", str(concurrency), "-d", f"{max(1, round(seconds))}s",
         "--timeout", "30s", "-s", str(SCRIPT), url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )  # fmt: skip


def _summary(proc: subprocess.Popen[str]) -> dict[str, int]:
    out, err = proc.communicate(timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {err or out}")
    for line in reversed(out.splitlines()):
        if line.startswith("{"):
            summary: dict[str, int] = json.loads(line)
            return summary
    raise RuntimeError(f"wrk printed no summary: {out}")


def measure(
    target: str,
    url: str,
    concurrency: int,
    seconds: float,
    groups: dict[str, list[int]],
    token: str = "",
    *,
    tools_list: bool = False,
    space: str = "",
    collection: str = "items",
    lists: bool = False,
) -> Round:
    # Warm up: connections, caches, and the objects the gets read.
    _summary(_run_wrk(url, concurrency, 1.0, token, saves_only=True, space=space,
                      collection=collection, lists=lists))  # fmt: skip
    meter = CpuMeter(groups)
    meter.start()
    waited = waiting_seconds()
    proc = _run_wrk(url, concurrency, seconds, token, tools_list=tools_list, space=space,
                    collection=collection, lists=lists)  # fmt: skip
    wrk_meter = CpuMeter({"wrk": [proc.pid]})
    wrk_meter.start()
    cpu_wrk = 0.0
    while proc.poll() is None:
        cpu_wrk = max(cpu_wrk, wrk_meter.delta()["wrk"])  # sampled while it runs
        time.sleep(0.2)
    summary = _summary(proc)
    cpu = {**meter.delta(), "wrk": cpu_wrk}
    waited_now = waiting_seconds()
    calls = int(summary["requests"])
    elapsed = int(summary["duration_us"]) / 1e6
    core_wait = None
    if waited is not None and waited_now is not None and elapsed:
        core_wait = round(min(1.0, (waited_now - waited) / elapsed), 3)
    return Round(
        target=target,
        concurrency=concurrency,
        calls=calls,
        seconds=round(elapsed, 2),
        calls_per_s=round(calls / elapsed, 1) if elapsed else 0.0,
        p50_ms=round(int(summary["p50_us"]) / 1000, 2),
        p95_ms=round(int(summary["p95_us"]) / 1000, 2),
        p99_ms=round(int(summary["p99_us"]) / 1000, 2),
        errors=int(summary["errors"]) + int(summary["socket_errors"]),
        cpu_ms_per_call={
            name: round(seconds_used * 1000 / calls, 3) if calls else 0.0
            for name, seconds_used in cpu.items()
        },
        core_wait=core_wait,
    )


def _postmaster(server: PostgresServer) -> int:
    with psycopg.connect(server.dsn()) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        # While the connection is open: its backend exits when it closes.
        return parent_of(int(row[0]))


def with_ratios(rounds: list[Round]) -> list[Round]:
    """Each round's calls/s over the baseline's at its concurrency.

    A platform round of the alternating side-by-side rounds already holds its own
    ratio (to the baseline round just before it); any other round is compared with
    the median of the baseline rounds at its concurrency.
    """
    by_concurrency: dict[int, list[float]] = {}
    for r in rounds:
        if r.target == BASELINE:
            by_concurrency.setdefault(r.concurrency, []).append(r.calls_per_s)
    base = {c: statistics.median(v) for c, v in by_concurrency.items()}
    out = []
    for r in rounds:
        if r.ratio_to_baseline is not None and r.target != BASELINE:
            out.append(r)
            continue
        b = base.get(r.concurrency)
        ratio = 1.0 if r.target == BASELINE else (round(r.calls_per_s / b, 3) if b else None)
        out.append(Round(**{**asdict(r), "ratio_to_baseline": ratio}))
    return out


def ratio_summary(rounds: list[Round]) -> list[dict[str, object]]:
    """Per concurrency: the median of the alternating rounds' platform/baseline ratios and
    their spread, with the median p99 of each side. A change is worth keeping only when
    its median moves by more than the spread."""
    summary: list[dict[str, object]] = []
    for concurrency in sorted({r.concurrency for r in rounds if r.target == BASELINE}):
        pairs = [
            r for r in rounds
            if r.target == PLATFORM and r.concurrency == concurrency and r.ratio_to_baseline
        ]  # fmt: skip
        bases = [r for r in rounds if r.target == BASELINE and r.concurrency == concurrency]
        if not pairs:
            continue
        ratios = [float(r.ratio_to_baseline or 0) for r in pairs]
        summary.append(
            {
                "concurrency": concurrency,
                "rounds": len(ratios),
                "median_ratio": round(statistics.median(ratios), 3),
                "min_ratio": round(min(ratios), 3),
                "max_ratio": round(max(ratios), 3),
                "platform_p99_ms": round(statistics.median(r.p99_ms for r in pairs), 2),
                "baseline_p99_ms": round(statistics.median(r.p99_ms for r in bases), 2),
            }
        )
    return summary


def print_ratio_summary(summary: list[dict[str, object]]) -> None:
    print(f"{'conc':>5}{'rounds':>8}{'median x base':>15}{'spread':>16}{'p99 ms platform':>17}"
          f"{'p99 ms base':>13}")  # fmt: skip
    for row in summary:
        spread = f"{row['min_ratio']:.2f} to {row['max_ratio']:.2f}"
        print(
            f"{row['concurrency']:>5}{row['rounds']:>8}{row['median_ratio']:>15.2f}{spread:>16}"
            f"{row['platform_p99_ms']:>17.2f}{row['baseline_p99_ms']:>13.2f}"
        )


def scaled(processes: int) -> str:
    """The scale row's target for a gateway of ``processes`` processes."""
    return f"{PLATFORM}, {processes} gateway process{'es' if processes > 1 else ''}"


def print_table(rounds: list[Round]) -> None:
    processes = sorted({name for r in rounds for name in r.cpu_ms_per_call})
    width = max([26, *(len(r.target) + 2 for r in rounds)])
    header = f"{'target':<{width}}{'conc':>5}{'calls/s':>10}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
    header += f"{'errors':>8}{'x base':>8}{'core wait':>11}"
    header += "".join(f"{'cpu ' + p:>14}" for p in processes)
    print(header)
    print("-" * len(header))
    for r in rounds:
        ratio = f"{r.ratio_to_baseline:.2f}" if r.ratio_to_baseline is not None else "-"
        wait = f"{100 * r.core_wait:.0f} %" if r.core_wait is not None else "-"
        cpus = "".join(
            f"{r.cpu_ms_per_call[p]:>14.3f}" if p in r.cpu_ms_per_call else f"{'-':>14}"
            for p in processes
        )
        print(
            f"{r.target:<{width}}{r.concurrency:>5}{r.calls_per_s:>10.1f}{r.p50_ms:>9.2f}"
            f"{r.p95_ms:>9.2f}{r.p99_ms:>9.2f}{r.errors:>8}{ratio:>8}{wait:>11}{cpus}"
        )
    print(
        "(cpu columns: CPU milliseconds per call of each process; a gateway of several "
        "processes is summed over them; core wait: the share of the round in which some "
        "process of the machine was ready to run and waited for a core, from Linux's "
        "/proc/pressure/cpu)"
    )


def write_json(name: str, rounds: list[Round], notes: dict[str, object]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    payload = {
        "benchmark": name,
        "at": stamp,
        "machine": {"python": platform.python_version(), "cpus": len(os.sched_getaffinity(0))},
        "notes": notes,
        "rounds": [asdict(r) for r in rounds],
    }
    text = json.dumps(payload, indent=2)
    path = RESULTS / f"{name}-{stamp}.json"
    path.write_text(text)
    (RESULTS / f"{name}-latest.json").write_text(text)
    print(json.dumps(payload))
    print(f"\nwritten to {path}")
    return path


def _profiled_round(
    out: Path,
    url: str,
    concurrency: int,
    seconds: float,
    groups: dict[str, list[int]],
    token: str,
) -> None:
    """One more platform round with py-spy on the gateway and the worker; print their tops."""
    print(f"  {PLATFORM}, {concurrency} connections, {seconds}s, under py-spy", flush=True)
    pids = {name: groups[name][0] for name in ("gateway", "worker")}
    spies = _profile.record(pids, seconds + 1, out)
    measure(PLATFORM, url, concurrency, seconds, groups, token)
    for spy in spies:
        spy.wait(timeout=60)
    for name in pids:
        print(_profile.top(out / f"{name}.folded"))


def scale_rounds(
    stack: ExitStack,
    shell: GatewayProcess,
    token: str,
    counts: list[int],
    concurrencies: list[int],
    seconds: float,
    groups: dict[str, list[int]],
) -> list[Round]:
    """The platform with the gateway at each of ``counts`` processes, all sharing one Redis.

    Each gateway serves the shell's tenants file on a port of its own and is
    stopped before the next starts, so one gateway at a time takes the load.
    """
    print("starting Redis for the gateway scale rows ...", flush=True)
    redis = stack.enter_context(redis_server())
    assert redis.proc is not None
    rounds = []
    for count in counts:
        with running_processes(
            shell.workdir, processes=count, port=free_port(), redis_url=redis.url
        ) as gateway:
            assert gateway.proc is not None
            # The gateway's group is its supervisor, whose children CpuMeter sums.
            scale_groups = {**groups, "gateway": [gateway.proc.pid], "redis": [redis.proc.pid]}
            # The token's audience is the shell's URL, which every gateway here accepts.
            url = gateway.url(TENANT)
            for concurrency in concurrencies:
                print(f"  {scaled(count)}, {concurrency} connections, {seconds}s", flush=True)
                rounds.append(
                    measure(scaled(count), url, concurrency, seconds, scale_groups, token)
                )
    return rounds


def _tenants(
    shell: GatewayProcess,
    issuer: Issuer,
    worker: str,
    components: bool,
    also: Sequence[dict[str, Any]] = (),
    **extra: object,
) -> None:
    """Write the gateway's tenants: the bench tenant (``extra`` in its spec), then ``also``."""
    spec: dict[str, object] = {"rateLimits": OPEN_LIMITS, "collections": COLLECTIONS, **extra}
    if components:
        spec["components"] = [notes_component()]
    shell.write_tenants([tenant_entry(TENANT, shell, issuer, worker, **spec), *also])


def _wait_for_components(url: str, token: str, present: bool) -> None:
    """Until the gateway's ``tools/list`` shows (or no longer shows) the component link."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        reply = post(url, rpc("tools/list"), token)
        tools = {t["name"]: t for t in reply.json()["result"]["tools"]}
        if ("ui" in tools["notes_get"].get("_meta", {})) == present:
            return
        time.sleep(0.1)
    raise RuntimeError("the gateway did not reload its tenants file")


def components_rounds(
    shell: GatewayProcess,
    issuer: Issuer,
    worker: str,
    url: str,
    concurrency: int,
    seconds: float,
    groups: dict[str, list[int]],
    token: str,
    repeats: int = 2,
) -> list[Round]:
    """tools/list and save+get, without and with a component linked to the tools, alternating."""
    rounds = []
    for _ in range(repeats):
        for on in (False, True):
            _tenants(shell, issuer, worker, on)
            _wait_for_components(url, token, on)
            suffix = ", components on" if on else ""
            print(f"  tools/list{suffix}, {concurrency} connections, {seconds}s", flush=True)
            rounds.append(
                measure(f"{PLATFORM} tools/list{suffix}", url, concurrency, seconds, groups,
                        token, tools_list=True)
            )  # fmt: skip
            print(f"  save+get{suffix}, {concurrency} connections, {seconds}s", flush=True)
            rounds.append(measure(f"{PLATFORM}{suffix}", url, concurrency, seconds, groups, token))
    _tenants(shell, issuer, worker, False)
    return rounds


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", 5)))
    parser.add_argument("--concurrency", type=int, nargs="*", default=[1, 16, 64])
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="alternating baseline/platform rounds at each concurrency; the summary prints "
        "the median ratio and its spread (min to max)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="then one more platform round at the highest concurrency under py-spy: folded "
        "stacks of the gateway and the worker here, and their top functions printed",
    )
    parser.add_argument(
        "--gateway-processes",
        type=int,
        nargs="*",
        default=[],
        metavar="N",
        help="also measure the platform with the gateway at each of these process counts, "
        "sharing a Redis (the scale row; make bench passes 1 2)",
    )
    parser.add_argument(
        "--components-concurrency",
        type=int,
        default=16,
        help="connections of the components rows (tools/list and save+get, a component "
        "declared and not); 0 leaves them out",
    )
    parser.add_argument(
        "--spaces-concurrency",
        type=int,
        default=16,
        help="connections of the spaces rows (save+get personal, in spaces of their own and "
        "in one space; the first page of a space of 10 and of 10,000 objects); 0 leaves them out",
    )
    parser.add_argument(
        "--files",
        action="store_true",
        help="also the files rows: MB/s of uploads and downloads through signed links beside "
        "psycopg moving the same 256 KiB chunks (make bench passes it)",
    )
    parser.add_argument(
        "--files-concurrency", type=int, default=4, help="transfers at a time in the files rows"
    )
    parser.add_argument(
        "--file-mib", type=int, default=8, help="size of each file in the files rows, MiB"
    )
    parser.add_argument(
        "--bucket-file-mib",
        type=int,
        default=25,
        help="with --files, size of each file in the rows of files in an S3-compatible "
        "bucket (moto), MiB; 0 leaves those rows out",
    )
    parser.add_argument(
        "--bucket-files-concurrency",
        type=int,
        default=2,
        help="transfers at a time in the bucket files rows",
    )
    parser.add_argument(
        "--tracing",
        nargs="*",
        default=[],
        choices=sorted(SAMPLERS),
        help="also measure save+get with tracing at each of these settings (off, 1%%, 100%% "
        "of calls sampled into a Jaeger the bench starts), at --tracing-concurrency",
    )
    parser.add_argument(
        "--tracing-concurrency", type=int, default=16, help="connections of the tracing rows"
    )
    parser.add_argument(
        "--tracing-repeats",
        type=int,
        default=3,
        help="rounds of each tracing setting, alternating (drift on a shared machine is large)",
    )
    parser.add_argument(
        "--scale-concurrency",
        type=int,
        nargs="*",
        default=[16, 64],
        help="connections of the scale rows",
    )
    return parser.parse_args()


def _side_by_side(
    args: argparse.Namespace,
    base_url: str,
    baseline_pid: int,
    url: str,
    groups: dict[str, list[int]],
    token: str,
) -> list[Round]:
    """``--rounds`` alternating rounds at each concurrency: the bare MCPServer, then the
    platform, whose round holds its ratio to that baseline round (drift on the machine
    hits both sides of a pair alike)."""
    rounds: list[Round] = []
    for concurrency in args.concurrency:
        for index in range(args.rounds):
            tag = f"round {index + 1}/{args.rounds}"
            print(f"  {BASELINE}, {concurrency} connections, {args.seconds}s, {tag}", flush=True)
            base = measure(
                BASELINE, base_url, concurrency, args.seconds, {"baseline": [baseline_pid]}
            )
            print(f"  {PLATFORM}, {concurrency} connections, {args.seconds}s, {tag}", flush=True)
            ours = measure(PLATFORM, url, concurrency, args.seconds, groups, token)
            ratio = round(ours.calls_per_s / base.calls_per_s, 3) if base.calls_per_s else None
            rounds += [base, Round(**{**asdict(ours), "ratio_to_baseline": ratio})]
    return rounds


def main() -> None:
    args = _arguments()
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="stowage-bench-")))
        parts = start_stack(stack, work)
        shell = parts.gateway
        gateway = stack.enter_context(
            running_gateway(
                shell.workdir, port=shell.port, extra_args=("--files-keys-dir", str(keys_dir(work)))
            )
        )
        token = parts.issuer.token(gateway.url("bench"), subject="bench-user", ttl=86400)
        base_port = free_port()
        baseline = start_baseline(base_port, work / "baseline.log")
        stack.callback(stop, baseline)

        assert gateway.proc is not None and parts.worker.proc is not None
        groups = {
            "gateway": [gateway.proc.pid],
            "worker": [parts.worker.proc.pid],
            "postgres": [_postmaster(parts.postgres)],
        }
        base_url = f"http://127.0.0.1:{base_port}/mcp"
        url = gateway.url("bench")
        rounds = _side_by_side(args, base_url, baseline.pid, url, groups, token)
        if args.components_concurrency:
            rounds += components_rounds(shell, parts.issuer, parts.worker.address, url,
                                        args.components_concurrency, args.seconds, groups,
                                        token)  # fmt: skip
        if args.spaces_concurrency:
            spaces = Spaces(parts.worker.address, TENANT, parts.issuer.url, "bench-user")
            rounds += spaces_rounds(measure, spaces, PLATFORM, url, args.spaces_concurrency,
                                    args.seconds, groups, token)  # fmt: skip
        file_rows = []
        if args.files:
            worker = parts.worker.address
            offer_files(lambda files: _tenants(shell, parts.issuer, worker, False, files=files),
                        url, token)  # fmt: skip
            file_rows = files_rounds(
                url,
                token,
                parts.postgres,
                groups,
                concurrency=args.files_concurrency,
                size_mib=args.file_mib,
            )
            if args.bucket_file_mib:
                file_rows += bucket_files_rounds(
                    work,
                    parts.postgres,
                    shell,
                    parts.issuer,
                    partial(_tenants, shell, parts.issuer, worker, False, files=FILES_SPEC),
                    {"gateway": groups["gateway"], "postgres": groups["postgres"]},
                    concurrency=args.bucket_files_concurrency,
                    size_mib=args.bucket_file_mib,
                )
            _tenants(shell, parts.issuer, worker, False)
        if args.tracing:
            rounds += tracing_rounds(measure, parts, work, PLATFORM, args.tracing,
                                     args.tracing_concurrency, args.seconds,
                                     {"postgres": groups["postgres"]},
                                     args.tracing_repeats)  # fmt: skip
        if args.gateway_processes:
            rest = {k: v for k, v in groups.items() if k != "gateway"}
            rounds += scale_rounds(stack, shell, token, args.gateway_processes,
                                   args.scale_concurrency, args.seconds, rest)  # fmt: skip
        if args.profile is not None:
            _profiled_round(args.profile, url, max(args.concurrency), args.seconds, groups, token)
        print()
        rounds = with_ratios(rounds)
        summary = ratio_summary(rounds)
        if rounds:
            print_table(rounds)
            print()
            print_ratio_summary(summary)
        if file_rows:
            print()
            print_files_table(file_rows)
            write_files_json(file_rows, {"file_mib": args.file_mib,
                                         "concurrency": args.files_concurrency,
                                         "bucket_file_mib": args.bucket_file_mib,
                                         "bucket_concurrency": args.bucket_files_concurrency,
                                         "bucket_part_bytes": PART,
                                         "bucket_server": "moto in server mode (in memory) "
                                         "on 127.0.0.1"})  # fmt: skip
        if not rounds:
            return
        write_json(
            "platform",
            rounds,
            {
                "seconds_per_round": args.seconds,
                "load": "wrk with bench/tool_calls.lua: items_save and items_get alternating, "
                "stateless JSON-RPC POSTs with JSON responses, one object per connection",
                "machine": "load generator, gateway, worker, PostgreSQL and baseline share it",
                "rounds_per_concurrency": args.rounds,
                "ratio_summary": summary,
            },
        )


if __name__ == "__main__":
    main()
