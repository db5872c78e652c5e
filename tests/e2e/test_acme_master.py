"""Onboarding by mapping, end to end: acme's master tables (its own names and
codes in MariaDB) become the product master marts through models `mozart sync`
generated from tenant.yaml — no hand-written SQL — checked value by value
against figures computed here from the MariaDB rows in Python.

The DAG runs through Airflow for one production day and a what-if plan
version, every task of it: a dbt layer is one `dbt build` of all its models
(the six daily marts too, checked by tests/e2e/test_acme_dag.py), and staging
reads every table's raw.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from mozart_etl.config.loader import load_tenant
from mozart_etl.demo.acme import (
    ACME_LAST_DAY,
    connect,
    production_day_bounds,
    write_acme_source,
)
from mozart_etl.demo.run import run_tenant_day
from tests.e2e.acme_source import source_instant
from tests.e2e.master_oracle import GRAINS
from tests.e2e.test_master_data import _warehouse_rows

ROOT = Path(__file__).resolve().parents[2]
PLAN_VER = "WHATIF-01"
OPEN_END = date(9999, 12, 31)

pytestmark = pytest.mark.e2e


def test_mapped_master_marts_equal_the_source(
    mozart_home: Path, airflow_db: Path, acme_db: str
) -> None:
    tenant = load_tenant(ROOT / "tenants" / "acme")
    assert all(tenant.table(name).mapping for name in ("item_mst", "bom", "dmd"))
    day = ACME_LAST_DAY
    write_acme_source(acme_db, as_of=production_day_bounds(day)[1])
    run = run_tenant_day("acme", day, conf={"plan_ver": PLAN_VER})
    assert str(run.state) == "success"
    # The mapped master tables synced; their marts built by the marts layer.
    for table in ("item_mst", "bom", "dmd"):
        assert str(run.get_task_instance(f"sync.{table}").state) == "success"
    ti = run.get_task_instance("dbt_marts")
    outcomes = ti.xcom_pull(task_ids="dbt_marts", key="models")
    built = {o["name"]: o["status"] for o in outcomes if o["resource_type"] == "model"}
    assert {built[mart] for mart in GRAINS} == {"success"}, built

    expected = _expected(acme_db, day)
    for mart in GRAINS:
        actual = _warehouse_rows(str(tenant.dbt.duckdb_path), mart, PLAN_VER, "acme")
        assert actual == expected[mart], mart
        assert actual, f"{mart}: nothing to compare"
    # The mapping's filters really dropped rows (use_yn = 'N', del_yn = 'Y').
    with connect(acme_db) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tb_item_mst")
        assert cursor.fetchone()[0] == len(expected["mart_item_master"]) + 1


def _expected(database: str, base: date) -> dict[str, list[dict[str, Any]]]:
    """The master marts from acme's own tables, its codes decoded by hand."""
    with connect(database) as conn, conn.cursor() as cursor:
        tables = {}
        for name in ("tb_item_mst", "tb_bom", "tb_dmd"):
            cursor.execute(f"SELECT * FROM {name}")
            names = [column[0] for column in cursor.description]
            tables[name] = [dict(zip(names, row, strict=True)) for row in cursor]
    head = {"tenant_id": "acme", "plan_ver": PLAN_VER}
    kinds = {"F": "FG", "S": "SFG", "R": "RM"}
    items = [
        {
            **head,
            "item_id": row["item_cd"],
            "item_name": row["item_nm"].strip(),
            "item_type": kinds[row["item_gb"]],
            "item_group_id": "ACME",
            "procurement_type": "MAKE" if row["make_buy_gb"] == "M" else "BUY",
            "created_at": _naive(row["reg_dt"]),
            "updated_at": _naive(row["upd_dt"]),
        }
        for row in tables["tb_item_mst"]
        if row["use_yn"] == "Y"
    ]
    bom = [
        {
            **head,
            "parent_item_id": row["prnt_item_cd"],
            "child_item_id": row["chld_item_cd"],
            "qty_per": row["unit_qty"],
        }
        for row in tables["tb_bom"]
        if row["aply_st_dt"] <= base
        and (row["aply_ed_dt"] == OPEN_END or row["aply_ed_dt"] >= base)
    ]
    groups: dict[tuple[str, date], list[dict[str, Any]]] = defaultdict(list)
    for row in tables["tb_dmd"]:
        due = datetime.strptime(row["due_ymd"], "%Y%m%d").date()
        if row["del_yn"] == "N" and row["dmd_stat"] == "O" and due >= base:
            groups[(row["item_cd"], due)].append(row)
    demand = [
        {
            **head,
            "item_id": item,
            "due_date": due,
            "order_qty": _sum(lines, "O"),
            "forecast_qty": _sum(lines, "F"),
            "max_priority": max(line["prior_no"] for line in lines),
            "demand_count": len(lines),
        }
        for (item, due), lines in groups.items()
    ]
    marts = {"mart_item_master": items, "mart_bom": bom, "mart_demand": demand}
    return {
        mart: sorted(rows, key=lambda row: [row[k] for k in GRAINS[mart]])
        for mart, rows in marts.items()
    }


def _sum(lines: list[dict[str, Any]], kind: str) -> Decimal:
    total = sum(
        (line["dmd_qty"] for line in lines if line["dmd_gb"] == kind), Decimal(0)
    )
    return total.quantize(Decimal("0.01"))


def _naive(value: datetime) -> datetime:
    """Acme's DATETIME (naive New York wall time) as the marts hold an instant:
    a naive UTC datetime (the warehouse's timestamps, read as UTC)."""
    return source_instant(value).replace(tzinfo=None)
