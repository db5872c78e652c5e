"""The wall times tests record (`harness.TIMINGS`), printed at the end of the run.

tests/live/conftest.py and tests/browser/conftest.py import these hooks. When
both packages run in one session both conftests hold them: the summary empties
the table as it prints it, so each time is printed once. Under pytest-xdist
(`make test`: two workers) each worker fills its own table; it hands it to the
controller when it finishes (xdist's `workeroutput`) and the controller prints
them all.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.live.harness import TIMINGS

WORKER_KEY = "mozart_live_timings"


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker
        workeroutput[WORKER_KEY] = dict(TIMINGS)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist's controller: a worker finished; take its timings."""
    TIMINGS.update(getattr(node, "workeroutput", {}).get(WORKER_KEY, {}))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for name, seconds in TIMINGS.items():
        terminalreporter.write_line(f"live timing: {name}: {seconds:.1f}")
    TIMINGS.clear()
