"""Snapshot load mode on the demo's plan runs: SQLite source → lake per run →
validation → Iceberg raw, the stages called as the DAG's tasks call them.

A new run appends; the same run again commits nothing (same snapshot id); a
run whose lines changed fails, naming it and how many rows differ, and raw is
exactly as before (metadata file, snapshot id, data files).
"""

from __future__ import annotations

import re
import sqlite3
from datetime import date
from pathlib import Path

import pytest
from pydantic import ValidationError

from mozart_etl.config.loader import load_tenant
from mozart_etl.config.models import TableConfig
from mozart_etl.core.calendar import production_day
from mozart_etl.core.credentials import Credentials
from mozart_etl.core.lake import Lake
from mozart_etl.demo.generate import DEMO_DAY, generate_demo_source
from mozart_etl.extract.connectors import connector_for
from mozart_etl.extract.extractor import extract_table
from mozart_etl.load.catalog import open_catalog
from mozart_etl.load.iceberg import LoadResult, load_partition
from mozart_etl.load.snapshot import SnapshotConflict
from mozart_etl.validate.validator import read_accepted, validate_extract
from tests.helpers import day_window

ROOT = Path(__file__).resolve().parents[2]
EVE = date(2026, 11, 18)  # PR-20261119-1 is created on the evening of the 18th


@pytest.fixture
def demo(mozart_home: Path):
    tenant = load_tenant(ROOT / "tenants" / "demo")
    generate_demo_source(Path(tenant.source.database))
    return tenant


def _load_day(tenant, day: date, run_id: str) -> LoadResult:
    table = tenant.table("plan_production")
    connector = connector_for(
        tenant.source.type, Credentials.from_settings(tenant.source)
    )
    production = production_day(
        day, tenant.schedule.timezone, tenant.schedule.day_start_hour
    )
    # The day's window: the runs created that day (a sync would read on from
    # raw's last run).
    window = day_window(table, production)
    manifest = extract_table(tenant, table, production, connector, window=window)
    report = validate_extract(tenant, table, manifest)
    rows = read_accepted(Lake(tenant), report)
    return load_partition(
        open_catalog(tenant), tenant, table, manifest, rows, run_id=run_id
    )


def _runs_created_on(tenant, day: date) -> dict[str, int]:
    window = production_day(day, tenant.schedule.timezone)
    with sqlite3.connect(tenant.source.database) as conn:
        rows = conn.execute(
            "SELECT plan_run_id, count(*) FROM plan_production WHERE plan_run_id IN "
            "(SELECT plan_run_id FROM plan_production WHERE datetime(created_at) >= "
            "datetime(?) AND datetime(created_at) < datetime(?)) GROUP BY plan_run_id",
            (window.start.isoformat(), window.end.isoformat()),
        ).fetchall()
    return dict(rows)


def _raw_state(tenant) -> tuple[str, int | None, list[str]]:
    raw = open_catalog(tenant).load_table(("demo_raw", "plan_production"))
    snapshot = raw.current_snapshot()
    files = sorted(task.file.file_path for task in raw.scan().plan_files())
    return raw.metadata_location, snapshot and snapshot.snapshot_id, files


def test_plan_runs_append_once_and_never_change(demo) -> None:
    eve_runs, day_runs = _runs_created_on(demo, EVE), _runs_created_on(demo, DEMO_DAY)
    assert "PR-20261119-1" in eve_runs and "PR-20261119-2" in day_runs
    assert not set(eve_runs) & set(day_runs)

    first = _load_day(demo, EVE, "run-1")
    assert first.rows_in_table == sum(eve_runs.values())
    # Each run has its own folder in the lake.
    lake = Lake(demo)
    for run in eve_runs:
        folder = f"{lake.root}/plan_production/plan_run_id={run}"
        assert lake.fs.get_file_info(folder).type.name == "Directory", run

    second = _load_day(demo, DEMO_DAY, "run-2")  # new runs: appended
    assert second.rows_in_table == sum(eve_runs.values()) + sum(day_runs.values())
    assert second.snapshot_id != first.snapshot_id

    before = _raw_state(demo)
    again = _load_day(demo, EVE, "rerun")  # the same runs again: nothing committed
    assert again.snapshot_id == second.snapshot_id
    assert _raw_state(demo) == before

    with sqlite3.connect(demo.source.database) as conn:  # the APS rewrites a run
        conn.execute(
            "UPDATE plan_production SET planned_qty = planned_qty + 5 "
            "WHERE plan_run_id = 'PR-20261119-1' AND line_no IN (1, 2)"
        )
        conn.execute(
            "DELETE FROM plan_production "
            "WHERE plan_run_id = 'PR-20261119-1' AND line_no = 3"
        )
    with pytest.raises(SnapshotConflict) as failure:
        _load_day(demo, EVE, "changed")
    message = str(failure.value)
    assert "plan_run_id='PR-20261119-1': 3 row(s) differ" in message
    assert "nothing was written" in message and "table=plan_production" in message
    assert failure.value.terminal
    assert _raw_state(demo) == before
    raw = (
        open_catalog(demo).load_table(("demo_raw", "plan_production")).scan().to_arrow()
    )
    assert raw.num_rows == sum(eve_runs.values()) + sum(day_runs.values())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"snapshot_key": None}, "mode snapshot needs `snapshot_key`"),
        ({"snapshot_key": "line_no", "primary_key": ["line_no"]}, None),
        ({"snapshot_key": "product_id"}, "must be part of the primary key"),
        ({"snapshot_key": "nope"}, "snapshot_key: unknown column 'nope'"),
        ({"mode": "merge"}, "`snapshot_key` applies to mode snapshot only"),
    ],
)
def test_snapshot_key_is_checked(demo, change: dict, message: str | None) -> None:
    declared = demo.table("plan_production").model_dump(mode="json", by_alias=True)
    if message is None:
        TableConfig.model_validate({**declared, **change})
        return
    with pytest.raises(ValidationError, match=re.escape(message)):
        TableConfig.model_validate({**declared, **change})
