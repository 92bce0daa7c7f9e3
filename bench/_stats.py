"""Latency summaries and the table/JSON report every benchmark prints."""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Row:
    target: str
    operation: str
    concurrency: int
    ops: int
    seconds: float
    ops_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    ratio_to_baseline: float | None = None


def percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def summarize(
    target: str, operation: str, concurrency: int, latencies: list[float], seconds: float
) -> Row:
    values = sorted(latencies)
    return Row(
        target=target,
        operation=operation,
        concurrency=concurrency,
        ops=len(values),
        seconds=round(seconds, 3),
        ops_per_s=round(len(values) / seconds, 1) if seconds else 0.0,
        p50_ms=round(percentile(values, 0.50) * 1000, 2),
        p95_ms=round(percentile(values, 0.95) * 1000, 2),
        p99_ms=round(percentile(values, 0.99) * 1000, 2),
    )


def with_ratios(rows: list[Row], baseline: str) -> list[Row]:
    """Throughput of each row divided by the baseline's at the same operation and concurrency."""
    base = {(r.operation, r.concurrency): r.ops_per_s for r in rows if r.target == baseline}
    out = []
    for r in rows:
        b = base.get((r.operation, r.concurrency))
        ratio = round(r.ops_per_s / b, 3) if b else None
        out.append(Row(**{**asdict(r), "ratio_to_baseline": ratio}))
    return out


def report(name: str, rows: list[Row], notes: dict[str, Any]) -> Path:
    width = max([28, *(len(r.target) + 2 for r in rows)])
    header = f"{'target':<{width}}{'op':<8}{'conc':>5}{'ops':>8}{'ops/s':>10}"
    header += f"{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'x base':>8}"
    print(header)
    print("-" * len(header))
    for r in rows:
        ratio = f"{r.ratio_to_baseline:.2f}" if r.ratio_to_baseline is not None else "-"
        print(
            f"{r.target:<{width}}{r.operation:<8}{r.concurrency:>5}{r.ops:>8}{r.ops_per_s:>10.1f}"
            f"{r.p50_ms:>9.2f}{r.p95_ms:>9.2f}{r.p99_ms:>9.2f}{ratio:>8}"
        )
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    payload = {
        "benchmark": name,
        "at": stamp,
        "machine": {"python": platform.python_version(), "cpus": _cpus()},
        "notes": notes,
        "rows": [asdict(r) for r in rows],
    }
    path = RESULTS / f"{name}-{stamp}.json"
    text = json.dumps(payload, indent=2)
    path.write_text(text)
    (RESULTS / f"{name}-latest.json").write_text(text)
    print(json.dumps(payload))
    print(f"\nwritten to {path}")
    return path


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))
