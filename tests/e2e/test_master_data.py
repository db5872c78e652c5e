"""APS master marts per plan version, run by Airflow, against an independent oracle.

The demo tenant (copied, with a `publish:` block to a test PostgreSQL) runs
for two plan versions and two base dates; every row of `mart_item_master`,
`mart_bom` and `mart_demand` is compared with `master_oracle`. A rerun of one
plan version replaces exactly its rows: the other's, in the warehouse and in
the APS PostgreSQL, stay byte-identical. Every task runs: a dbt layer is one
`dbt build` of all its models (the daily marts too, checked by
tests/e2e/test_demo_dag.py), and staging reads every table's raw.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest
from airflow.api.common.trigger_dag import trigger_dag
from airflow.exceptions import ParamValidationError
from airflow.models.dagrun import DagRun
from airflow.utils.types import DagRunTriggeredByType

from mozart_etl.config.loader import load_tenant
from mozart_etl.demo.generate import DEMO_DAY, generate_demo_source
from mozart_etl.demo.run import run_tenant_day
from tests.conftest import POSTGRES_DSN
from tests.e2e.master_oracle import GRAINS, expected_master_marts
from tests.helpers import copy_demo_tenant

AIRFLOW = str(Path(sys.executable).parent / "airflow")
D1, D2 = DEMO_DAY - timedelta(days=1), DEMO_DAY
SCENARIO = "SCENARIO-B"
ROWS_MD5 = "md5(string_agg(t::text, E'\\n' ORDER BY t::text))"

pytestmark = pytest.mark.e2e


def _publish_block(database: str) -> str:
    marts = "\n".join(
        f"    - {{mart: {mart}, mode: replace_plan_ver}}" for mart in GRAINS
    )
    return (
        "\npublish:\n"
        "  target: {host: 127.0.0.1, port: 5432, user: postgres, "
        f"database: {database}}}\n"
        "  schema: aps\n"
        f"  marts:\n{marts}\n"
    )


@pytest.fixture
def tenant_copy(
    tmp_path: Path,
    mozart_home: Path,
    airflow_db: Path,
    postgres_db: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """tenants/demo with a publish block, as the only tenant of the DagBag."""
    folder = copy_demo_tenant(tmp_path / "tenants", _publish_block(postgres_db))
    monkeypatch.setenv("MOZART_TENANTS_DIR", str(folder.parent))
    generate_demo_source(Path(load_tenant(folder).source.database))
    return folder


def _run(day: date, plan_ver: str | None) -> str:
    """One run of the demo DAG; every task of it succeeded if it says so."""
    conf = {"plan_ver": plan_ver} if plan_ver else {}
    run = run_tenant_day("demo", day, conf=conf)
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    if str(run.state) == "success":
        assert set(states.values()) == {"success"}, states
        # The master marts were built and tested in the marts layer's build.
        ti = run.get_task_instance("dbt_marts")
        outcomes = ti.xcom_pull(task_ids="dbt_marts", key="models")
        for mart in GRAINS:
            built = [o["status"] for o in outcomes if o["name"] == mart]
            tested = [
                o["status"]
                for o in outcomes
                if o["resource_type"] == "test" and f"_{mart}_" in o["name"]
            ]
            assert built == ["success"] and tested, (mart, outcomes)
            assert set(tested) == {"pass"}, (mart, outcomes)
    return str(run.state)


def _warehouse_rows(
    warehouse: str, mart: str, plan_ver: str, schema: str = "demo"
) -> list[dict[str, Any]]:
    order = ", ".join(GRAINS[mart])
    with duckdb.connect(warehouse) as con:  # dbt-duckdb may hold it (same process)
        result = con.execute(
            f"SELECT * FROM {schema}.{mart} WHERE plan_ver = ? ORDER BY {order}",
            [plan_ver],
        )
        names = [column[0] for column in result.description]
        return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def _pg_checksums(database: str) -> dict[str, tuple[int, str, dict[str, str]]]:
    """Per APS table: row count, md5 of all rows' text, md5 per plan version."""
    sums = {}
    with psycopg.connect(f"{POSTGRES_DSN} dbname={database}") as conn:
        for mart in GRAINS:
            count, whole = conn.execute(
                f"SELECT count(*), {ROWS_MD5} FROM aps.{mart} AS t"
            ).fetchone()
            per_version = dict(
                conn.execute(
                    f"SELECT plan_ver, {ROWS_MD5} FROM aps.{mart} AS t "
                    "GROUP BY plan_ver"
                ).fetchall()
            )
            sums[mart] = (count, whole, per_version)
    return sums


