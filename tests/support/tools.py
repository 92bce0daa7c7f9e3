"""Finding the programs a test tier needs, and what to do when one is missing."""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def missing(what: str, how: str) -> None:
    """Skip the test locally, fail it under CI: a missing tool is never a pass."""
    message = f"{what} is not available; {how}"
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


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
