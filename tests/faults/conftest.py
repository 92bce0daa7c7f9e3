"""Fixtures of the fault tier: a tenant's issuer, and the table of figures each test reports."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from stowage_testing.gateway import Issuer, running_issuer
from tests.faults.load import FaultRow

ROWS = pytest.StashKey[list[FaultRow]]()

Report = Callable[[FaultRow], None]


@pytest.fixture(scope="session")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Issuer]:
    with running_issuer(tmp_path_factory.mktemp("issuer")) as found:
        yield found


@pytest.fixture
def fault_report(request: pytest.FixtureRequest) -> Report:
    """Adds a test's figures to the session's fault table (and prints them under ``-s``)."""
    rows = request.config.stash.setdefault(ROWS, [])

    def report(row: FaultRow) -> None:
        rows.append(row)
        print(" | ".join(f"{h}: {c}" for h, c in zip(FaultRow.HEADER, row.cells(), strict=True)))

    return report


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    rows = config.stash.get(ROWS, [])
    if not rows:
        return
    terminalreporter.section("fault suite")
    table = [FaultRow.HEADER, *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(FaultRow.HEADER))]

    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    terminalreporter.write_line(line(table[0]))
    terminalreporter.write_line("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for cells in table[1:]:
        terminalreporter.write_line(line(cells))
