"""The chaos matrix's figures: each scenario records a row; the session prints them.

`make chaos` runs only this folder; `make test` collects it with the rest. The
table (scenario, outcome, lost, dups, orphans, leaks, cause named) is printed at
the end of the session and, when MOZART_CHAOS_REPORT names a file, written there
as Markdown (docs/reliability.md copies it).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.reliability.chaos import ROWS, ChaosRow, Recorder, render_table


@pytest.fixture
def chaos(request: pytest.FixtureRequest) -> Recorder:
    """Figures of the running scenario (recorded even if the test then fails)."""
    recorder = Recorder(request.node.nodeid)
    ROWS[request.node.nodeid] = recorder.row
    return recorder


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # type: ignore[no-untyped-def]
    report = yield
    row = ROWS.get(item.nodeid)
    if row is not None and (report.when == "call" or report.failed):
        if report.failed:
            row.outcome = "FAILED"
        elif report.when == "call":
            row.outcome = "passed"
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    rows: list[ChaosRow] = list(ROWS.values())
    if not rows:
        return
    table = render_table(rows)
    terminalreporter.write_sep("=", "chaos matrix")
    terminalreporter.write_line(table)
    target = os.environ.get("MOZART_CHAOS_REPORT")
    if target:
        Path(target).write_text(table + "\n")


def pytest_unconfigure(config: pytest.Config) -> None:
    """The matrix's last line, after pytest's own summary."""
    rows = list(ROWS.values())
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if rows and reporter is not None:
        passed = sum(row.outcome == "passed" for row in rows)
        reporter.write_line(f"chaos: {passed} passed, {len(rows) - passed} failed")
