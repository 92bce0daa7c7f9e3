"""Probes of a running gateway process, shared by the scale benchmarks.

:mod:`bench.scale` (a gateway over a tenants file) and :mod:`bench.scale_kube`
(a gateway over Tenant resources) measure the same things the same way: the
time to ``/readyz``, resident memory, and the longest ``/healthz`` and
``tools/list`` answers while a changed tenant is awaited. Both import them
from here; neither imports the other's internals.
"""

from __future__ import annotations

import dataclasses
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

#: How often the benchmark asks while it watches: paced, so that it does not itself take
#: the machine's second core from the gateway (and the reload it measures).
PROBE_EVERY = 0.02
#: How long the idle answers are watched, before the change, for comparison.
IDLE_SECONDS = 2.0
#: What the changed tenant's issuer becomes; its protected-resource metadata shows it when served.
CHANGED = "/changed"


def rss_mb(pid: int) -> float:
    """The resident memory of process ``pid``, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


@dataclasses.dataclass
class Worst:
    """The longest answers seen (seconds); ``done_after``: when the awaited thing happened."""

    healthz: float = 0.0
    call: float | None = None
    done_after: float | None = None


def worst_answers(
    http: httpx.Client,
    base: str,
    call: Callable[[], object] | None,
    done: Callable[[], bool],
    seconds: float,
) -> Worst:
    """Ask ``/healthz`` (and make ``call``) every PROBE_EVERY until ``done()`` or ``seconds``."""
    worst = Worst(call=None if call is None else 0.0)
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        t = time.perf_counter()
        http.get(f"{base}/healthz")
        worst.healthz = max(worst.healthz, time.perf_counter() - t)
        if call is not None:
            t = time.perf_counter()
            call()
            worst.call = max(worst.call or 0.0, time.perf_counter() - t)
        if done():
            worst.done_after = time.monotonic() - start
            break
        time.sleep(PROBE_EVERY)
    return worst


def ms(seconds: float | None) -> float | None:
    """Seconds as milliseconds for a report (None stays None)."""
    return None if seconds is None else round(seconds * 1000, 1)


def rounded(seconds: float | None) -> float | None:
    """Seconds rounded for a report (None stays None)."""
    return None if seconds is None else round(seconds, 2)


def until_ready(
    base: str, proc: subprocess.Popen[bytes], start: float
) -> tuple[float, float | None, dict[str, Any]]:
    """Poll ``/readyz``: seconds from ``start`` to ready, the longest answer while loading
    after the first (which also pays for the app's first request; None: no such answer),
    and the ready answer's body."""
    worst: float | None = None
    first = True
    while True:
        t = time.perf_counter()
        try:
            answer = httpx.get(f"{base}/readyz", timeout=60)
        except httpx.HTTPError:  # not listening yet
            answer = None
        if answer is not None and answer.status_code == 200:
            body: dict[str, Any] = answer.json()
            return time.monotonic() - start, worst, body
        if answer is not None and not first:
            worst = max(worst or 0.0, time.perf_counter() - t)
        first = first and answer is None
        if proc.poll() is not None or time.monotonic() - start > 600:
            raise RuntimeError("the gateway did not become ready")
        time.sleep(PROBE_EVERY)


def tools_list_of_t0(http: httpx.Client, base: str, issuer: Any) -> Callable[[], object]:
    """A ``tools/list`` of tenant ``t0`` with a valid token, to call again and again."""
    token = issuer.token(f"{base}/t/t0/mcp", subject="scale")
    headers = {
        "authorization": f"Bearer {token}",
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": "2025-11-25",
    }
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    return lambda: http.post(f"{base}/t/t0/mcp", json=body, headers=headers)
