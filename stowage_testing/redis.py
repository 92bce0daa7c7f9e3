"""A throwaway ``redis-server`` on a free loopback port, with nothing persisted.

``redis_server()`` yields a ``RedisServer`` that a test may stop and start
again on the same port (a Redis outage and its end); ``running_redis()``
yields just the URL.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis

from stowage_testing.tools import find_program, free_port, missing, terminate

HOW = "install it (apt-get install redis-server)"


@dataclass
class RedisServer:
    """One redis-server: start, stop and start it again on the same port.

    Nothing is persisted, so a server started again begins empty, as a
    restarted cache pod would.
    """

    program: Path
    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 15.0) -> None:
        assert not self.running(), "already running"
        self.proc = subprocess.Popen(
            [
                str(self.program),
                *("--port", str(self.port), "--bind", "127.0.0.1", "--save", ""),
                *("--appendonly", "no", "--dir", str(self.workdir), "--protected-mode", "yes"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        """Stop the server and wait until it is gone (its port refuses connections)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        terminate(self.proc, grace=10)


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    """Start redis-server and yield it; fail with what to install without it."""
    program = find_program("redis-server", [Path("/usr/bin"), Path("/usr/local/bin")])
    if program is None:
        missing("redis-server", HOW)
        raise AssertionError("unreachable")
    server = RedisServer(program, Path(tempfile.mkdtemp(prefix="stowage-redis-")))
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)


@contextmanager
def running_redis() -> Iterator[str]:
    """Start redis-server and yield its URL; fail with what to install without it."""
    with redis_server() as server:
        yield server.url
