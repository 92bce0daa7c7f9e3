"""The dev platform's tests run the real ``stowage dev`` (SQLite, no other servers)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dev.platform import DevPlatform


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def dev_platform(tmp_path: Path) -> Iterator[DevPlatform]:
    """``stowage dev`` of this test alone, on free ports and a fresh data directory."""
    platform = DevPlatform(tmp_path)
    platform.start()
    try:
        yield platform
    finally:
        platform.stop()


@pytest.fixture(scope="module")
def shared_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevPlatform]:
    """One ``stowage dev`` for a module's tests that do not stop it."""
    platform = DevPlatform(tmp_path_factory.mktemp("dev"))
    platform.start()
    try:
        yield platform
    finally:
        platform.stop()
