"""`mozart run <tenant> <days>`: a tenant's days through Airflow, as `make demo`.

A copy of the demo tenant (its own tenants folder, retries off to fail fast)
runs two production days with one command: each day succeeds with every task,
and each day's marts equal the independent as-of oracle's rows. A day whose
source is gone fails the command with a message naming the day and its failed
tasks; a day before `start_date` (for which Airflow
would make no task at all and report success) is refused before any run.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from mozart_etl.config.loader import load_tenant
from mozart_etl.core.errors import ConfigError
from mozart_etl.demo.generate import (
    DEMO_DAY,
    TENANT_TZ,
    DemoTimeline,
    generate_demo_source,
)
from mozart_etl.ops.cli import main
from mozart_etl.ops.run_days import check_days, parse_days
from tests.e2e.asof_oracle import perceived_marts
from tests.e2e.marts import MARTS, assert_rows_equal, mart_rows
from tests.helpers import copy_demo_tenant

D1, D2 = DEMO_DAY - timedelta(days=1), DEMO_DAY

pytestmark = pytest.mark.e2e


@pytest.fixture
def demo_copy(
    tmp_path: Path,
    mozart_home: Path,
    airflow_db: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    folder = copy_demo_tenant(tmp_path / "tenants")
    monkeypatch.setenv("MOZART_TENANTS_DIR", str(folder.parent))
    return folder


def test_mozart_run_runs_two_days_then_names_a_failed_day(
    demo_copy: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    tenant = load_tenant(demo_copy)
    source = Path(tenant.source.database)
    generate_demo_source(source)
    tenants = str(demo_copy.parent)

    code = main(
        ["--tenants-dir", tenants, "run", "demo", f"{D1}..{D2}", "--skip-manifests"]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    # The summary: a line per day (Airflow's own log lines share stdout).
    lines = [line for line in out.splitlines() if re.match(r"\d{4}-\d\d-\d\d  ", line)]
    assert [line.split()[:2] for line in lines] == [
        [str(D1), "success"],
        [str(D2), "success"],
    ]
    tasks = 1 + len(tenant.tables) + 2  # production_day, sync.*, dbt_staging/marts
    assert all(f"{tasks} tasks" in line for line in lines), lines

    # Each day's marts as of its end, as this one capture of the source can
    # know them: the as-of oracle over the generator's timeline.
    captures = [(datetime.now(UTC), DemoTimeline().rows_as_of(None))]
    warehouse = str(tenant.dbt.duckdb_path)
    for day in (D1, D2):
        oracle = perceived_marts(day, captures, tz=TENANT_TZ)
        for mart in MARTS:
            assert oracle[mart], (mart, day)
            assert_rows_equal(mart, mart_rows(warehouse, mart, day), oracle[mart])

    # The source is gone: the next day's syncs fail; the error names the day
    # and the tasks, and the exit code is 1.
    source.unlink()
    failed_day = D2 + timedelta(days=1)
    code = main(
        ["--tenants-dir", tenants, "run", "demo", str(failed_day), "--skip-manifests"]
    )
    assert code == 1
    captured = capsys.readouterr()
    # Where the line lands depends on which logging setup the process got
    # first (Airflow's writes to the stream it found): any of the three.
    message = captured.out + captured.err + caplog.text
    syncs = ", ".join(sorted(f"sync.{table.name}" for table in tenant.tables))
    assert (
        f"production day {failed_day} failed: failed task(s) {syncs}; "
        "not run: dbt_marts, dbt_staging (run "
    ) in message


def test_days_before_start_date_are_refused_before_any_run(demo_copy: Path) -> None:
    start = load_tenant(demo_copy).schedule.start_date
    early = f"{start - timedelta(days=1)}..{start}"
    with pytest.raises(ConfigError, match=f"{start - timedelta(days=1)} is before"):
        check_days(load_tenant(demo_copy), parse_days(early))
    # Refused before the manifests are built or Airflow is imported.
    assert main(["--tenants-dir", str(demo_copy.parent), "run", "demo", early]) == 1


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("2026-11-19", [date(2026, 11, 19)]),
        ("2026-11-30..2026-12-01", [date(2026, 11, 30), date(2026, 12, 1)]),
    ],
)
def test_parse_days(text: str, days: list[date]) -> None:
    assert parse_days(text) == days


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("2026-11-19..2026-11-18", "before the first"),
        ("2026/11/19", "expected YYYY-MM-DD"),
        ("2025-01-01..2026-12-31", "at most 366"),
    ],
)
def test_parse_days_refuses(text: str, error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        parse_days(text)
