"""Run the `mozart` CLI in a fresh process, as users and `make` do.

dbt keeps process-wide state (dbt-duckdb's environment) after an in-process
run; commands that invoke dbt therefore run in their own process in tests.
"""

from __future__ import annotations

import subprocess
import sys


def run_mozart(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mozart_etl.ops.cli", *args],
        capture_output=True,
        text=True,
        check=False,
    )
