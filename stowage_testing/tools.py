"""Finding the programs a test tier needs, what to do when one is missing, stopping processes."""

from __future__ import annotations

import ctypes
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable
from contextlib import suppress
from pathlib import Path

import pytest

from stowage_testing.leaks import descendants


def missing(what: str, how: str) -> None:
    """Fail the test with what to install: a missing tool is never a pass, nor a skip.

    ``make test`` installs or builds every tool first (``hack/test-deps.sh``), so
    this is reached only when that step could not run or was bypassed.
    """
    pytest.fail(f"{what} is not available; {how} (or run `make test-deps`)", pytrace=False)


def find_program(name: str, extra_dirs: Iterable[Path] = ()) -> Path | None:
    for directory in extra_dirs:
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    return Path(found) if found else None


#: Ports each pytest-xdist worker hands out: a range of its own, below the kernel's
#: ephemeral range (32768 and up), so a port one worker found free is never the next
#: port the kernel or another worker gives away while the first starts its server.
_WORKER_PORTS = 5000
_FIRST_WORKER_PORT = 10000
_handed_out: set[int] = set()


def _worker_index() -> int | None:
    name = os.environ.get("PYTEST_XDIST_WORKER", "")  # gw0, gw1, …
    return int(name[2:]) if name.startswith("gw") and name[2:].isdigit() else None


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A free port on 127.0.0.1, not handed out before by this process.

    In one process, the kernel's choice. Under pytest-xdist, one from the worker's own
    range: two workers asking at once could otherwise both be given a port that only
    one of their servers then gets, and the other's test would talk to a stranger.
    """
    index = _worker_index()
    if index is None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])
    first = _FIRST_WORKER_PORT + index * _WORKER_PORTS
    candidates = [p for p in range(first, first + _WORKER_PORTS) if p not in _handed_out]
    random.shuffle(candidates)
    for port in candidates:
        if _bindable(port):
            _handed_out.add(port)
            return port
    raise RuntimeError(f"no free port left in {first}-{first + _WORKER_PORTS - 1}")


def eventually(predicate: Callable[[], object], timeout: float = 10.0, what: str = "") -> None:
    """Poll ``predicate`` until it is truthy, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what or predicate}")
        time.sleep(0.05)


_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a child before exec (``preexec_fn``): be killed when the thread that started it
    ends, so a test process that dies however it dies (SIGKILL too) takes it along.

    Only for a child started on a thread that lives as long as the child should.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def kill_with_descendants(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``proc`` and every process it started, at once, as when its pod is killed.

    Stopped first, so it starts nothing more while its descendants are listed; its
    children would otherwise outlive it (a crashed container takes them along).
    """
    with suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGSTOP)
    for process in descendants(proc.pid):
        with suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
    proc.kill()
    proc.wait()


def terminate(proc: subprocess.Popen[bytes] | None, grace: float = 15.0) -> None:
    """SIGTERM ``proc`` if it runs, then SIGKILL it after ``grace`` seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