def _pg_rows(database: str, mart: str, plan_ver: str) -> list[tuple[Any, ...]]:
    order = ", ".join(GRAINS[mart])
    with psycopg.connect(f"{POSTGRES_DSN} dbname={database}") as conn:
        return conn.execute(
            f"SELECT * FROM aps.{mart} WHERE plan_ver = %s ORDER BY {order}", [plan_ver]
        ).fetchall()


def test_master_marts_per_plan_version(tenant_copy: Path, postgres_db: str) -> None:
    tenant = load_tenant(tenant_copy)
    source, warehouse = Path(tenant.source.database), str(tenant.dbt.duckdb_path)
    default_ver = D1.strftime(tenant.plan_version.default)
    assert default_ver == "2026-W47"
    runs = [(D2, SCENARIO, SCENARIO), (D1, None, default_ver)]

    for day, requested, _ in runs:
        assert _run(day, requested) == "success", (day, requested)

    for day, _, plan_ver in runs:
        expected = expected_master_marts(source, day, plan_ver)
        for mart in GRAINS:
            actual = _warehouse_rows(warehouse, mart, plan_ver)
            assert actual == expected[mart], (mart, plan_ver, day)
            published = _pg_rows(postgres_db, mart, plan_ver)
            assert [tuple(row.values()) for row in actual] == published, mart
    # The base dates really differ: the BOM's PR-01 line changes on DEMO_DAY.
    first = expected_master_marts(source, D1, "x")
    second = expected_master_marts(source, D2, "x")
    assert first["mart_bom"] != second["mart_bom"]
    assert first["mart_demand"] != second["mart_demand"]

    # Rerun the default plan version for its day, over a stale row planted in
    # its partition: its rows are replaced (the stale one gone, the same
    # content back); SCENARIO-B's, in the warehouse and in PostgreSQL, untouched.
    before = {
        (mart, ver): _warehouse_rows(warehouse, mart, ver)
        for mart in GRAINS
        for ver in (SCENARIO, default_ver)
    }
    pg_before = _pg_checksums(postgres_db)
    _plant_stale_bom_line(warehouse, postgres_db, default_ver)
    assert _pg_checksums(postgres_db)["mart_bom"] != pg_before["mart_bom"]
    assert _run(D1, None) == "success"
    after = {key: _warehouse_rows(warehouse, *key) for key in before}
    assert after == before
    assert _pg_checksums(postgres_db) == pg_before

    # An invalid plan_ver is refused by the trigger itself: no run, no task.
    runs_before = len(DagRun.find(dag_id="demo"))
    with pytest.raises(ParamValidationError) as refused:
        trigger_dag(
            "demo",
            conf={"plan_ver": "2026-W47; drop"},
            triggered_by=DagRunTriggeredByType.CLI,
        )
    assert "plan_ver" in str(refused.value)
    assert tenant.plan_version.pattern in str(refused.value)
    # The same through the CLI users type (`airflow dags trigger --conf`).
    cli = subprocess.run(
        [AIRFLOW, "dags", "trigger", "demo", "--conf", '{"plan_ver": "W47"}'],
        capture_output=True,
        text=True,
        check=False,
    )
    assert cli.returncode != 0
    assert "'W47' does not match" in cli.stderr + cli.stdout
    assert tenant.plan_version.pattern in cli.stderr + cli.stdout
    assert len(DagRun.find(dag_id="demo")) == runs_before


def _plant_stale_bom_line(warehouse: str, database: str, plan_ver: str) -> None:
    """A row a rerun must remove: in the mart and in the APS table."""
    row = ("demo", plan_ver, "STALE-PARENT", "STALE-CHILD", Decimal("9.9999"))
    with duckdb.connect(warehouse) as con:
        con.execute("INSERT INTO demo.mart_bom VALUES (?, ?, ?, ?, ?)", row)
    with psycopg.connect(f"{POSTGRES_DSN} dbname={database}") as conn:
        conn.execute("INSERT INTO aps.mart_bom VALUES (%s, %s, %s, %s, %s)", row)
