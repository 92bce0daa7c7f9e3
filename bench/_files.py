"""The files rows of ``make bench``: MB/s of file uploads and downloads through the
platform beside psycopg moving the same chunks in the same PostgreSQL.

- **Platform**: a PUT of the whole file to its signed link (gateway → gRPC client
  stream → worker → 256 KiB rows of ``file_chunks`` in one transaction), and a GET
  of the download link (the chunks back through a gRPC server stream), over HTTP
  from this process (httpx). The links are made by ``files_create_upload`` /
  ``files_get`` tool calls before the round's clock starts: the rows time the
  bytes, not the tool calls.
- **Baseline**: psycopg (async, binary) on the same server, in a database of its
  own: an upload is one transaction that inserts the file's 256 KiB chunks into a
  table shaped as ``file_chunks`` (its data stored out of line and uncompressed,
  as the worker's migration sets) and deletes the previous version's; a download
  selects them back in order.

Each upload after the first is a new version of the same files (as the worker
does, the previous version's chunks go), so the quotas hold and both sides do the
same work. Platform and baseline alternate ``repeats`` times; MB/s is bytes moved
over the round's wall time, with the CPU milliseconds per MiB of each process
(gateway, worker, PostgreSQL, and this process as the client).

The same rows for a tenant whose files live in the Region's bucket are
``bench._bucket_files``; they move their bytes with the helpers here.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench._cpu import CpuMeter
from bench._stats import RESULTS
from gateway.files import CURRENT_KEY
from stowage_testing.gateway import post, rpc
from stowage_testing.postgres import PostgresServer

#: The bench tenant's files (the worker's policy and the gateway's tenant entry).
FILES_SPEC = {"maxFileBytes": "64Mi"}
#: The worker's chunk size (tenant_worker.files._values.CHUNK_BYTES).
CHUNK = 256 * 1024
PLATFORM = "files via signed links"
BASELINE = "psycopg, same chunks"
_BASELINE_DB = "bench_files_baseline"
_TYPE = "application/octet-stream"


def keys_dir(work: Path) -> Path:
    """A gateway ``--files-keys-dir`` with a fresh master key."""
    keys = work / "files-keys"
    keys.mkdir(exist_ok=True)
    (keys / CURRENT_KEY).write_text(secrets.token_hex(32))
    return keys


@dataclass(frozen=True)
class FileRound:
    target: str
    #: ``upload`` or ``download``.
    direction: str
    concurrency: int
    files: int
    mib: float
    seconds: float
    mb_per_s: float
    errors: int
    #: CPU milliseconds per MiB moved, by process.
    cpu_ms_per_mib: dict[str, float] = field(default_factory=dict)
    ratio_to_baseline: float | None = None


class PlatformFiles:
    """The bench user's files, moved through the gateway's signed links."""

    def __init__(self, url: str, token: str, files: int, size: int) -> None:
        self.url, self.token, self.size = url, token, size
        self.ids: list[str] = []
        for i in range(files):
            created = self._tool("files_create_upload", self._upload_args(f"bench-{i}.bin"))
            self.ids.append(created["file"]["id"])

    def _upload_args(self, name: str, **more: str) -> dict[str, Any]:
        return {"name": name, "content_type": _TYPE, "size": self.size, **more}

    def _tool(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        reply = post(
            self.url, rpc("tools/call", {"name": name, "arguments": arguments}), self.token
        )
        result = reply.json()["result"]
        if result.get("isError"):
            raise RuntimeError(f"{name} failed: {result['content'][0]['text']}")
        structured: dict[str, Any] = result["structuredContent"]
        return structured

    def upload_links(self) -> list[str]:
        made = [
            self._tool("files_create_upload", self._upload_args("b.bin", id=i)) for i in self.ids
        ]
        return [m["upload"]["url"] for m in made]

    def download_links(self) -> list[str]:
        return [self._tool("files_get", {"id": i})["download"]["url"] for i in self.ids]


class _Baseline:
    """The same chunks written and read by psycopg in a database of their own."""

    def __init__(self, server: PostgresServer) -> None:
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {_BASELINE_DB}")
            conn.execute(f"CREATE DATABASE {_BASELINE_DB}")
        self.dsn = server.dsn(_BASELINE_DB)
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE chunks (content text, seq integer, file_id text NOT NULL, "
                "data bytea NOT NULL, PRIMARY KEY (content, seq))"
            )
            conn.execute("ALTER TABLE chunks ALTER COLUMN data SET STORAGE EXTERNAL")
            conn.execute("CREATE TABLE files (id text PRIMARY KEY, content text)")
        self.ids: list[str] = []

    def create(self, files: int) -> None:
        self.ids = [f"f{i}" for i in range(files)]
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            for file_id in self.ids:
                conn.execute("INSERT INTO files VALUES (%s, NULL)", (file_id,))

    async def upload(self, conn: psycopg.AsyncConnection[Any], file_id: str, data: bytes) -> None:
        content = secrets.token_hex(16)
        rows = [
            (content, seq, file_id, data[at : at + CHUNK])
            for seq, at in enumerate(range(0, len(data), CHUNK))
        ]
        async with conn.transaction(), conn.cursor(binary=True) as cur:
            await cur.executemany("INSERT INTO chunks VALUES (%s, %s, %s, %b)", rows)
            await cur.execute(
                "DELETE FROM chunks WHERE file_id = %s AND content <> %s", (file_id, content)
            )
            await cur.execute("UPDATE files SET content = %s WHERE id = %s", (content, file_id))

    async def download(self, conn: psycopg.AsyncConnection[Any], file_id: str) -> int:
        got = 0
        async with conn.transaction(), conn.cursor(binary=True) as cur:
            await cur.execute(
                "SELECT c.data FROM chunks c JOIN files f ON f.content = c.content "
                "WHERE f.id = %s ORDER BY c.seq",
                (file_id,),
            )
            async for (data,) in cur:
                got += len(data)
        return got


async def in_parallel(
    concurrency: int,
    jobs: Sequence[Callable[[], Awaitable[int]]],
    failures: tuple[type[Exception], ...] = (),
) -> int:
    """Run ``jobs`` ``concurrency`` at a time; the failures (of the kinds counted: HTTP,
    psycopg, a short transfer, and ``failures``)."""
    queue = list(jobs)
    errors = 0
    counted: tuple[type[Exception], ...] = (httpx.HTTPError, psycopg.Error, RuntimeError, *failures)

    async def lane() -> None:
        nonlocal errors
        while queue:
            job = queue.pop()
            try:
                await job()
            except counted:
                errors += 1

    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return errors


async def platform_moves(direction: str, links: list[str], data: bytes, concurrency: int) -> int:
    """Upload ``data`` to each link (PUT), or download each link's file (GET); the failures."""
    async with httpx.AsyncClient(timeout=120) as http:

        async def put(url: str) -> int:
            reply = await http.put(url, content=data)
            if reply.status_code != 200:
                raise RuntimeError(f"PUT answered {reply.status_code}: {reply.text[:200]}")
            return len(data)

        async def get(url: str) -> int:
            got = 0
            async with http.stream("GET", url) as reply:
                async for piece in reply.aiter_raw():
                    got += len(piece)
            if reply.status_code != 200 or got != len(data):
                raise RuntimeError(f"GET answered {reply.status_code} with {got} bytes")
            return got

        move = put if direction == "upload" else get
        return await in_parallel(concurrency, [partial(move, u) for u in links])


