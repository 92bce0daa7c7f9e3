"""A throwaway trace backend on loopback: Jaeger v2 (OTLP in, in-memory, query API out).

``hack/build-trace-tools.sh`` builds the pinned ``cmd/jaeger``
(``hack/trace-tools/versions.env``) into ``$STOWAGE_TOOLS_DIR/trace-jaeger-<version>/bin``
(default ``/var/cache/stowage/tools``). :func:`running_jaeger` starts it with
every port on loopback and its own telemetry off (so it binds nothing else), and
:class:`Jaeger` reads a trace back from its query API as :class:`TracedSpan` s.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from stowage_testing.tools import free_port, missing, terminate

REPO = Path(__file__).resolve().parents[1]
VERSIONS = REPO / "hack" / "trace-tools" / "versions.env"
HOW = "build it with hack/build-trace-tools.sh (Go >= 1.24 and the Go module proxy)"


def jaeger_program() -> Path | None:
    """The pinned ``jaeger`` in the tools cache, if built."""
    version = ""
    for line in VERSIONS.read_text().splitlines():
        if line.startswith("JAEGER_VERSION="):
            version = line.partition("=")[2].strip()
    root = Path(os.environ.get("STOWAGE_TOOLS_DIR") or "/var/cache/stowage/tools")
    program = root / f"trace-jaeger-{version}" / "bin" / "jaeger"
    return program if program.is_file() and os.access(program, os.X_OK) else None


@dataclass(frozen=True)
class TracedSpan:
    """One span as the backend returns it."""

    span_id: str
    parent_id: str | None
    name: str
    service: str
    start_us: int
    duration_us: int
    tags: dict[str, Any]

    @property
    def failed(self) -> bool:
        return self.tags.get("otel.status_code") == "ERROR" or self.tags.get("error") is True


def _spans(trace: dict[str, Any]) -> list[TracedSpan]:
    processes = {key: p["serviceName"] for key, p in trace["processes"].items()}
    spans = []
    for raw in trace["spans"]:
        parents = [r["spanID"] for r in raw.get("references", []) if r["refType"] == "CHILD_OF"]
        spans.append(
            TracedSpan(
                span_id=raw["spanID"],
                parent_id=parents[0] if parents else None,
                name=raw["operationName"],
                service=processes[raw["processID"]],
                start_us=raw["startTime"],
                duration_us=raw["duration"],
                tags={t["key"]: t["value"] for t in raw.get("tags", [])},
            )
        )
    return sorted(spans, key=lambda s: s.start_us)


def span_tree(spans: list[TracedSpan]) -> str:
    """The spans as an indented tree: service, name, duration, the telling attributes."""
    children: dict[str | None, list[TracedSpan]] = {}
    ids = {s.span_id for s in spans}
    for span in spans:
        parent = span.parent_id if span.parent_id in ids else None
        children.setdefault(parent, []).append(span)
    lines: list[str] = []

    def walk(parent: str | None, depth: int) -> None:
        for span in children.get(parent, []):
            shown = {
                k: v
                for k, v in span.tags.items()
                if k.startswith(("stowage.", "rpc.grpc", "http.response", "otel.status"))
            }
            lines.append(
                f"{'  ' * depth}{span.service}: {span.name} "
                f"{span.duration_us / 1000:.2f} ms {shown if shown else ''}".rstrip()
            )
            walk(span.span_id, depth + 1)

    walk(None, 0)
    return "\n".join(lines)


@dataclass
class Jaeger:
    otlp_endpoint: str
    query_url: str
    workdir: Path
    client: httpx.Client
    proc: subprocess.Popen[bytes] | None = None

    @property
    def otel_env(self) -> dict[str, str]:
        """What a component needs to send its spans here (every span kept, sent quickly)."""
        return {
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.otlp_endpoint,
            "OTEL_TRACES_SAMPLER": "parentbased_always_on",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }

    def trace(self, trace_id: str) -> list[TracedSpan]:
        """The trace's spans so far; none while the backend has not seen it."""
        reply = self.client.get(f"{self.query_url}/api/traces/{trace_id}")
        if reply.status_code == 404:
            return []
        reply.raise_for_status()
        data = reply.json().get("data") or []
        return _spans(data[0]) if data else []

    def search(self, service: str, operation: str) -> list[list[TracedSpan]]:
        """The recent traces with a ``service`` span named ``operation``."""
        reply = self.client.get(
            f"{self.query_url}/api/traces",
            params={"service": service, "operation": operation, "lookback": "1h", "limit": 100},
        )
        if reply.status_code == 404:
            return []
        reply.raise_for_status()
        return [_spans(trace) for trace in reply.json().get("data") or []]

    def wait_for(
        self,
        trace_id: str,
        until: Callable[[list[TracedSpan]], bool],
        timeout: float = 15.0,
    ) -> list[TracedSpan]:
        """The trace once ``until`` holds for its spans (they arrive in batches)."""
        deadline = time.monotonic() + timeout
        while True:
            spans = self.trace(trace_id)
            if until(spans):
                return spans
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"trace {trace_id} incomplete after {timeout}s:\n{span_tree(spans)}"
                )
            time.sleep(0.1)

    def log(self) -> str:
        path = self.workdir / "jaeger.log"
        return path.read_text() if path.exists() else ""


