"""A real tenant worker process (``python -m stowage worker serve``) for tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from stowage_testing.tools import free_port, terminate

#: The ``notes`` collection's JSON Schema the tests' tenants (worker and gateway) use.
NOTES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["title"],
    "properties": {
        "title": {"type": "string", "maxLength": 200},
        "body": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": False,
}


@dataclass
class WorkerProcess:
    """One worker: start, stop, kill and restart it on the same port and database."""

    database_url: str
    workdir: Path
    tenant: str = "acme"
    #: The worker's instance id (``--instance``); None: it checks calls for none.
    instance: str | None = None
    port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    purge_interval: float = 3600.0
    #: More environment for the process (``OTEL_*`` for a traced worker).
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def policy_file(self) -> Path:
        return self.workdir / "policy.yaml"

    @property
    def log_file(self) -> Path:
        return self.workdir / "worker.log"

    def write_policy(self, policy: dict[str, Any]) -> None:
        tmp = self.policy_file.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(policy))
        tmp.replace(self.policy_file)

    def start(self, timeout: float = 30.0) -> None:
        """Start the worker; on its first start, take fresh ports if another process won them.

        ``free_port`` finds a port free *now*; on a busy machine another process
        can bind it before the worker does. A first start that fails for that
        reason picks new ports and tries again (a restart keeps its ports: tests
        restart a worker on the address its clients know).
        """
        first = self.proc is None
        for attempt in range(3):
            try:
                self._start_once(timeout)
                return
            except RuntimeError as e:
                lost_a_port = "Address already in use" in str(e) or "cannot listen on" in str(e)
                if not (first and lost_a_port and attempt < 2):
                    raise
                self.port, self.metrics_port = free_port(), free_port()

    def _start_once(self, timeout: float) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        if not self.policy_file.exists():
            self.write_policy({})
        args = [
            sys.executable, "-m", "stowage", "worker", "serve",
            "--database-url", self.database_url,
            "--tenant", self.tenant,
            "--listen", self.address,
            "--metrics-port", str(self.metrics_port),
            "--policy-file", str(self.policy_file),
            "--purge-interval", str(self.purge_interval),
        ]  # fmt: skip
        if self.instance is not None:
            args += ["--instance", self.instance]
        log = self.log_file.open("ab")
        env = {**os.environ, "STOWAGE_POLICY_CHECK_INTERVAL": "0.2", **self.env}
        self.proc = subprocess.Popen(args, stdout=log, stderr=log, env=env)
        log.close()
        self.wait_serving(timeout)

    def wait_serving(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(self.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(f"worker exited: {self.log_file.read_text()[-3000:]}")
                try:
                    reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"worker not serving after {timeout}s")
                time.sleep(0.05)

    def stop(self) -> None:
        terminate(self.proc)

    def kill(self) -> None:
        """SIGKILL: the worker dies mid-whatever, as a crashed pod would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def logs(self) -> str:
        return self.log_file.read_text() if self.log_file.exists() else ""


@contextmanager
def running_worker(
    database_url: str,
    workdir: Path,
    policy: dict[str, Any] | None = None,
    tenant: str = "acme",
    migrate: bool = True,
    instance: str | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[WorkerProcess]:
    """Migrate the database, start a worker on it, and stop it afterwards."""
    if migrate:
        from tenant_worker import migrate as run_migrations

        run_migrations(database_url)
    workdir.mkdir(parents=True, exist_ok=True)
    worker = WorkerProcess(
        database_url=database_url,
        workdir=workdir,
        tenant=tenant,
        instance=instance,
        env=env or {},
    )
    if policy is not None:
        worker.write_policy(policy)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
