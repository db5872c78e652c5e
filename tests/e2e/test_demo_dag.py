"""The demo tenant's DAG, run by Airflow end to end, against an independent oracle.

Rows really move: SQLite source → Parquet lake → validation → Iceberg raw
(one `sync.<table>` task per table) → dbt on DuckDB (one `dbt build` task per
layer: `dbt_staging`, `dbt_marts`) → marts. Every mart value is compared with
`oracle.expected_marts`, computed in plain Python from the same source.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from airflow.models.dagbag import DagBag

from mozart_etl.config.loader import load_tenant
from mozart_etl.core.lake import Lake, latest_manifest
from mozart_etl.demo.generate import (
    DEMO_DAY,
    TENANT_TZ,
    DemoTimeline,
    generate_demo_source,
)
from mozart_etl.demo.run import run_tenant_day
from mozart_etl.load.catalog import open_catalog
from mozart_etl.load.versions import is_versioned, live_rows
from tests.e2e.asof_oracle import mart_differences, perceived_marts
from tests.e2e.marts import MARTS, assert_rows_equal, mart_rows
from tests.e2e.oracle import expected_marts

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def _run_demo_dag(day: date) -> str:
    return str(run_tenant_day("demo", day).state)


@pytest.fixture
def demo_run(mozart_home: Path, airflow_db: Path) -> dict[str, Any]:
    tenant = load_tenant(ROOT / "tenants" / "demo")
    summary = generate_demo_source(Path(tenant.source.database))
    assert DagBag(dag_folder=str(ROOT / "dags")).import_errors == {}
    run = run_tenant_day("demo", DEMO_DAY)
    return {"tenant": tenant, "summary": summary, "state": str(run.state), "run": run}


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
    _assert_task_results(demo_run["run"], tenant, summary.rows)

    # Raw's live rows are every source row but the quarantined ones (the first
    # load reads the whole history; a quarantined row is a closed version).
    catalog = open_catalog(tenant)
    for table in tenant.tables:
        raw = catalog.load_table(("demo_raw", table.name))
        if is_versioned(table):
            raw_rows = live_rows(raw, table).num_rows
        else:
            raw_rows = raw.scan().count()
        expected = summary.rows[table.name] - (3 if table.name == "lot_history" else 0)
        assert raw_rows == expected, table.name

    warehouse = str(tenant.dbt.duckdb_path)
    _assert_marts_equal_the_oracle(tenant, warehouse, DEMO_DAY, bad_keys)

    # A rerun of the same day leaves every mart exactly as it was.
    before = {mart: mart_rows(warehouse, mart, DEMO_DAY) for mart in MARTS}
    assert _run_demo_dag(DEMO_DAY) == "success"
    after = {mart: mart_rows(warehouse, mart, DEMO_DAY) for mart in MARTS}
    assert after == before

    # A backfill of the two days before, run late (the source has moved on):
    # each day's marts as of its end, as far as this capture can know it; the
    # later day's marts untouched.
    for day in (DEMO_DAY - timedelta(days=1), DEMO_DAY - timedelta(days=2)):
        assert _run_demo_dag(day) == "success"
        _assert_marts_equal_the_oracle(tenant, warehouse, day, bad_keys)
    assert {mart: mart_rows(warehouse, mart, DEMO_DAY) for mart in MARTS} == before


def _assert_task_results(run: Any, tenant: Any, source_rows: dict[str, int]) -> None:
    """What the run's tasks did, from their states and XComs: each table's
    sync read its whole source table (a first sync) and reconciled it; each
    dbt layer built every model of it and passed every test."""
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    syncs = {f"sync.{table.name}" for table in tenant.tables}
    layers = {"dbt_staging", "dbt_marts"}
    assert states == dict.fromkeys({"production_day", *syncs, *layers}, "success")
    for table in tenant.tables:
        task_id = f"sync.{table.name}"
        synced = run.get_task_instance(task_id).xcom_pull(task_ids=task_id)
        rows = source_rows[table.name]
        quarantined = 3 if table.name == "lot_history" else 0
        assert synced["resumed"] is False
        assert synced["extract"]["rows"] == rows, table.name
        assert synced["validate"]["quarantined"] == quarantined, table.name
        assert (synced["transform"] is None) == (table.transform is None)
        ledger = synced["load"]["ledger"]
        assert (ledger["run_id"], ledger["status"]) == (run.run_id, "loaded")
        assert ledger["rows_extracted"] == rows
        assert synced["load"]["snapshot_id"] == ledger["snapshot_id"]
        assert synced["reconcile"]["matched"] is True, synced["reconcile"]
    for layer in ("staging", "marts"):
        task_id = f"dbt_{layer}"
        outcomes = run.get_task_instance(task_id).xcom_pull(
            task_ids=task_id, key="models"
        )
        folder = ROOT / "tenants" / "demo" / "dbt" / "models" / layer
        models = {o["name"] for o in outcomes if o["resource_type"] == "model"}
        assert models == {path.stem for path in folder.glob("*.sql")}, layer
        statuses = {o["resource_type"]: set() for o in outcomes}
        for outcome in outcomes:
            statuses[outcome["resource_type"]].add(outcome["status"])
        assert statuses == {"model": {"success"}, "test": {"pass"}}, outcomes


def _assert_marts_equal_the_oracle(
    tenant: Any, warehouse: str, day: date, bad_keys: set[tuple[str, int]]
) -> None:
    """Marts of `day` equal the as-of oracle over the one capture every run of
    this test made: the source at the end of the history (a capture instant
    past every row, as the DAG's clock is). On the last day that is the truth
    itself, and the oracle computed straight from the file agrees."""
    captures = [(datetime.now(UTC), DemoTimeline().rows_as_of(None))]
    oracle = perceived_marts(day, captures, tz=TENANT_TZ)
    if day == DEMO_DAY:
        from_file = expected_marts(
            Path(tenant.source.database), day, TENANT_TZ, exclude_keys=bad_keys
        )
        assert not mart_differences(oracle, from_file)
    for mart in MARTS:
        assert oracle[mart], f"{mart} {day}: the oracle has no rows to compare"
        assert_rows_equal(mart, mart_rows(warehouse, mart, day), oracle[mart])
