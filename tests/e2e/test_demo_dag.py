"""The demo tenant's DAG, run by Airflow end to end, against an independent oracle.

Rows really move: SQLite source → Parquet lake → validation → Iceberg raw →
dbt (Cosmos task groups, DuckDB) → marts. Every mart value is compared with
`oracle.expected_marts`, computed in plain Python from the same source.
"""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest
from airflow.models.dagbag import DagBag

from mozart_etl.config.loader import load_tenant
from mozart_etl.demo.generate import DEMO_DAY, TENANT_TZ, generate_demo_source
from mozart_etl.demo.run import run_tenant_day
from mozart_etl.lake import Lake, latest_manifest
from mozart_etl.load.catalog import open_catalog
from tests.e2e.oracle import expected_marts

ROOT = Path(__file__).resolve().parents[2]
MARTS = {
    "mart_wip": ["snapshot_date", "product_id", "step_id"],
    "mart_cycle_time": ["work_date", "product_id", "step_id"],
    "mart_lead_time": ["work_date", "product_id"],
    "mart_plan_vs_actual": ["work_date", "product_id", "step_id"],
    "mart_equipment_utilization": ["work_date", "equipment_id"],
    "mart_line_balance": ["work_date", "equipment_group", "equipment_id"],
}

pytestmark = pytest.mark.e2e


def _run_demo_dag(day: date) -> str:
    return str(run_tenant_day("demo", day).state)


def _mart_rows(warehouse: str, mart: str, day: date) -> list[dict[str, Any]]:
    date_column = MARTS[mart][0]
    order = ", ".join(MARTS[mart])
    with duckdb.connect(warehouse) as con:
        result = con.execute(
            f"SELECT * FROM demo.{mart} WHERE {date_column} = ? ORDER BY {order}", [day]
        )
        names = [d[0] for d in result.description]
        return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(expected, float) and actual is not None:
        return math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-9)
    return actual == expected


def _assert_rows_equal(mart: str, actual: list[dict], expected: list[dict]) -> None:
    assert len(actual) == len(expected), (
        f"{mart}: {len(actual)} != {len(expected)} rows"
    )
    for got, want in zip(actual, expected, strict=True):
        assert set(got) == set(want), f"{mart}: columns {sorted(got)} != {sorted(want)}"
        wrong = {k: (got[k], v) for k, v in want.items() if not _same(got[k], v)}
        assert not wrong, f"{mart} row {want}: (actual, expected) {wrong}"


@pytest.fixture
def demo_run(mozart_home: Path, airflow_db: Path) -> dict[str, Any]:
    tenant = load_tenant(ROOT / "tenants" / "demo")
    summary = generate_demo_source(Path(tenant.source.database))
    assert DagBag(dag_folder=str(ROOT / "dags")).import_errors == {}
    state = _run_demo_dag(DEMO_DAY)
    return {"tenant": tenant, "summary": summary, "state": state}


def test_demo_dag_builds_marts_equal_to_the_oracle(demo_run: dict[str, Any]) -> None:
    tenant, summary = demo_run["tenant"], demo_run["summary"]
    assert demo_run["state"] == "success"
    bad_keys = {tuple(key) for key in summary.bad_lot_history_keys}
    assert len(bad_keys) == 3

    # Validation quarantined exactly the rows that break the MES invariants.
    lake = Lake(tenant)
    manifest = latest_manifest(lake, "lot_history", DEMO_DAY)
    quarantine = pq.read_table(f"{manifest.folder}/validated/quarantine.parquet")
    quarantined = set(
        zip(
            quarantine["lot_id"].to_pylist(),
            quarantine["step_seq"].to_pylist(),
            strict=True,
        )
    )
    assert quarantined == bad_keys

    # Raw holds every source row but the quarantined ones (first load = all history).
    catalog = open_catalog(tenant)
    for table in tenant.tables:
        raw_rows = catalog.load_table(("demo_raw", table.name)).scan().count()
        expected = summary.rows[table.name] - (3 if table.name == "lot_history" else 0)
        assert raw_rows == expected, table.name

    oracle = expected_marts(
        Path(tenant.source.database), DEMO_DAY, TENANT_TZ, exclude_keys=bad_keys
    )
    warehouse = str(tenant.dbt.duckdb_path)
    for mart in MARTS:
        _assert_rows_equal(mart, _mart_rows(warehouse, mart, DEMO_DAY), oracle[mart])

    # A rerun of the same day leaves every mart exactly as it was.
    before = {mart: _mart_rows(warehouse, mart, DEMO_DAY) for mart in MARTS}
    assert _run_demo_dag(DEMO_DAY) == "success"
    after = {mart: _mart_rows(warehouse, mart, DEMO_DAY) for mart in MARTS}
    assert after == before
