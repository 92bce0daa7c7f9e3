"""Several worker processes on one port, supervised by the process that started them.

One worker process saturates one core. With ``--processes N`` this process
becomes a supervisor: it checks that the address is free by binding it
*without* port sharing (a taken port fails here, loudly, as a single worker
does), then starts N workers that bind it *with* ``SO_REUSEPORT``, so the
kernel spreads connections among them. A stale process can never join them:
a single worker never shares a port, and a supervisor only starts its
workers on a port it found free.

The supervisor restarts a worker that dies, stops them all on SIGTERM or
SIGINT, and serves the one metrics endpoint: the workers write their samples
to a ``PROMETHEUS_MULTIPROC_DIR`` it creates and removes. Each worker ends
with it even when it is killed outright (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import tempfile

from prometheus_client import start_http_server

from stowage.runtime.metrics import summed_registry
from stowage.runtime.supervisor import Command, ListenError, Supervisor
from stowage.runtime.supervisor import claim_free_port as claim_free_address
from tenant_worker._settings import CHILD_OF_ENV, WorkerSettings

log = logging.getLogger(__name__)


def claim_free_port(listen: str) -> str:
    """``listen`` with its port resolved, once binding it without port sharing worked.

    Raises ListenError when the address is taken (also by processes that share
    it among themselves) or not valid.
    """
    host, _, port = listen.rpartition(":")
    if not port.isdigit():
        raise ListenError(f"cannot listen on {listen}: not a valid address")
    resolved = claim_free_address(host.strip("[]") or "0.0.0.0", int(port))
    return f"{host}:{resolved}"


def _command(settings: WorkerSettings, listen: str, metrics_dir: str, log_level: str) -> Command:
    def command() -> tuple[list[str], dict[str, str]]:
        s = settings
        args = [
            sys.executable, "-m", "stowage", "worker", "serve",
            "--tenant", s.tenant,
            "--listen", listen,
            "--metrics-port", "0",
            "--purge-interval", str(s.purge_interval),
            "--processes", str(s.processes),
            "--log-level", log_level,
        ]  # fmt: skip
        if s.policy_file is not None:
            args += ["--policy-file", str(s.policy_file)]
        env = {
            **os.environ,
            # Every setting, however this process got it, reaches the child as a
            # variable (not on its command line: ps shows command lines, and the
            # database URL holds a password); the flags above still win.
            **s.environ(),
            "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
            CHILD_OF_ENV: str(os.getpid()),
        }
        return args, env

    return command


def supervise(settings: WorkerSettings, log_level: str = "INFO") -> int:
    """Serve with ``settings.processes`` workers until SIGTERM; 1 when they cannot start."""
    listen = claim_free_port(settings.listen)
    with tempfile.TemporaryDirectory(prefix="stowage-worker-metrics-") as metrics_dir:
        httpd = None
        if settings.metrics_port:
            registry = summed_registry(metrics_dir)
            httpd, _ = start_http_server(settings.metrics_port, registry=registry)
        supervisor = Supervisor(
            "worker",
            settings.processes,
            _command(settings, listen, metrics_dir, log_level),
            metrics_dir,
            about={"listen": listen},
        )
        try:
            asyncio.run(supervisor.run())
        finally:
            if httpd is not None:
                httpd.shutdown()
                httpd.server_close()
    log.info("worker processes stopped", extra={"tenant": settings.tenant})
    return 1 if supervisor.failed else 0


__all__ = ["claim_free_port", "supervise"]
