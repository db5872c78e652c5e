"""Issue #25: a new plant onboarded by configuration alone.

Plays the new user: a legacy MariaDB MES (tests/onboarding/legacy_source.py:
upper-case names, its own status and state codes, naive plant-local
DATETIMEs, an event table without an id, a plan table without line numbers
and with decimal quantities, soft-deleted items) and a tenant written only as
tenant.yaml (below: every standard staging model mapped, no SQL file), in a
temporary tenants folder. Then `mozart validate`, `mozart sync`, `mozart check`,
the dbt manifests, and three production days run through Airflow
(`dag.test`), the source moved to each day's end before its run; the first day
runs again last, with the source three days on. After every run each daily and
master mart equals the oracle computed in Python over the source
(tests/onboarding/legacy_oracle.py).
"""

from __future__ import annotations

import io
import logging
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from mozart_etl.config.loader import load_tenant
from mozart_etl.ops.cli import main as mozart
from tests.e2e.marts import MARTS, assert_rows_equal, mart_rows
from tests.e2e.test_master_data import _warehouse_rows
from tests.onboarding.legacy_oracle import daily_marts, master_marts
from tests.onboarding.legacy_source import (
    DAYS,
    day_end,
    simulate,
    write_source,
)

pytestmark = pytest.mark.e2e

TENANT = "plant_k"
PLAN_VER = "2026-W47"  # the default plan version of all three days
ROOT = Path(__file__).resolve().parents[2]

