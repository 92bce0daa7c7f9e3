"""Several gateway processes on one port, supervised by the process that started them.

One gateway process saturates one core. With ``--processes N`` (and Redis,
which keeps rate limits and revocations shared among them, as among replicas)
``stowage gateway serve`` becomes a supervisor: it checks that the address is
free by binding it *without* port sharing (a taken port fails here, loudly, as
a single gateway does), then starts N gateway processes that bind it *with*
``SO_REUSEPORT``, so the kernel spreads connections among them. A stale
process can never join them: a single gateway never shares its port, and a
supervisor only starts its processes on a port it found free.

Each process accepts connections only once its tenants are loaded, so a call
never lands on a process that does not know them yet; ``/healthz`` and
``/readyz`` answer from whichever process accepts the connection. The
processes write their metric samples to a ``PROMETHEUS_MULTIPROC_DIR`` the
supervisor creates and removes, and ``/metrics`` on any of them serves the sum
(:mod:`gateway._metrics`). The supervisor restarts a process that dies, stops
them all on SIGTERM or SIGINT, and each process ends with it even when it is
killed outright (``PR_SET_PDEATHSIG``). Their log lines carry a ``pid`` field.

The supervising itself is :mod:`stowage.runtime.supervisor`, shared with the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import sys
import tempfile
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette

from gateway._settings import CHILD_OF_ENV, METRICS_DIR_ENV, GatewaySettings
from stowage.runtime.supervisor import (
    Command,
    ListenError,
    Supervisor,
    bound,
    claim_free_port,
    follow_parent,
)

log = logging.getLogger(__name__)

#: uvicorn's exit status for an app that failed to start.
_STARTUP_FAILURE = 3
#: What each process logs (with its ``pid``) once it has its tenants, as it starts listening.
READY_MESSAGE = "gateway process has its tenants; accepting connections"


# -- a process the supervisor started --------------------------------------------------


class _WithPid(logging.Filter):
    """Adds this process's id to each record: the processes share one log stream."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.pid = os.getpid()
        return True


def _listen_once_loaded(app: Starlette) -> None:
    """Delay the end of ``app``'s startup (after which uvicorn listens) until it has tenants."""
    inner = app.router.lifespan_context
    directory = app.state.directory

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[Any]:
        async with inner(app) as state:
            await directory.wait_loaded()
            log.info(READY_MESSAGE)
            yield state

    app.router.lifespan_context = lifespan


def serve_child(app: Starlette, settings: GatewaySettings) -> int:
    """Serve ``app`` as one of a supervisor's processes, on the port it shares with them."""
    import uvicorn

    assert settings.parent_pid is not None
    follow_parent(settings.parent_pid)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_WithPid())
    _listen_once_loaded(app)
    sock = bound(settings.host, settings.port, shared=True)
    server = uvicorn.Server(
        uvicorn.Config(
            app, host=settings.host, port=settings.port, log_config=None, access_log=False
        )
    )
    server.run(sockets=[sock])
    return 0 if server.started else _STARTUP_FAILURE


# -- the supervisor --------------------------------------------------------------------


def _command(settings: GatewaySettings, metrics_dir: str) -> Command:
    def command() -> tuple[list[str], dict[str, str]]:
        # Every setting reaches the child as a variable, however this process got
        # it (a command line is visible to ps; the Redis URL may hold a password).
        env = {
            **os.environ,
            **settings.environ(),
            METRICS_DIR_ENV: metrics_dir,
            CHILD_OF_ENV: str(os.getpid()),
        }
        return [sys.executable, "-m", "stowage", "gateway", "serve"], env

    return command


def supervise(settings: GatewaySettings) -> int:
    """Serve with ``settings.processes`` gateway processes until SIGTERM.

    Raises ListenError when the address is taken; returns 1 when the processes
    keep failing to start, else 0.
    """
    port = claim_free_port(settings.host, settings.port)
    settings = dataclasses.replace(settings, port=port)
    with tempfile.TemporaryDirectory(prefix="stowage-gateway-metrics-") as metrics_dir:
        supervisor = Supervisor(
            "gateway",
            settings.processes,
            _command(settings, metrics_dir),
            metrics_dir,
            about={"host": settings.host, "port": settings.port},
        )
        asyncio.run(supervisor.run())
    log.info("gateway processes stopped")
    return 1 if supervisor.failed else 0


__all__ = ["READY_MESSAGE", "ListenError", "claim_free_port", "serve_child", "supervise"]