def _config(otlp: int, query: int, query_grpc: int, health: int) -> dict[str, Any]:
    return {
        "service": {
            "extensions": ["jaeger_storage", "jaeger_query", "healthcheckv2"],
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["batch"],
                    "exporters": ["jaeger_storage_exporter"],
                }
            },
            # Its own telemetry off: it would bind :8888 beside every other test's.
            "telemetry": {"metrics": {"level": "none"}, "logs": {"level": "warn"}},
        },
        "extensions": {
            "healthcheckv2": {"use_v2": True, "http": {"endpoint": f"127.0.0.1:{health}"}},
            "jaeger_query": {
                "storage": {"traces": "memory"},
                "http": {"endpoint": f"127.0.0.1:{query}"},
                "grpc": {"endpoint": f"127.0.0.1:{query_grpc}"},
            },
            "jaeger_storage": {"backends": {"memory": {"memory": {"max_traces": 10000}}}},
        },
        "receivers": {"otlp": {"protocols": {"http": {"endpoint": f"127.0.0.1:{otlp}"}}}},
        "processors": {"batch": {"timeout": "100ms"}},
        "exporters": {"jaeger_storage_exporter": {"trace_storage": "memory"}},
    }


@contextmanager
def running_jaeger(timeout: float = 30.0) -> Iterator[Jaeger]:
    """Start Jaeger on loopback ports; stop it and remove its files after."""
    program = jaeger_program()
    if program is None:
        missing("jaeger (the trace backend)", HOW)
    assert program is not None
    workdir = Path(tempfile.mkdtemp(prefix="stowage-jaeger-"))
    otlp, query, query_grpc, health = free_port(), free_port(), free_port(), free_port()
    config = workdir / "config.yaml"
    config.write_text(yaml.safe_dump(_config(otlp, query, query_grpc, health)))
    with (workdir / "jaeger.log").open("wb") as log:
        proc = subprocess.Popen(
            [str(program), f"--config={config}"], stdout=log, stderr=subprocess.STDOUT
        )
    client = httpx.Client(timeout=5)
    jaeger = Jaeger(f"http://127.0.0.1:{otlp}", f"http://127.0.0.1:{query}", workdir, client, proc)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"jaeger exited: {jaeger.log()[-3000:]}")
            try:
                healthy = client.get(f"http://127.0.0.1:{health}/status").status_code == 200
                if healthy and client.get(f"{jaeger.query_url}/api/services").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"jaeger not ready in {timeout}s: {jaeger.log()[-3000:]}")
            time.sleep(0.1)
        yield jaeger
    finally:
        client.close()
        terminate(proc, grace=10)
        shutil.rmtree(workdir, ignore_errors=True)
