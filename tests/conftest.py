"""Fixtures shared by every tier: real servers, started once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stowage_testing.postgres import PostgresServer, running_postgres


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the whole session."""
    with running_postgres() as server:
        yield server


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A skipped test is not a pass: a run with any skip fails."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped and exitstatus == 0:
        reporter.write_line(f"{len(skipped)} test(s) skipped: the suite skips nothing", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