async def _baseline_moves(
    baseline: _Baseline, direction: str, data: bytes, concurrency: int
) -> int:
    conns = [await psycopg.AsyncConnection.connect(baseline.dsn) for _ in range(concurrency)]
    free = asyncio.Queue[psycopg.AsyncConnection[Any]]()
    for conn in conns:
        free.put_nowait(conn)
    try:

        async def move(file_id: str) -> int:
            conn = await free.get()
            try:
                if direction == "upload":
                    await baseline.upload(conn, file_id, data)
                    return len(data)
                got = await baseline.download(conn, file_id)
                if got != len(data):
                    raise RuntimeError(f"read {got} bytes of {len(data)}")
                return got
            finally:
                free.put_nowait(conn)

        return await in_parallel(concurrency, [partial(move, f) for f in baseline.ids])
    finally:
        for conn in conns:
            await conn.close()


def timed(
    target: str,
    direction: str,
    concurrency: int,
    files: int,
    size: int,
    groups: dict[str, list[int]],
    run: Callable[[], Coroutine[Any, Any, int]],
) -> FileRound:
    """One round: ``run()`` (its failures) timed, with the CPU of ``groups`` and this process."""
    meter = CpuMeter(groups)
    meter.start()
    client_before = time.process_time()
    started = time.perf_counter()
    errors = asyncio.run(run())
    elapsed = time.perf_counter() - started
    cpu = {**meter.delta(), "bench client": time.process_time() - client_before}
    mib = files * size / 2**20
    return FileRound(
        target=target,
        direction=direction,
        concurrency=concurrency,
        files=files,
        mib=round(mib, 1),
        seconds=round(elapsed, 3),
        mb_per_s=round(files * size / 1e6 / elapsed, 1),
        errors=errors,
        cpu_ms_per_mib={name: round(s * 1000 / mib, 2) for name, s in cpu.items()},
    )


def offer_files(write_tenants: Callable[[dict[str, Any]], None], url: str, token: str) -> None:
    """Write the gateway's tenants with ``files`` (``write_tenants(FILES_SPEC)``) and wait
    until the tenant offers the files tools."""
    write_tenants(FILES_SPEC)
    wait_for_files(url, token)