TENANT_YAML = """\
# A plant onboarded by mapping alone: no SQL of its own.
tenant_id: plant_k
owner: plant-k-data
source:
  type: mysql
  host: 127.0.0.1
  port: 3306
  user: root
  database: __DATABASE__
  timezone: Asia/Seoul        # the MES writes plant wall time (naive DATETIME)
storage:
  lake_root: ${MOZART_HOME}/lake
iceberg:
  catalog:
    warehouse: ${MOZART_HOME}/iceberg
dbt:
  duckdb_path: ${MOZART_HOME}/warehouse/plant_k_marts.duckdb
  pool: mozart_duckdb_plant_k
schedule:
  timezone: Asia/Seoul
  start_date: 2026-11-01

tables:
  - name: eqp
    source: {table: TB_EQP}
    primary_key: [EQP_ID]
    columns:
      - {name: EQP_ID, type: string, nullable: false}
      - {name: EQP_GRP_CD, type: string, nullable: false}
      - {name: OPER_CD, type: string, nullable: false}
      - {name: CAPA_QTY, type: decimal, precision: 10, scale: 2}
      - {name: USE_YN, type: string, nullable: false}
    mapping:
      model: stg_equipment
      columns:
        equipment_id: EQP_ID
        equipment_group: EQP_GRP_CD
        step_id: OPER_CD
        capacity_per_hour: CAPA_QTY
        active: {expr: "USE_YN = 'Y'"}

  - name: route
    source: {table: TB_ROUTE}
    primary_key: [PROD_CD, OPER_SEQ]
    columns:
      - {name: PROD_CD, type: string, nullable: false}
      - {name: OPER_SEQ, type: int, nullable: false}
      - {name: OPER_CD, type: string, nullable: false}
      - {name: STD_TM, type: decimal, precision: 8, scale: 2}
    mapping:
      model: stg_product_route
      columns:
        product_id: PROD_CD
        step_seq: OPER_SEQ
        step_id: OPER_CD
        std_process_minutes: STD_TM

  - name: lot_hist
    source: {table: TB_LOT_HIST}
    primary_key: [LOT_NO, OPER_SEQ]
    mode: merge
    cursor: UPD_DTTM
    columns:
      - {name: LOT_NO, type: string, nullable: false}
      - {name: OPER_SEQ, type: int, nullable: false}
      - {name: PROD_CD, type: string, nullable: false}
      - {name: OPER_CD, type: string, nullable: false}
      - {name: EQP_ID, type: string}
      - {name: IN_QTY, type: int, nullable: false}
      - {name: OUT_QTY, type: int}
      - {name: LOT_STAT, type: string, nullable: false}
      - {name: ARR_DTTM, type: timestamp, nullable: false}
      - {name: TKIN_DTTM, type: timestamp}
      - {name: TKOUT_DTTM, type: timestamp}
      - {name: UPD_DTTM, type: timestamp, nullable: false}
    rules:
      - {type: accepted_values, column: LOT_STAT, values: [WT, RN, CP, HD, SC]}
    mapping:
      mart: mart_wip                 # the mart that reads only stg_lot_history
      columns:
        lot_id: LOT_NO
        step_seq: OPER_SEQ
        product_id: PROD_CD
        step_id: OPER_CD
        equipment_id: EQP_ID
        qty_in: IN_QTY
        qty_out: OUT_QTY
        status:
          column: LOT_STAT
          map: {WT: WAIT, RN: RUN, CP: DONE, HD: HOLD, SC: SCRAP}
        arrived_at: ARR_DTTM          # naive: read in source.timezone
        track_in_at: TKIN_DTTM
        track_out_at: TKOUT_DTTM
        updated_at: {column: UPD_DTTM, zone: Asia/Seoul}

  - name: eqp_state
    source: {table: TB_EQP_STAT_HIST}
    primary_key: [EQP_ID, ST_DTTM]    # no id: a state is its machine and start
    mode: merge
    cursor: UPD_DTTM
    columns:
      - {name: EQP_ID, type: string, nullable: false}
      - {name: STAT_CD, type: string, nullable: false}
      - {name: ST_DTTM, type: timestamp, nullable: false}
      - {name: END_DTTM, type: timestamp}
      - {name: UPD_DTTM, type: timestamp, nullable: false}
    mapping:
      model: stg_equipment_event
      columns:
        event_id: {key: [EQP_ID, ST_DTTM]}
        equipment_id: EQP_ID
        event_type:
          column: STAT_CD
          map: {'01': RUN, '02': IDLE, '03': DOWN, '04': PM}
        started_at: ST_DTTM
        ended_at: END_DTTM
        updated_at: UPD_DTTM

  - name: plan
    source: {table: TB_PLAN}
    primary_key: [PLAN_ID, PROD_CD, OPER_CD]
    mode: snapshot
    snapshot_key: PLAN_ID
    cursor: CRT_DTTM
    columns:
      - {name: PLAN_ID, type: string, nullable: false}
      - {name: PLAN_YMD, type: date, nullable: false}
      - {name: PROD_CD, type: string, nullable: false}
      - {name: OPER_CD, type: string, nullable: false}
      - {name: PLAN_QTY, type: decimal, precision: 12, scale: 3, nullable: false}
      - {name: CRT_DTTM, type: timestamp, nullable: false}
    mapping:
      model: stg_plan_production
      columns:
        plan_run_id: PLAN_ID
        line_no: {key: [PROD_CD, OPER_CD]}
        plan_date: PLAN_YMD
        product_id: PROD_CD
        step_id: OPER_CD
        equipment_id: {constant: null}
        planned_qty: PLAN_QTY         # decimal: the nearest whole unit
        planned_start: {constant: null}
        planned_end: {constant: null}
        created_at: CRT_DTTM

  - name: item
    source: {table: TB_ITEM}
    primary_key: [ITEM_CD]
    columns:
      - {name: ITEM_CD, type: string, nullable: false}
      - {name: ITEM_NM, type: string, nullable: false}
      - {name: ITEM_TP, type: string, nullable: false}
      - {name: ITEM_GRP, type: string, nullable: false}
      - {name: MAKE_BUY, type: string, nullable: false}
      - {name: DEL_YN, type: string, nullable: false}
      - {name: REG_DTTM, type: timestamp, nullable: false}
      - {name: UPD_DTTM, type: timestamp, nullable: false}
    mapping:
      mart: mart_item_master
      deleted: {column: DEL_YN, values: ['Y']}
      columns:
        item_id: ITEM_CD
        item_name: ITEM_NM
        item_type: {map: {F: FG, S: SFG, R: RM}, column: ITEM_TP}
        item_group_id: ITEM_GRP
        procurement_type: {expr: "case MAKE_BUY when 'M' then 'MAKE' else 'BUY' end"}
        created_at: REG_DTTM
        updated_at: UPD_DTTM

  - name: bom
    source: {table: TB_BOM}
    primary_key: [PRNT_CD, CHLD_CD, FROM_YMD]
    columns:
      - {name: PRNT_CD, type: string, nullable: false}
      - {name: CHLD_CD, type: string, nullable: false}
      - {name: FROM_YMD, type: date, nullable: false}
      - {name: TO_YMD, type: date}
      - {name: UNIT_QTY, type: decimal, precision: 12, scale: 4, nullable: false}
    mapping:
      mart: mart_bom
      columns:
        parent_item_id: PRNT_CD
        child_item_id: CHLD_CD
        valid_from: FROM_YMD
        valid_to: TO_YMD
        qty_per: UNIT_QTY

  - name: dmd
    source: {table: TB_DMD}
    primary_key: [DMD_NO]
    mode: merge
    cursor: UPD_DTTM
    columns:
      - {name: DMD_NO, type: int, nullable: false}
      - {name: ITEM_CD, type: string, nullable: false}
      - {name: CUST_CD, type: string, nullable: false}
      - {name: DMD_TP, type: string, nullable: false}
      - {name: DUE_YMD, type: date, nullable: false}
      - {name: DMD_QTY, type: decimal, precision: 12, scale: 2, nullable: false}
      - {name: PRIOR_NO, type: int, nullable: false}
      - {name: DMD_STAT, type: string, nullable: false}
      - {name: UPD_DTTM, type: timestamp, nullable: false}
    mapping:
      mart: mart_demand
      filter: DMD_QTY > 0              # placeholder lines without a quantity
      columns:
        demand_id: DMD_NO
        item_id: ITEM_CD
        customer_id: CUST_CD
        demand_type: {map: {O: ORDER, F: FORECAST}, column: DMD_TP}
        due_date: DUE_YMD
        demand_qty: DMD_QTY
        priority: PRIOR_NO
        status: {map: {OP: OPEN, CL: CLOSED, CN: CANCELLED}, column: DMD_STAT}
        updated_at: UPD_DTTM
"""


