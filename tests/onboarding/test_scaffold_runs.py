"""`mozart new-tenant x`, pointed at a standard-shaped source, runs green with
no other edit: the scaffold is a working tenant, not a sketch to finish.

The source is the demo generator's MES (the shared APS scenarios' tables and
types) copied into a fresh PostgreSQL database, reached through the connection
variable the scaffold's comment names (`AIRFLOW_CONN_<X>_SOURCE`). The only
thing the test sets is that variable: tenant.yaml and the models are the
scaffold's. One production day runs through Airflow (`dag.test`); every daily
and master mart equals the independent oracles over the same source, which
also proves the three broken MES rows were quarantined, not loaded and not
fatal. The scaffold's invariant rules are then checked to stop a flood.
"""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from mozart_etl.config.loader import load_tenant
from mozart_etl.core.calendar import production_day
from mozart_etl.core.errors import ValidationFailed
from mozart_etl.core.lake import Lake, latest_manifest
from mozart_etl.demo.generate import DEMO_DAY, TENANT_TZ, generate_demo_source
from mozart_etl.demo.run import run_tenant_day
from mozart_etl.demo.to_postgres import copy_to_postgres
from mozart_etl.load.catalog import open_catalog
from mozart_etl.ops.scaffold import new_tenant
from mozart_etl.pipeline.activity import day_has_data
from mozart_etl.validate.validator import validate_extract
from tests.cli import run_mozart
from tests.conftest import POSTGRES_DSN
from tests.e2e.marts import MARTS, assert_rows_equal, mart_rows
from tests.e2e.master_oracle import GRAINS, expected_master_marts
from tests.e2e.oracle import expected_marts
from tests.helpers import seoul_day, write_extract

ROOT = Path(__file__).resolve().parents[2]
TENANT = "plant_new"
STANDARD_TABLES = {
    "equipment",
    "product_route",
    "lot_history",
    "equipment_event",
    "process_result",
    "plan_production",
    "item_master",
    "bom",
    "demand",
}

pytestmark = pytest.mark.e2e


@pytest.fixture
def scaffolded(
    tmp_path: Path,
    mozart_home: Path,
    airflow_db: Path,
    postgres_db: str,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, Any]:
    """`mozart new-tenant plant_new` in a tenants folder of its own, and the
    demo MES in PostgreSQL behind AIRFLOW_CONN_PLANT_NEW_SOURCE."""
    tenants = tmp_path / "tenants"
    shutil.copytree(ROOT / "tenants" / "_template", tenants / "_template")
    monkeypatch.setenv("MOZART_TENANTS_DIR", str(tenants))
    made = run_mozart("--tenants-dir", str(tenants), "new-tenant", TENANT)
    assert made.returncode == 0, made.stdout + made.stderr
    assert run_mozart("--tenants-dir", str(tenants), "validate").returncode == 0

    sqlite = tmp_path / "standard.sqlite"
    summary = generate_demo_source(sqlite)
    # The standard's tables and types, as the demo tenant declares them (not
    # the scaffold's declarations: the source must not be shaped by the tenant).
    demo = load_tenant(ROOT / "tenants" / "demo")
    copy_to_postgres(sqlite, f"{POSTGRES_DSN} dbname={postgres_db}", demo.tables)
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{TENANT.upper()}_SOURCE",
        f"postgresql://postgres@127.0.0.1:5432/{postgres_db}",
    )
    return {"folder": tenants / TENANT, "sqlite": sqlite, "summary": summary}