def wait_for_files(url: str, token: str) -> None:
    """Until the tenant at ``url`` offers the files tools (the gateway reloaded its tenants)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        reply = post(url, rpc("tools/list"), token)
        # Before the reload a new tenant is not there yet (404).
        tools = reply.json()["result"]["tools"] if reply.status_code == 200 else []
        if any(t["name"] == "files_create_upload" for t in tools):
            return
        time.sleep(0.1)
    raise RuntimeError("the gateway did not reload its tenants file with files")


def files_rounds(
    url: str,
    token: str,
    postgres: PostgresServer,
    groups: dict[str, list[int]],
    *,
    concurrency: int,
    size_mib: int,
    repeats: int = 2,
) -> list[FileRound]:
    """Upload then download, platform beside baseline, alternating ``repeats`` times."""
    size = size_mib * 2**20
    files = concurrency * 2
    data = os.urandom(size)
    print(f"  files: {files} files of {size_mib} MiB, {concurrency} at a time", flush=True)
    platform = PlatformFiles(url, token, files, size)
    baseline = _Baseline(postgres)
    baseline.create(files)
    pg_only = {"postgres": groups["postgres"]}
    rounds = []
    for _ in range(repeats):
        for direction in ("upload", "download"):
            links = (platform.upload_links if direction == "upload" else platform.download_links)()
            print(f"  {direction} {PLATFORM}, {concurrency} at a time", flush=True)
            through = partial(platform_moves, direction, links, data, concurrency)
            rounds.append(timed(PLATFORM, direction, concurrency, files, size, groups, through))
            print(f"  {direction} {BASELINE}, {concurrency} at a time", flush=True)
            direct = partial(_baseline_moves, baseline, direction, data, concurrency)
            rounds.append(timed(BASELINE, direction, concurrency, files, size, pg_only, direct))
    print(f"  sha256 of the bytes moved: {hashlib.sha256(data).hexdigest()[:16]}…", flush=True)
    return with_ratios(rounds)


def with_ratios(
    rounds: list[FileRound], platform: str = PLATFORM, baseline: str = BASELINE
) -> list[FileRound]:
    """Each ``platform`` round's MB/s over the mean of the ``baseline`` rounds' in the same
    direction; the other rounds as they are."""
    base: dict[str, list[float]] = {}
    for r in rounds:
        if r.target == baseline:
            base.setdefault(r.direction, []).append(r.mb_per_s)
    out = []
    for r in rounds:
        b = base.get(r.direction)
        if r.target != platform or not b:
            out.append(r)
            continue
        ratio = round(r.mb_per_s / (sum(b) / len(b)), 3)
        out.append(FileRound(**{**asdict(r), "ratio_to_baseline": ratio}))
    return out


def print_files_table(rounds: list[FileRound]) -> None:
    processes = sorted({name for r in rounds for name in r.cpu_ms_per_mib})
    width = max(len(r.target) for r in rounds) + 2
    header = f"{'files: target':<{width}}{'dir':>9}{'conc':>5}{'MiB':>7}{'MB/s':>8}"
    header += f"{'errors':>7}{'x base':>8}" + "".join(f"{'cpu ' + p:>17}" for p in processes)
    print(header)
    print("-" * len(header))
    for r in rounds:
        ratio = f"{r.ratio_to_baseline:.2f}" if r.ratio_to_baseline is not None else "-"
        cpus = "".join(
            f"{r.cpu_ms_per_mib[p]:>17.1f}" if p in r.cpu_ms_per_mib else f"{'-':>17}"
            for p in processes
        )
        print(f"{r.target:<{width}}{r.direction:>9}{r.concurrency:>5}{r.mib:>7.0f}"
              f"{r.mb_per_s:>8.1f}{r.errors:>7}{ratio:>8}{cpus}")  # fmt: skip
    print("(x base: MB/s over the mean of its baseline's rounds in the same direction: psycopg "
          "for the database rows, aiobotocore for the bucket rows; cpu columns: CPU "
          "milliseconds per MiB moved of each process)")  # fmt: skip
    for row in ratio_summary(rounds):
        spread = f"{row['min_ratio']:.2f} to {row['max_ratio']:.2f}, {row['rounds']} rounds"
        print(f"  {row['target']}, {row['direction']}: median x base "
              f"{row['median_ratio']:.2f} ({spread})")  # fmt: skip


def ratio_summary(rounds: list[FileRound]) -> list[dict[str, Any]]:
    """Per platform target and direction: the median of its rounds' ratios, and their spread
    (min to max); a change is worth keeping only when its median moves by more than that."""
    found: dict[tuple[str, str], list[float]] = {}
    for r in rounds:
        if r.ratio_to_baseline is not None:
            found.setdefault((r.target, r.direction), []).append(r.ratio_to_baseline)
    return [
        {
            "target": target,
            "direction": direction,
            "rounds": len(ratios),
            "median_ratio": round(statistics.median(ratios), 3),
            "min_ratio": round(min(ratios), 3),
            "max_ratio": round(max(ratios), 3),
        }
        for (target, direction), ratios in found.items()
    ]


def write_files_json(rounds: list[FileRound], notes: dict[str, object]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    payload = {"benchmark": "platform-files", "at": stamp, "notes": notes,
               "ratio_summary": ratio_summary(rounds),
               "rounds": [asdict(r) for r in rounds]}  # fmt: skip
    text = json.dumps(payload, indent=2)
    path = RESULTS / f"platform-files-{stamp}.json"
    path.write_text(text)
    (RESULTS / "platform-files-latest.json").write_text(text)
    print(f"files rows written to {path}")
    return path
