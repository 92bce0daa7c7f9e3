"""Fixtures shared by every tier: real servers, started once per session; logging put back.

And the check that whoever starts a thread or a process stops it
(:mod:`stowage_testing.leaks`); a leak left alone hides the next one:

- a fixture wider than a function (a server for a module or the session) by the
  end of its own teardown: what it started in its setup and left running fails
  the teardown it ends in, naming the fixture;
- a test, with its function-scoped fixtures, by the end of its teardown: a thread
  it left running fails it. A process it left running is noted with its name and
  judged at the end of the session, since a wider fixture may own it: a factory
  such as tests/gateway's ``worker_for`` starts workers during tests and stops
  them with the session;
- the session by its end: anything started during it and still running fails the
  run, each named with the fixture or test it was started by.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterator
from typing import Any

# Imported here, at the top of the stack: hypothesis's pytest plugin imports it
# only at the terminal summary otherwise, deep inside this file's hook wrappers,
# where CPython 3.11's compiler fails with "AST constructor recursion depth
# mismatch" after every test passed (a run of tests/clients alone showed it).
import hypothesis  # noqa: F401
import pytest

from stowage_testing import leaks
from stowage_testing.postgres import PostgresServer, running_postgres

#: How long a check waits for threads and processes already asked to stop, seconds.
LEAK_WAIT = 10.0

_AT_START = pytest.StashKey[leaks.Census]()
_SESSION_FAILURES = pytest.StashKey[list[str]]()

#: What each fixture of a scope wider than a function started while it was set up.
_started_by: dict[pytest.FixtureDef[Any], leaks.Census] = {}
#: Who started each thread and process seen starting: a fixture, or a test.
_origins: dict[object, str] = {}


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the whole session."""
    with running_postgres() as server:
        yield server


@pytest.fixture(autouse=True)
def root_logger_put_back() -> Iterator[None]:
    """Give the root logger back its handlers and level after each test.

    An entry point run in-process (``main([...])``) configures logging for what it
    takes to be its own process: a handler on the test's captured stderr, which pytest
    closes when the test ends, so every later log line would end in a ``Logging error``.
    pytest's own handlers come and go with each phase and are left to it.
    """
    root = logging.getLogger()
    handlers, level = [h for h in root.handlers if not _pytests(h)], root.level
    yield
    root.handlers[:] = [h for h in root.handlers if _pytests(h)] + handlers
    root.setLevel(level)


def _pytests(handler: logging.Handler) -> bool:
    return type(handler).__module__ == "_pytest.logging"


@pytest.fixture(autouse=True)
def nothing_left_running(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test that leaves a thread running once its teardown is done.

    Fixtures of wider scopes are set up before this one and torn down after it,
    so what they start is theirs, not the test's.
    """
    before = leaks.census()
    yield
    started = leaks.started_since(before) - _owned_by_fixtures()
    for process in started.processes:
        _origins[process] = f"test {request.node.nodeid} (or a fixture it used)"
    if left := leaks.still_running(started.only_threads(), LEAK_WAIT):
        pytest.fail(_report("the test", left), pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> Generator[None, object, object]:
    """Note what a fixture wider than a function starts, to check it at its teardown."""
    if fixturedef.scope == "function":
        return (yield)
    before = leaks.census()
    try:
        return (yield)
    finally:
        if started := leaks.started_since(before):
            _started_by[fixturedef] = started
            who = f"fixture {fixturedef.argname!r} ({fixturedef.scope}-scoped)"
            _origins.update(dict.fromkeys([*started.threads, *started.processes], who))


def pytest_fixture_post_finalizer(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> None:
    """Fail the teardown that ends a fixture which leaves running what it started."""
    started = _started_by.pop(fixturedef, None)
    if started and (left := leaks.still_running(started, LEAK_WAIT)):
        where = f"fixture {fixturedef.argname!r} ({fixturedef.scope}-scoped)"
        pytest.fail(_report(where, left), pytrace=False)


def pytest_sessionstart(session: pytest.Session) -> None:
    session.stash[_AT_START] = leaks.census()


@pytest.hookimpl(trylast=True)  # after pytest's own, which tears down what is still set up
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A skipped test is not a pass, and neither is a run that leaves anything running."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    failures = _skips(reporter) + _session_leftovers(session)
    session.config.stash[_SESSION_FAILURES] = failures
    if failures and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    for line in config.stash.get(_SESSION_FAILURES, []):
        terminalreporter.write_line(line, red=True)


def _skips(reporter: Any) -> list[str]:
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    return [f"{len(skipped)} test(s) skipped: the suite skips nothing"] if skipped else []


def _session_leftovers(session: pytest.Session) -> list[str]:
    if _AT_START not in session.stash:
        return []
    left = leaks.still_running(leaks.started_since(session.stash[_AT_START]), LEAK_WAIT)
    return [_report("the session", left)] if left else []


def _owned_by_fixtures() -> leaks.Census:
    owned = leaks.Census()
    for started in _started_by.values():
        owned = owned | started
    return owned


def _report(who: str, left: leaks.Census) -> str:
    things = "\n  ".join(left.describe(_origins))
    return f"{who} left running (still alive {LEAK_WAIT:g}s after its teardown):\n  {things}"
