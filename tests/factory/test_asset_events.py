"""Asset URIs are stable, and a mart's event carries its partition and rows,
read from a real DuckDB warehouse."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from mozart_etl.config.constants import DbtTarget
from mozart_etl.config.loader import load_tenant
from mozart_etl.config.models import TrinoConfig
from mozart_etl.core.calendar import production_day
from mozart_etl.core.run_vars import RunVars
from mozart_etl.factory.asset_events import mart_event_extras
from mozart_etl.factory.assets import mart_asset, raw_asset
from mozart_etl.factory.dag_factory import build_tenant_dag

ROOT = Path(__file__).resolve().parents[2]
RUN_VARS = RunVars.of(production_day(date(2026, 11, 19), "Asia/Seoul"), "2026-11-W47V")


def test_uris_do_not_depend_on_where_files_live(mozart_home: Path) -> None:
    tenant = load_tenant(ROOT / "tenants" / "demo")
    assert str(mozart_home) in str(tenant.dbt.duckdb_path)
    raw = raw_asset(tenant, "lot_history")
    assert (raw.name, raw.uri) == (
        "demo_raw.lot_history",
        "iceberg://mozart/demo_raw/lot_history",
    )
    mart = mart_asset(tenant, "mart_wip")
    assert (mart.name, mart.uri) == (
        "demo.mart_wip",
        "duckdb://demo_marts.duckdb/demo/mart_wip",
    )
    trino = tenant.model_copy(
        update={
            "dbt": tenant.dbt.model_copy(
                update={"target": DbtTarget.TRINO, "trino": TrinoConfig(catalog="lake")}
            )
        }
    )
    assert mart_asset(trino, "mart_wip").uri == "iceberg://lake/demo/mart_wip"
    # Same name on both targets: consumers may schedule on the name alone.
    assert mart_asset(trino, "mart_wip").name == mart.name


def test_mart_event_counts_the_runs_partition(mozart_home: Path) -> None:
    tenant = load_tenant(ROOT / "tenants" / "demo")
    path = Path(str(tenant.dbt.duckdb_path))
    path.parent.mkdir(parents=True)
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA demo")
        con.execute("CREATE TABLE demo.mart_wip (snapshot_date DATE, step_id TEXT)")
        con.execute(
            "INSERT INTO demo.mart_wip VALUES ('2026-11-18', 'a'), "
            "('2026-11-19', 'a'), ('2026-11-19', 'b'), ('2026-11-19', 'c')"
        )
        con.execute("CREATE TABLE demo.mart_item_master (plan_ver TEXT, item_id TEXT)")
        con.execute(
            "INSERT INTO demo.mart_item_master VALUES ('2026-11-W46V', 'i1'), "
            "('2026-11-W47V', 'i1'), ('2026-11-W47V', 'i2')"
        )
        con.execute("CREATE TABLE demo.mart_own (x INT)")  # not a product mart
        con.execute("INSERT INTO demo.mart_own SELECT * FROM range(5)")

    extras = mart_event_extras(
        tenant, ["mart_wip", "mart_item_master", "mart_own"], RUN_VARS
    )
    wip, items, own = (extras[m] for m in ("mart_wip", "mart_item_master", "mart_own"))
    assert (wip["partition"], wip["rows"]) == ("snapshot_date=2026-11-19", 3)
    assert wip["production_day"] == "2026-11-19"
    assert (items["partition"], items["rows"]) == ("plan_ver=2026-11-W47V", 2)
    assert (own["partition"], own["rows"]) == ("all", 5)


def test_the_tasks_that_write_declare_the_assets() -> None:
    """Default shape: each table's sync updates its raw table's Asset, the one
    marts task every mart's."""
    folder = ROOT / "tenants" / "demo"
    tenant = load_tenant(folder)
    dag = build_tenant_dag(folder, tenant)
    declared = {t.task_id: [a.uri for a in t.outlets] for t in dag.tasks if t.outlets}
    marts = sorted(p.stem for p in (folder / "dbt" / "models" / "marts").glob("*.sql"))
    assert len(marts) == 9
    assert declared == {
        **{f"sync.{t.name}": [raw_asset(tenant, t.name).uri] for t in tenant.tables},
        "dbt_marts": [mart_asset(tenant, m).uri for m in marts],
    }


@pytest.mark.parametrize(
    ("behavior", "builder"), [("after_each", "{m}.run"), ("build", "{m}_model_build")]
)
def test_the_tasks_that_write_declare_the_assets_stages_shape(
    behavior: str, builder: str, monkeypatch: pytest.MonkeyPatch, stages_shape: str
) -> None:
    monkeypatch.setenv("MOZART_COSMOS_TEST_BEHAVIOR", behavior)
    folder = ROOT / "tenants" / "demo"
    tenant = load_tenant(folder)
    dag = build_tenant_dag(folder, tenant)
    declared = {t.task_id: [a.uri for a in t.outlets] for t in dag.tasks if t.outlets}
    marts = sorted(p.stem for p in (folder / "dbt" / "models" / "marts").glob("*.sql"))
    assert declared == {
        **{f"{t.name}.load": [raw_asset(tenant, t.name).uri] for t in tenant.tables},
        **{
            "dbt_marts." + builder.format(m=m): [mart_asset(tenant, m).uri]
            for m in marts
        },
    }