def _write_tenant(tenants: Path, database: str) -> Path:
    """The tenant as its engineer writes it: tenant.yaml and nothing else
    (`mozart sync` adds the dbt project's fixed files)."""
    folder = tenants / TENANT
    folder.mkdir(parents=True)
    (folder / "tenant.yaml").write_text(TENANT_YAML.replace("__DATABASE__", database))
    return folder


def _mozart(tenants: Path, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = mozart(["--tenants-dir", str(tenants), *argv])
    return code, out.getvalue()


def test_a_legacy_plant_onboarded_by_tenant_yaml_alone(
    tmp_path: Path,
    mozart_home: Path,
    airflow_db: Path,
    mysql_db: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from mozart_etl.demo.run import run_tenant_day

    plant = simulate()
    write_source(mysql_db, plant, day_end(DAYS[0]))
    tenants = tmp_path / "tenants"
    folder = _write_tenant(tenants, mysql_db)
    assert [p.name for p in folder.rglob("*") if p.is_file()] == ["tenant.yaml"]

    with caplog.at_level(logging.INFO, logger="mozart"):
        assert _mozart(tenants, "validate")[0] == 0, caplog.text
        assert _mozart(tenants, "sync", "--check")[0] == 1, "dbt project missing"
        assert _mozart(tenants, "sync")[0] == 0, caplog.text
        assert _mozart(tenants, "sync", "--check")[0] == 0, caplog.text
        project = (folder / "dbt" / "dbt_project.yml").read_text()
        assert f"name: {TENANT}" in project
        code, report = _mozart(tenants, "check", TENANT)
        assert code == 0, report
        assert _mozart(tenants, "manifests")[0] == 0, caplog.text
    generated = {p.stem for p in folder.rglob("_generated/*.sql")}
    assert generated == {
        *(f"stg_{name}" for name in _STAGING),
        *MARTS,
        "mart_item_master",
        "mart_bom",
        "mart_demand",
    }

    monkeypatch.setenv("MOZART_TENANTS_DIR", str(tenants))
    tenant = load_tenant(folder)
    warehouse = str(tenant.dbt.duckdb_path)
    first = None
    for day in [*DAYS, DAYS[0]]:
        rerun = first is not None and day == DAYS[0]
        at = day_end(DAYS[-1]) if rerun else day_end(day)
        tables = write_source(mysql_db, plant, at)
        run = run_tenant_day(TENANT, day)
        assert str(run.state) == "success", day
        expected = daily_marts(tables, day, TENANT)
        if rerun:  # the day as of its end, not as the source stands now
            assert expected["mart_wip"] != first["mart_wip"], "no state changed"
            expected = first
        first = first or expected
        for mart in MARTS:
            assert expected[mart], f"{mart} {day}: nothing to compare"
            actual = mart_rows(warehouse, mart, day, TENANT)
            assert_rows_equal(mart, actual, expected[mart])
        master = master_marts(tables, day, PLAN_VER, TENANT)
        for mart, rows in master.items():
            assert rows, f"{mart} {day}: nothing to compare"
            assert _warehouse_rows(warehouse, mart, PLAN_VER, TENANT) == rows, mart


_STAGING = (
    "equipment",
    "product_route",
    "lot_history",
    "equipment_event",
    "plan_production",
    "item_master",
    "bom",
    "demand",
)
