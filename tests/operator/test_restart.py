"""The operator killed mid-provisioning converges when it starts again."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest

from stowage_testing.kube import KubeCluster
from stowage_testing.operator import connect, secret_data, tenant_doc, wait_for_tenant
from stowage_testing.postgres import PostgresServer
from stowage_testing.tools import free_port, kill_with_descendants

pytestmark = pytest.mark.kube


@contextmanager
def operator_process(
    kube: KubeCluster, namespace: str, log: Path, metrics_port: int = 0
) -> Iterator[subprocess.Popen[bytes]]:
    """``stowage operator`` as its own process, watching one namespace."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "stowage",
                "operator",
                "--kubeconfig",
                str(kube.kubeconfig),
                "--namespace",
                namespace,
                "--worker-image",
                "stowage:test",
                "--resync-seconds",
                "2",
                "--metrics-port",
                str(metrics_port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _tenant_databases(postgres: PostgresServer, prefix: str) -> list[str]:
    with psycopg.connect(postgres.dsn(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (prefix + "%",)
        ).fetchall()
    return [r[0] for r in rows]


def _tenant_roles(postgres: PostgresServer, prefix: str) -> list[str]:
    with psycopg.connect(postgres.dsn(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT rolname FROM pg_roles WHERE rolname LIKE %s", (prefix + "%",)
        ).fetchall()
    return [r[0] for r in rows]


def _metrics_once_reconciled(proc: subprocess.Popen[bytes], port: int, log: Path) -> str:
    """The operator's /metrics once it counts a successful reconcile (within 60 s)."""
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, log.read_text()
        with contextlib.suppress(httpx.TransportError):
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            if 'stowage_operator_reconciliations_total{outcome="ok"' in text:
                return text
        assert time.monotonic() < deadline, (
            f"no successful reconcile within 60s:\n{log.read_text()}"
        )
        time.sleep(0.2)


def test_operator_killed_mid_provisioning_converges_without_duplicate_databases(
    kube: KubeCluster, postgres: PostgresServer, region: str, tmp_path: Path
) -> None:
    namespace = f"kill-{uuid.uuid4().hex[:8]}"
    kube.create_namespace(namespace)
    prefix = f"stowage_{namespace.replace('-', '_')}_acme"
    log = tmp_path / "operator.log"

    with operator_process(kube, namespace, log) as first:
        kube.apply(tenant_doc("acme", namespace, region))
        deadline = time.monotonic() + 60
        while not _tenant_databases(postgres, prefix):
            assert first.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"no database within 60s:\n{log.read_text()}"
            time.sleep(0.02)
        # SIGKILL to it and its migration processes: no cleanup, no status written after this.
        kill_with_descendants(first)

    metrics_port = free_port()
    with operator_process(kube, namespace, log, metrics_port) as second:
        tenant = wait_for_tenant(kube, namespace, "acme", timeout=60)
        # The first may have made the Tenant Ready just before it was killed: wait for the
        # second's own reconcile (its resume pass), once it is up and serving metrics.
        metrics = _metrics_once_reconciled(second, metrics_port, log)
    assert "stowage_operator_reconcile_duration_seconds_bucket" in metrics

    assert _tenant_databases(postgres, prefix) == [tenant["status"]["database"]["name"]]
    assert _tenant_roles(postgres, prefix) == [tenant["status"]["database"]["user"]]
    with connect(secret_data(kube, namespace, "tenant-acme-db")) as conn:
        assert conn.execute("SELECT to_regclass('public.alembic_version')").fetchone()[0]
