"""A throwaway ``redis-server`` on a free loopback port, with nothing persisted."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from tests.support.tools import find_program, free_port, missing

HOW = "install it (apt-get install redis-server)"


@contextmanager
def running_redis() -> Iterator[str]:
    """Start redis-server and yield its URL; fail with what to install without it."""
    program = find_program("redis-server", [Path("/usr/bin"), Path("/usr/local/bin")])
    if program is None:
        missing("redis-server", HOW)
        raise AssertionError("unreachable")
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="stowage-redis-"))
    proc = subprocess.Popen(
        [
            str(program),
            *("--port", str(port), "--bind", "127.0.0.1", "--save", ""),
            *("--appendonly", "no", "--dir", str(workdir), "--protected-mode", "yes"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 15
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)
