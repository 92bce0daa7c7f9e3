"""Finding the programs a test tier needs, what to do when one is missing, stopping processes."""

from __future__ import annotations

import os
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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def eventually(predicate: Callable[[], object], timeout: float = 10.0, what: str = "") -> None:
    """Poll ``predicate`` until it is truthy, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what or predicate}")
        time.sleep(0.05)


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
