"""A throwaway Prometheus server (Debian's ``prometheus``) on loopback, and its HTTP API."""

from __future__ import annotations

import math
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from stowage_testing.tools import find_program, free_port, missing, terminate

HOW = "install Debian's prometheus package (apt-get install prometheus), or run `make test-deps`"


@dataclass(frozen=True)
class Target:
    """One static scrape job: what a ServiceMonitor or PodMonitor would produce."""

    job: str
    address: str
    #: Target labels, as the monitors' relabelling sets them (tenant, namespace, pod).
    labels: Mapping[str, str]
    #: Keep the metrics' own labels on a clash, as the chart's honorLabels does.
    honor_labels: bool = False


@dataclass
class Prometheus:
    url: str
    workdir: Path
    client: httpx.Client

    def _get(self, path: str, **params: Any) -> Any:
        reply = self.client.get(f"{self.url}{path}", params=params)
        body = reply.json()
        assert body.get("status") == "success", (path, params, body)
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._get("/api/v1/query", query=expr)["result"]
        return result

    def query_range(self, expr: str, start: float, end: float, step: float = 1.0) -> list[Any]:
        result: list[Any] = self._get(
            "/api/v1/query_range", query=expr, start=start, end=end, step=step
        )["result"]
        return result

    def finite_series(self, expr: str, start: float, end: float) -> list[dict[str, Any]]:
        """The series of a range query that have at least one finite value."""
        return [
            s
            for s in self.query_range(expr, start, end)
            if any(math.isfinite(float(v)) for _, v in s["values"])
        ]

    def label_values(self, label: str, match: str) -> list[str]:
        values: list[str] = self._get(f"/api/v1/label/{label}/values", **{"match[]": match})
        return values

    def alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = self._get("/api/v1/alerts")["alerts"]
        return alerts

    def rules(self) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = self._get("/api/v1/rules")["groups"]
        return groups

    def targets_up(self) -> dict[str, str]:
        """Scrape health by job."""
        active = self._get("/api/v1/targets")["activeTargets"]
        return {t["labels"]["job"]: t["health"] for t in active}

    def log(self) -> str:
        path = self.workdir / "prometheus.log"
        return path.read_text() if path.exists() else ""


def write_config(path: Path, targets: list[Target], rule_files: list[Path]) -> None:
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "900ms", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": [
            {
                "job_name": t.job,
                "honor_labels": t.honor_labels,
                "static_configs": [{"targets": [t.address], "labels": dict(t.labels)}],
            }
            for t in targets
        ],
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))


@contextmanager
def running_prometheus(
    targets: list[Target],
    rule_files: list[Path],
    timeout: float = 60.0,
    extra_args: tuple[str, ...] = (),
) -> Iterator[Prometheus]:
    """Start Prometheus with a temp config and data dir; stop it and remove both after."""
    program = find_program("prometheus")
    if program is None:
        missing("prometheus", HOW)
    assert program is not None
    workdir = Path(tempfile.mkdtemp(prefix="stowage-prometheus-"))
    config = workdir / "prometheus.yml"
    write_config(config, targets, rule_files)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (workdir / "prometheus.log").open("wb") as log:
        proc = subprocess.Popen(
            [
                str(program),
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=1h",
                "--log.level=warn",
                *extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    client = httpx.Client(timeout=10)
    server = Prometheus(url, workdir, client)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"prometheus exited: {server.log()[-3000:]}")
            try:
                if client.get(f"{url}/-/ready").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"prometheus not ready in {timeout}s: {server.log()[-3000:]}")
            time.sleep(0.1)
        yield server
    finally:
        client.close()
        terminate(proc, grace=20)
        shutil.rmtree(workdir, ignore_errors=True)
