"""The baseline's process (a bare MCPServer, ``bench._mcp_baseline``): start it, stop it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx


def start_baseline(port: int, log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench._mcp_baseline", "--port", str(port)], stdout=out, stderr=out
    )
    out.close()
    deadline = time.monotonic() + 30
    probe = {"jsonrpc": "2.0", "id": 0, "method": "tools/list"}
    headers = {
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": "2025-11-25",
    }
    while True:
        try:
            httpx.post(f"http://127.0.0.1:{port}/mcp", json=probe, headers=headers, timeout=2)
            return proc
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"baseline did not start: {log.read_text()[-2000:]}") from None
            time.sleep(0.1)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
