"""Acme's MariaDB source read with plain SQL and mapped in Python onto the
standard rows the oracle computes marts from (independent of acme's dbt
staging models: the same mapping, written a second time from acme.py's codes).

Acme's DATETIME columns hold New York wall time; the oracle reads a wall time
as its first occurrence (fold=0) where clocks fall back, as the pipeline does.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from mozart_etl.demo.acme import ACME_TZ, connect
from tests.e2e.oracle import Row, Source, source_from_rows

_STATUS = {"WAIT": "WAIT", "RUN": "RUN", "END": "DONE", "HOLD": "HOLD", "SCRP": "SCRAP"}
_EVENTS = {"PROD": "RUN", "IDLE": "IDLE", "BM": "DOWN", "PM": "PM"}


def read_acme_source(
    database: str, exclude_keys: Iterable[tuple[str, int]] = ()
) -> Source:
    """Every acme table, renamed to the standard columns; `exclude_keys` are the
    (lot_no, oper_seq) visits validation quarantined."""
    return source_from_rows(acme_tables(database), exclude_keys)


def _rows(conn: Any, table: str) -> list[Row]:
    with conn.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table}")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]


def _utc(value: datetime | None) -> datetime | None:
    """A naive New York wall time (DATETIME) as a UTC instant: fold=0, the
    first occurrence of a wall time the end of DST repeats."""
    return None if value is None else source_instant(value)


def source_instant(wall: datetime) -> datetime:
    """Acme's naive New York wall time as an aware UTC instant (fold=0)."""
    return wall.replace(tzinfo=ZoneInfo(ACME_TZ), fold=0).astimezone(UTC)


def acme_tables(database: str) -> dict[str, list[Row]]:
    """The daily marts' acme tables as the demo names them, keys and cursors
    included (what `asof_oracle.perceived_marts` reads from each capture)."""
    with connect(database) as conn:
        return {
            "equipment": [
                {
                    "equipment_id": r["eqp_id"],
                    "equipment_group": r["eqp_grp"],
                    "active": r["use_yn"] == "Y",
                }
                for r in _rows(conn, "tb_eqp")
            ],
            "product_route": [
                {"product_id": r["prod_id"], "step_seq": r["oper_seq"]}
                for r in _rows(conn, "tb_route")
            ],
            "lot_history": [
                {
                    "lot_id": r["lot_no"],
                    "step_seq": r["oper_seq"],
                    "product_id": r["prod_id"],
                    "step_id": r["oper_id"],
                    "equipment_id": r["eqp_id"],
                    "qty_in": r["in_qty"],
                    "qty_out": r["out_qty"],
                    "status": _STATUS[r["lot_stat"]],
                    "arrived_at": _utc(r["arr_dt"]),
                    "track_in_at": _utc(r["tkin_dt"]),
                    "track_out_at": _utc(r["tkout_dt"]),
                    "updated_at": _utc(r["upd_dt"]),
                }
                for r in _rows(conn, "tb_lot_hist")
            ],
            "equipment_event": [
                {
                    "event_id": r["evt_no"],
                    "equipment_id": r["eqp_id"],
                    "event_type": _EVENTS[r["evt_cd"]],
                    "started_at": _utc(r["st_dt"]),
                    "ended_at": _utc(r["ed_dt"]),
                    "updated_at": _utc(r["upd_dt"]),
                }
                for r in _rows(conn, "tb_eqp_evt")
            ],
            "plan_production": [
                {
                    "plan_run_id": r["plan_id"],
                    "line_no": r["line_seq"],
                    "plan_date": r["plan_dt"],
                    "product_id": r["prod_id"],
                    "step_id": r["oper_id"],
                    "planned_qty": r["plan_qty"],
                    "created_at": _utc(r["crt_dt"]),
                }
                for r in _rows(conn, "tb_plan")
            ],
        }