def test_the_scaffold_runs_green_on_a_standard_source(
    scaffolded: dict[str, Any],
) -> None:
    folder: Path = scaffolded["folder"]
    tenant = load_tenant(folder)
    assert {table.name for table in tenant.tables} == STANDARD_TABLES
    assert tenant.table("plan_production").mode.value == "snapshot"
    assert tenant.plan_version.default == "%G-W%V"
    assert tenant.dbt.pool == f"mozart_duckdb_{TENANT}"
    raw_yaml = (folder / "tenant.yaml").read_text()
    assert f"AIRFLOW_CONN_{TENANT.upper()}_SOURCE" in raw_yaml

    run = run_tenant_day(TENANT, DEMO_DAY)
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert str(run.state) == "success", states
    assert set(states.values()) == {"success"}, states

    # The three rows breaking the MES invariants were quarantined, no more.
    bad_keys = {tuple(key) for key in scaffolded["summary"].bad_lot_history_keys}
    assert len(bad_keys) == 3
    manifest = latest_manifest(Lake(tenant), "lot_history", DEMO_DAY)
    quarantine = pq.read_table(f"{manifest.folder}/validated/quarantine.parquet")
    held = zip(
        quarantine["lot_id"].to_pylist(),
        quarantine["step_seq"].to_pylist(),
        strict=True,
    )
    assert set(held) == bad_keys

    warehouse, sqlite = str(tenant.dbt.duckdb_path), scaffolded["sqlite"]
    daily = expected_marts(
        sqlite, DEMO_DAY, TENANT_TZ, exclude_keys=bad_keys, tenant_id=TENANT
    )
    for mart in MARTS:
        assert daily[mart], f"{mart}: the oracle has no rows to compare"
        actual = mart_rows(warehouse, mart, DEMO_DAY, schema=TENANT)
        assert_rows_equal(mart, actual, daily[mart])

    # What unpausing it today would publish: nothing for a day past the
    # source's data (the publish task skips it), the demo day's marts.
    catalog = open_catalog(tenant)
    schedule = tenant.schedule
    for day, has_data in ((DEMO_DAY, True), (DEMO_DAY + timedelta(days=7), False)):
        window = production_day(day, schedule.timezone, schedule.day_start_hour)
        assert day_has_data(catalog, tenant, window) is has_data, day

    plan_ver = DEMO_DAY.strftime("%G-W%V")
    master = expected_master_marts(sqlite, DEMO_DAY, plan_ver, tenant_id=TENANT)
    for mart, grain in GRAINS.items():
        assert master[mart], f"{mart}: the oracle has no rows to compare"
        assert _master_rows(warehouse, mart, grain) == master[mart], mart


def _master_rows(warehouse: str, mart: str, grain: list[str]) -> list[dict[str, Any]]:
    import duckdb

    with duckdb.connect(warehouse, read_only=True) as con:
        result = con.execute(
            f"SELECT * FROM {TENANT}.{mart} ORDER BY {', '.join(grain)}"
        )
        names = [column[0] for column in result.description]
        return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def _visit(index: int, *, broken: bool) -> dict[str, Any]:
    """A done visit; a broken one tracks out more than it tracked in."""
    start = seoul_day(date(2026, 11, 19)).start
    return {
        "lot_id": f"L{index:05d}",
        "step_seq": 10,
        "product_id": "P1",
        "step_id": "S10",
        "equipment_id": "E1",
        "qty_in": 10,
        "qty_out": 11 if broken else 10,
        "status": "DONE",
        "arrived_at": start,
        "track_in_at": start,
        "track_out_at": start,
        "updated_at": start,
    }


@pytest.mark.parametrize(("broken", "loads"), [(3, True), (40, False)])
def test_the_scaffolds_invariants_quarantine_a_few_rows_and_stop_a_flood(
    tmp_path: Path, mozart_home: Path, broken: int, loads: bool
) -> None:
    """3 broken visits of 400 are quarantined and the rest loads; 40 (10%,
    past the scaffold's 5%) fail the validation: nothing is loaded."""
    tenants = tmp_path / "tenants"
    shutil.copytree(ROOT / "tenants" / "_template", tenants / "_template")
    tenant = load_tenant(new_tenant(TENANT, tenants))
    table = tenant.table("lot_history")
    rows = [_visit(i, broken=i < broken) for i in range(400)]
    manifest = write_extract(tenant, table, rows, seoul_day(date(2026, 11, 19)))
    if loads:
        report = validate_extract(tenant, table, manifest)
        assert (report.rows, report.quarantined) == (400, broken)
        failed = {name: n for name, n in report.failed_by_rule.items() if n}
        assert failed == {"qty_out_le_qty_in": broken}
    else:
        with pytest.raises(ValidationFailed, match="qty_out_le_qty_in: 40 row"):
            validate_extract(tenant, table, manifest)
