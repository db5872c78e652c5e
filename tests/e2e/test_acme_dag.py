"""Tenant `acme` end to end: MariaDB source with its own schema → the same
product-standard marts, day by day across the end of daylight saving time.

Each production day the source is moved forward to that day's end (as a plant's
MES would show it when the nightly run starts) and the DAG runs for the day
through Airflow. Every mart value is compared with the oracle computed from
the source with plain SQL and Python (tests/e2e/acme_source.py, oracle.py).
2026-10-31 in New York, from 06:00 to 06:00, is 25 hours long: its run must
neither drop nor double the extra hour.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
import pytest

from mozart_etl.config.loader import load_tenant
from mozart_etl.core.calendar import production_day
from mozart_etl.core.lake import Lake, latest_manifest
from mozart_etl.demo.acme import (
    ACME_DAY_START_HOUR,
    ACME_DST_DAY,
    ACME_TZ,
    connect,
    production_day_bounds,
    simulate,
    write_acme_source,
)
from mozart_etl.demo.run import run_tenant_day
from mozart_etl.load.catalog import open_catalog
from mozart_etl.load.versions import live_rows
from tests.e2e.acme_source import read_acme_source
from tests.e2e.marts import MARTS, assert_rows_equal, mart_rows
from tests.e2e.oracle import marts_of

ROOT = Path(__file__).resolve().parents[2]
DAYS = [date(2026, 10, 30), ACME_DST_DAY, date(2026, 11, 1)]
THRESHOLD_PCT = 15.0  # tenants/acme/tenant.yaml dbt.vars.line_balance_threshold_pct

pytestmark = pytest.mark.e2e


def test_acme_marts_equal_the_oracle_across_the_dst_change(
    mozart_home: Path, airflow_db: Path, acme_db: str
) -> None:
    tenant = load_tenant(ROOT / "tenants" / "acme")
    assert tenant.dbt.vars["line_balance_threshold_pct"] == THRESHOLD_PCT
    assert production_day(ACME_DST_DAY, ACME_TZ, ACME_DAY_START_HOUR).hours == 25
    plant = simulate()
    warehouse = str(tenant.dbt.duckdb_path)
    for day in DAYS:
        summary = write_acme_source(
            acme_db, as_of=production_day_bounds(day)[1], plant=plant
        )
        assert str(run_tenant_day("acme", day).state) == "success", day
        bad_keys = set(_planted_rules(summary.bad_lot_keys))  # the quarantined ones
        planted = _planted_rules(summary.bad_lot_keys) if day == ACME_DST_DAY else {}
        assert _quarantined(tenant, day) == planted, day
        oracle = marts_of(
            read_acme_source(acme_db, exclude_keys=bad_keys),
            day,
            ACME_TZ,
            ACME_DAY_START_HOUR,
            threshold_pct=THRESHOLD_PCT,
            tenant_id="acme",
        )
        for mart in MARTS:
            expected = oracle[mart]
            assert expected, f"{mart} {day}: the oracle has no rows to compare"
            assert_rows_equal(mart, mart_rows(warehouse, mart, day, "acme"), expected)
        if day == ACME_DST_DAY:
            _assert_25_hours(warehouse, acme_db, bad_keys)
    # After the backfill raw's live rows are the source's, quarantined ones
    # excepted (raw keeps each row's earlier versions beside them).
    table = tenant.table("lot_hist")
    live = live_rows(open_catalog(tenant).load_table(("acme_raw", "lot_hist")), table)
    keys = set(
        zip(live["lot_no"].to_pylist(), live["oper_seq"].to_pylist(), strict=True)
    )
    assert len(keys) == live.num_rows
    with connect(acme_db) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT lot_no, oper_seq FROM tb_lot_hist")
        source_keys = set(cursor.fetchall())
    assert keys == source_keys - bad_keys


def _assert_25_hours(warehouse: str, database: str, bad_keys: set) -> None:
    """The extra hour is in the day: each active machine's events tile its time,
    so their hours add up to 25; and rows changed in that hour were loaded."""
    for row in mart_rows(warehouse, "mart_equipment_utilization", ACME_DST_DAY, "acme"):
        total = (
            row["run_hours"] + row["idle_hours"] + row["down_hours"] + row["pm_hours"]
        )
        assert total == pytest.approx(25.0, rel=1e-12), row
    start = datetime(2026, 11, 1, 10, tzinfo=UTC)  # 05:00 EST, the day's 25th hour
    end = start + timedelta(hours=1)
    with connect(database) as conn, conn.cursor() as cursor:
        cursor.execute(  # the MES's DATETIME columns hold New York wall time
            "SELECT count(*) FROM tb_lot_hist WHERE upd_dt >= %s AND upd_dt < %s",
            (_new_york_wall(start), _new_york_wall(end)),
        )
        ((late,),) = cursor.fetchall()
    assert late > 0, "no source row changed in the extra hour: the test cannot fail"


def _new_york_wall(instant: datetime) -> datetime:
    """An instant as acme's MES writes it: naive New York wall time."""
    return instant.astimezone(ZoneInfo(ACME_TZ)).replace(tzinfo=None)


def _quarantined(tenant, day: date) -> dict[tuple[str, int], list[str]]:
    manifest = latest_manifest(Lake(tenant), "lot_hist", day)
    rows = pq.read_table(f"{manifest.folder}/validated/quarantine.parquet")
    return {
        (lot, seq): sorted(rules)
        for lot, seq, rules in zip(
            rows["lot_no"].to_pylist(),
            rows["oper_seq"].to_pylist(),
            rows["_mozart_failed_rules"].to_pylist(),
            strict=True,
        )
    }


def _planted_rules(keys: list[tuple[str, int]]) -> dict[tuple[str, int], list[str]]:
    """The DST day's extract holds the three planted breaks, in acme.py's order;
    the route-order break is reported (a warning), never quarantined."""
    rules = ["route_order", "done_has_track_out", "qty_out_le_qty_in"]
    return {
        key: [rule]
        for key, rule in zip(keys, rules, strict=False)
        if rule != "route_order"
    }
