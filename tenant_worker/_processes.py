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
import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, multiprocess, start_http_server

from tenant_worker._server import ListenError
from tenant_worker._settings import CHILD_OF_ENV, WorkerSettings

log = logging.getLogger(__name__)

#: A worker that exits sooner than this after its start counts as failing to start.
_QUICK_EXIT = 5.0
#: Quick exits in a row after which the supervisor gives up and stops.
_MAX_QUICK_EXITS = 5
#: Seconds a worker has to stop after SIGTERM before it is killed.
_STOP_GRACE = 20.0
_PR_SET_PDEATHSIG = 1


def claim_free_port(listen: str) -> str:
    """``listen`` with its port resolved, once binding it without port sharing worked.

    Raises ListenError when the address is taken (also by processes that share
    it among themselves) or not valid.
    """
    host, _, port = listen.rpartition(":")
    bind_host = host.strip("[]") or "0.0.0.0"
    try:
        family = socket.AF_INET6 if ":" in bind_host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # SO_REUSEADDR passes over connections in TIME_WAIT, never over a listener.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((bind_host, int(port)))
            resolved = probe.getsockname()[1]
    except (OSError, ValueError) as e:
        raise ListenError(
            f"cannot listen on {listen}: the address is in use or not valid ({e})"
        ) from e
    return f"{host}:{resolved}"


def follow_parent(parent_pid: int) -> None:
    """End this process with its supervisor, even one killed outright (Linux)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent_pid:  # it died before the line above
        raise SystemExit(f"the supervising process {parent_pid} is gone")


@dataclass
class _Workers:
    """The worker processes of one supervisor and how to start, restart and stop them."""

    settings: WorkerSettings
    listen: str
    metrics_dir: str
    log_level: str
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    running: dict[int, asyncio.subprocess.Process] = field(default_factory=dict)
    failed: bool = False

    def _command(self) -> tuple[list[str], dict[str, str]]:
        s = self.settings
        args = [
            sys.executable, "-m", "stowage", "worker", "serve",
            "--tenant", s.tenant,
            "--listen", self.listen,
            "--metrics-port", "0",
            "--purge-interval", str(s.purge_interval),
            "--processes", str(s.processes),
            "--log-level", self.log_level,
        ]  # fmt: skip
        if s.policy_file is not None:
            args += ["--policy-file", str(s.policy_file)]
        env = {
            **os.environ,
            # Every setting, however this process got it, reaches the child as a
            # variable (not on its command line: ps shows command lines, and the
            # database URL holds a password); the flags above still win.
            **s.environ(),
            "PROMETHEUS_MULTIPROC_DIR": self.metrics_dir,
            CHILD_OF_ENV: str(os.getpid()),
        }
        return args, env

    async def keep_one(self, slot: int) -> None:
        """Run one worker in ``slot`` until stopping; restart it when it dies."""
        quick_exits = 0
        while not self.stopping.is_set():
            args, env = self._command()
            started = time.monotonic()
            proc = await asyncio.create_subprocess_exec(*args, env=env)
            self.running[slot] = proc
            code = await proc.wait()
            del self.running[slot]
            multiprocess.mark_process_dead(proc.pid, self.metrics_dir)  # type: ignore[no-untyped-call]
            if self.stopping.is_set():
                return
            quick_exits = quick_exits + 1 if time.monotonic() - started < _QUICK_EXIT else 0
            log.warning(
                "worker process exited; starting another",
                extra={"pid": proc.pid, "returncode": code, "slot": slot},
            )
            if quick_exits >= _MAX_QUICK_EXITS:
                log.error("worker processes keep failing to start; stopping")
                self.failed = True
                self.stopping.set()
                return
            await asyncio.sleep(min(0.1 * 2**quick_exits, 5.0))  # backoff, not a wait

    async def stop_all(self) -> None:
        procs = list(self.running.values())
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                await asyncio.wait_for(proc.wait(), _STOP_GRACE)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()


async def _supervise(workers: _Workers) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, workers.stopping.set)
    keepers = [
        asyncio.create_task(workers.keep_one(slot)) for slot in range(workers.settings.processes)
    ]
    log.info(
        "worker processes starting",
        extra={"processes": workers.settings.processes, "listen": workers.listen},
    )
    try:
        await workers.stopping.wait()
    finally:
        workers.stopping.set()
        await workers.stop_all()
        await asyncio.gather(*keepers, return_exceptions=True)


def supervise(settings: WorkerSettings, log_level: str = "INFO") -> int:
    """Serve with ``settings.processes`` workers until SIGTERM; 1 when they cannot start."""
    listen = claim_free_port(settings.listen)
    with tempfile.TemporaryDirectory(prefix="stowage-worker-metrics-") as metrics_dir:
        httpd = None
        if settings.metrics_port:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=metrics_dir)  # type: ignore[no-untyped-call]
            httpd, _ = start_http_server(settings.metrics_port, registry=registry)
        workers = _Workers(settings, listen, metrics_dir, log_level)
        try:
            asyncio.run(_supervise(workers))
        finally:
            if httpd is not None:
                httpd.shutdown()
                httpd.server_close()
    log.info("worker processes stopped", extra={"tenant": settings.tenant})
    return 1 if workers.failed else 0
