"""A 25 MB file up and down through gateway and worker: neither process holds it in memory."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.files.conftest import Platform, proc_status

pytestmark = [pytest.mark.anyio]

SIZE = 25 * 2**20
PIECE = 2**20
#: Growth of a process's peak resident memory over the transfer that still counts as flat.
BOUND = 15 * 2**20


def _reset_peak(pid: int) -> None:
    """Start the process's peak resident memory (VmHWM) afresh from its current size."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def _pieces(seed: bytes, digest: hashlib._Hash) -> AsyncIterator[bytes]:
    async def gen() -> AsyncIterator[bytes]:
        for i in range(SIZE // PIECE):
            piece = hashlib.shake_256(seed + i.to_bytes(4, "big")).digest(PIECE)
            digest.update(piece)
            yield piece

    return gen()


async def test_a_25_mb_file_streams_up_and_down_with_flat_memory_in_gateway_and_worker(
    platform: Platform, user: str, backend: str
) -> None:
    created = await platform.upload_link(user, b"", size=SIZE, name="big.bin")
    pids = {"gateway": platform.gateway.proc.pid, "worker": platform.workers["acme"].proc.pid}  # type: ignore[union-attr]
    figures: dict[str, dict[str, int]] = {}
    sent = hashlib.sha256()
    async with httpx.AsyncClient(timeout=120) as http:
        for pid in pids.values():
            _reset_peak(pid)
        before = {name: proc_status(pid, "VmRSS") for name, pid in pids.items()}
        started = time.perf_counter()
        put = await http.put(
            created["upload"]["url"],
            content=_pieces(os.urandom(8), sent),
            headers={"content-length": str(SIZE)},
        )
        up_seconds = time.perf_counter() - started
        assert put.status_code == 200, put.text
        assert put.json()["file"]["sha256"] == sent.hexdigest()
        for name, pid in pids.items():
            figures[name] = {"rss_before": before[name], "upload_peak": proc_status(pid, "VmHWM")}
            _reset_peak(pid)
            figures[name]["download_before"] = proc_status(pid, "VmRSS")
        got = await platform.tool(user, "files_get", {"id": created["file"]["id"]})
        received, count = hashlib.sha256(), 0
        started = time.perf_counter()
        async with http.stream("GET", got.structured_content["download"]["url"]) as answer:
            assert answer.status_code == 200
            async for piece in answer.aiter_bytes():
                received.update(piece)
                count += len(piece)
        down_seconds = time.perf_counter() - started
    assert count == SIZE and received.hexdigest() == sent.hexdigest()
    mb = 2**20
    print(f"\n[{backend}] 25 MiB: upload {SIZE / mb / up_seconds:.1f} MiB/s, "
          f"download {SIZE / mb / down_seconds:.1f} MiB/s")  # fmt: skip
    for name, pid in pids.items():
        f = figures[name]
        f["download_peak"], f["rss_after"] = proc_status(pid, "VmHWM"), proc_status(pid, "VmRSS")
        up = f["upload_peak"] - f["rss_before"]
        down = f["download_peak"] - f["download_before"]
        print(
            f"[{backend}] {name}: RSS before {f['rss_before'] / mb:.1f} MiB, peak growth "
            f"upload {up / mb:.1f} MiB, download {down / mb:.1f} MiB, "
            f"after {f['rss_after'] / mb:.1f} MiB"
        )
        assert up < BOUND, f"{name} grew {up / mb:.1f} MiB uploading {SIZE / mb:.0f} MiB"
        assert down < BOUND, f"{name} grew {down / mb:.1f} MiB downloading {SIZE / mb:.0f} MiB"
