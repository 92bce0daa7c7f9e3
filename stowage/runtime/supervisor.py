"""Several processes of one component on one port, supervised by the process that started them.

Shared by the gateway's and the worker's ``--processes N``. The supervisor
checks that the address is free by binding it *without* port sharing (a taken
port fails there, loudly, as a single process does), then starts N processes
that bind it *with* ``SO_REUSEPORT``, so the kernel spreads connections among
them. A stale process can never join them: a single process never shares its
port, and a supervisor only starts its processes on a port it found free.

It restarts a process that dies (and gives up after repeated quick exits),
stops them all on SIGTERM or SIGINT, and each process ends with it even when
it is killed outright (:func:`stowage.runtime.lifeline.follow_parent`). The
processes write metric samples to a ``PROMETHEUS_MULTIPROC_DIR`` the caller
owns; a dead process's samples are marked dead there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import multiprocess

from stowage.runtime.lifeline import follow_parent

log = logging.getLogger(__name__)

#: A process that exits sooner than this after its start counts as failing to start.
QUICK_EXIT = 5.0
#: Quick exits in a row after which the supervisor gives up and stops.
MAX_QUICK_EXITS = 5
#: Seconds a process has to stop after SIGTERM before it is killed.
STOP_GRACE = 20.0

#: How to start one process: its command line and its environment.
Command = Callable[[], tuple[list[str], dict[str, str]]]


class ListenError(OSError):
    """The address is taken or not valid."""


def bound(host: str, port: int, *, shared: bool) -> socket.socket:
    """A TCP socket bound to ``host``:``port`` (not listening); ``shared``: SO_REUSEPORT."""
    try:
        family, _, _, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
    except (OSError, ValueError) as e:
        raise ListenError(f"cannot listen on {host}:{port}: not a valid address ({e})") from e
    try:
        # SO_REUSEADDR passes over connections in TIME_WAIT, never over a listener.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if shared:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
    except OSError as e:
        sock.close()
        raise ListenError(
            f"cannot listen on {host}:{port}: the address is in use or not valid ({e})"
        ) from e
    return sock


def claim_free_port(host: str, port: int) -> int:
    """``port`` (port 0 resolved), once binding it without port sharing worked.

    Raises ListenError when the address is taken (also by processes that share
    it among themselves) or not valid.
    """
    with bound(host, port, shared=False) as probe:
        resolved: int = probe.getsockname()[1]
    return resolved


@dataclass
class Supervisor:
    """``count`` processes of ``name``, each started by ``command``, kept running until stopped."""

    name: str
    count: int
    command: Command
    metrics_dir: str
    #: Extra fields of the "starting" log line (the address, the tenant).
    about: dict[str, Any] = field(default_factory=dict)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    running: dict[int, asyncio.subprocess.Process] = field(default_factory=dict)
    failed: bool = False

    async def keep_one(self, slot: int) -> None:
        """Run one process in ``slot`` until stopping; restart it when it dies."""
        quick_exits = 0
        while not self.stopping.is_set():
            args, env = self.command()
            started = time.monotonic()
            proc = await asyncio.create_subprocess_exec(*args, env=env)
            self.running[slot] = proc
            code = await proc.wait()
            del self.running[slot]
            multiprocess.mark_process_dead(proc.pid, self.metrics_dir)  # type: ignore[no-untyped-call]
            if self.stopping.is_set():
                return
            quick_exits = quick_exits + 1 if time.monotonic() - started < QUICK_EXIT else 0
            log.warning(
                "%s process exited; starting another",
                self.name,
                extra={"pid": proc.pid, "returncode": code, "slot": slot},
            )
            if quick_exits >= MAX_QUICK_EXITS:
                log.error("%s processes keep failing to start; stopping", self.name)
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
                await asyncio.wait_for(proc.wait(), STOP_GRACE)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()

    async def run(self) -> None:
        """Start them all; until SIGTERM/SIGINT (or giving up), keep them; then stop them."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        keepers = [asyncio.create_task(self.keep_one(slot)) for slot in range(self.count)]
        about = {"processes": self.count, **self.about}
        log.info("%s processes starting", self.name, extra=about)
        try:
            await self.stopping.wait()
        finally:
            self.stopping.set()
            await self.stop_all()
            await asyncio.gather(*keepers, return_exceptions=True)


__all__ = ["ListenError", "Supervisor", "bound", "claim_free_port", "follow_parent"]
