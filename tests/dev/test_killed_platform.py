"""A killed ``stowage dev`` leaves nothing serving; a taken port stops it with an error.

A worker left behind (adopted by init) would keep the worker port, and the
next ``stowage dev`` would print that it runs while its gateway served the old
platform's data. Here its children end with it whatever kills it, and a port
another process holds is an error, at the start or at a restart of the worker.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from stowage_testing.gateway import post, rpc
from stowage_testing.tools import eventually, free_port
from stowage_testing.worker import running_worker
from tests.dev.platform import (
    DevPlatform,
    descendants,
    listening,
    still_running,
    token,
    worker_pids,
)


def call(platform: DevPlatform, bearer: str, tool: str, arguments: dict[str, Any]) -> Any:
    """A tool call that must succeed; its structured result."""
    reply = post(
        platform.mcp_url, rpc("tools/call", {"name": tool, "arguments": arguments}), bearer
    )
    assert reply.status_code == 200, reply.text
    result = reply.json()["result"]
    assert not result.get("isError"), result
    return result["structuredContent"]


def titles(platform: DevPlatform, bearer: str) -> list[str]:
    return [o["data"]["title"] for o in call(platform, bearer, "notes_list", {})["objects"]]


def new_platform(workdir: Path, **ports: int) -> DevPlatform:
    workdir.mkdir()
    return DevPlatform(workdir, **ports)


def test_a_killed_stowage_dev_leaves_no_process_and_the_next_serves_only_its_own_data(
    tmp_path: Path,
) -> None:
    first = new_platform(tmp_path / "first")
    first.start()
    assert first.proc is not None
    children: dict[int, str] = {}
    try:
        call(first, token(first), "notes_save", {"data": {"title": "the first platform's"}})
        children = descendants(first.proc.pid)
        assert worker_pids(first.data) and set(worker_pids(first.data)) <= set(children)

        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(timeout=10)
        eventually(
            lambda: still_running(children) == [],
            timeout=15,
            what="every process the killed stowage dev started ends",
        )
    finally:
        for pid in still_running(children):  # only when the check above failed
            os.kill(pid, signal.SIGKILL)
    assert worker_pids(first.data) == []
    assert not listening(first.worker_port)

    # A fresh data directory, the same ports: the bug report's second `stowage dev`.
    second = new_platform(tmp_path / "second", port=first.port, worker_port=first.worker_port)
    second.start()
    try:
        bearer = token(second)
        assert titles(second, bearer) == []
        call(second, bearer, "notes_save", {"data": {"title": "the second platform's"}})
        assert titles(second, bearer) == ["the second platform's"]
    finally:
        second.stop()


def test_stowage_dev_exits_with_an_error_when_a_worker_left_behind_holds_its_port(
    tmp_path: Path,
) -> None:
    stale_database = f"sqlite+aiosqlite:///{tmp_path / 'stale.db'}"
    with running_worker(stale_database, tmp_path / "stale", tenant="demo") as stale:
        done = subprocess.run(
            [sys.executable, "-m", "stowage", "dev", "--data-dir", str(tmp_path / "fresh"),
             "--port", str(free_port()), "--worker-port", str(stale.port)],
            capture_output=True,
            text=True,
            timeout=60,
        )  # fmt: skip
    assert done.returncode == 1, done.stderr[-3000:]
    assert f"stowage dev: the worker's port {stale.port} is taken by another process" in (
        done.stderr
    )
    assert "Stowage is running" not in done.stderr


def bind_when_free(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1:``port``, once no other process listens there."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT, not a listener

    def bound() -> bool:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True

    eventually(bound, timeout=15, what=f"port {port} is free")
    sock.listen()
    return sock


def test_stowage_dev_stops_with_an_error_when_another_process_takes_its_workers_port(
    tmp_path: Path,
) -> None:
    platform = new_platform(tmp_path / "dev")
    platform.start()
    dev = platform.proc
    assert dev is not None
    try:
        [worker] = worker_pids(platform.data)
        # Stopped, its supervisor cannot start a worker again before the port is taken.
        dev.send_signal(signal.SIGSTOP)
        try:
            os.kill(worker, signal.SIGKILL)
            taker = bind_when_free(platform.worker_port)
        finally:
            dev.send_signal(signal.SIGCONT)
        with taker:
            assert dev.wait(timeout=60) == 1
            assert worker_pids(platform.data) == []
    finally:
        platform.stop()
    log = platform.log()
    assert f"stowage dev: the worker's port {platform.worker_port} is taken" in log
    assert log.count("Stowage is running") == 1  # the first start only
