"""What every mart of the legacy plant must hold, computed here in Python.

Written from the shared APS spec and the plant's own conventions, apart from
the mapping code under test: the plant's codes are decoded by hand, its wall
times made instants with zoneinfo, and the daily marts computed by
tests/e2e/oracle.py (`marts_of`, plain Python over standard-named rows). The
master marts are computed here from their definitions.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from tests.e2e.oracle import marts_of, source_from_rows
from tests.onboarding.legacy_source import ZONE

Row = dict[str, Any]

LOT_STATUS = {"WT": "WAIT", "RN": "RUN", "CP": "DONE", "HD": "HOLD", "SC": "SCRAP"}
EQUIPMENT_STATE = {"01": "RUN", "02": "IDLE", "03": "DOWN", "04": "PM"}
ITEM_TYPE = {"F": "FG", "S": "SFG", "R": "RM"}
DEMAND_STATUS = {"OP": "OPEN", "CL": "CLOSED", "CN": "CANCELLED"}


def instant(wall: datetime | None) -> datetime | None:
    """The plant's naive wall time as a UTC instant."""
    return None if wall is None else wall.replace(tzinfo=ZoneInfo(ZONE)).astimezone(UTC)


def daily_marts(
    tables: dict[str, list[Row]], day: date, tenant_id: str
) -> dict[str, list[Row]]:
    """The six daily marts of `day` from the MES as it stood at the day's end."""
    standard = {
        "equipment": [
            {
                "equipment_id": r["EQP_ID"],
                "equipment_group": r["EQP_GRP_CD"],
                "active": r["USE_YN"] == "Y",
            }
            for r in tables["TB_EQP"]
        ],
        "product_route": [
            {
                "product_id": r["PROD_CD"],
                "step_seq": r["OPER_SEQ"],
                "step_id": r["OPER_CD"],
            }
            for r in tables["TB_ROUTE"]
        ],
        "lot_history": [
            {
                "lot_id": r["LOT_NO"],
                "step_seq": r["OPER_SEQ"],
                "product_id": r["PROD_CD"],
                "step_id": r["OPER_CD"],
                "equipment_id": r["EQP_ID"],
                "qty_in": r["IN_QTY"],
                "qty_out": r["OUT_QTY"],
                "status": LOT_STATUS[r["LOT_STAT"]],
                "arrived_at": instant(r["ARR_DTTM"]),
                "track_in_at": instant(r["TKIN_DTTM"]),
                "track_out_at": instant(r["TKOUT_DTTM"]),
            }
            for r in tables["TB_LOT_HIST"]
        ],
        "equipment_event": [
            {
                "equipment_id": r["EQP_ID"],
                "event_type": EQUIPMENT_STATE[r["STAT_CD"]],
                "started_at": instant(r["ST_DTTM"]),
                "ended_at": instant(r["END_DTTM"]),
            }
            for r in tables["TB_EQP_STAT_HIST"]
        ],
        "plan_production": [
            {
                "plan_run_id": r["PLAN_ID"],
                "plan_date": r["PLAN_YMD"],
                "product_id": r["PROD_CD"],
                "step_id": r["OPER_CD"],
                # a decimal plan line counts as the nearest whole unit
                "planned_qty": int(r["PLAN_QTY"].quantize(Decimal(1), ROUND_HALF_UP)),
                "created_at": instant(r["CRT_DTTM"]),
            }
            for r in tables["TB_PLAN"]
        ],
    }
    return marts_of(source_from_rows(standard), day, ZONE, 0, tenant_id=tenant_id)


def master_marts(
    tables: dict[str, list[Row]], base: date, plan_ver: str, tenant_id: str
) -> dict[str, list[Row]]:
    """The three master marts for `plan_ver` and base date `base`, from the
    source as the run read it (soft-deleted items and empty demand left out)."""
    head = {"tenant_id": tenant_id, "plan_ver": plan_ver}
    items = [
        {
            **head,
            "item_id": r["ITEM_CD"],
            "item_name": r["ITEM_NM"],
            "item_type": ITEM_TYPE[r["ITEM_TP"]],
            "item_group_id": r["ITEM_GRP"],
            "procurement_type": "MAKE" if r["MAKE_BUY"] == "M" else "BUY",
            "created_at": _naive_utc(r["REG_DTTM"]),
            "updated_at": _naive_utc(r["UPD_DTTM"]),
        }
        for r in tables["TB_ITEM"]
        if r["DEL_YN"] != "Y"
    ]
    bom = [
        {
            **head,
            "parent_item_id": r["PRNT_CD"],
            "child_item_id": r["CHLD_CD"],
            "qty_per": r["UNIT_QTY"],
        }
        for r in tables["TB_BOM"]
        if r["FROM_YMD"] <= base and (r["TO_YMD"] is None or r["TO_YMD"] >= base)
    ]
    groups: dict[tuple[str, date], list[Row]] = defaultdict(list)
    for r in tables["TB_DMD"]:
        status = DEMAND_STATUS[r["DMD_STAT"]]
        if status == "OPEN" and r["DUE_YMD"] >= base and r["DMD_QTY"] > 0:
            groups[(r["ITEM_CD"], r["DUE_YMD"])].append(r)
    demand = [
        {
            **head,
            "item_id": item,
            "due_date": due,
            "order_qty": _sum(lines, "O"),
            "forecast_qty": _sum(lines, "F"),
            "max_priority": max(line["PRIOR_NO"] for line in lines),
            "demand_count": len(lines),
        }
        for (item, due), lines in groups.items()
    ]
    grains = {
        "mart_item_master": ["item_id"],
        "mart_bom": ["parent_item_id", "child_item_id"],
        "mart_demand": ["item_id", "due_date"],
    }
    marts = {"mart_item_master": items, "mart_bom": bom, "mart_demand": demand}
    return {
        name: sorted(rows, key=lambda row, g=grains[name]: [row[k] for k in g])
        for name, rows in marts.items()
    }


def _sum(lines: list[Row], kind: str) -> Decimal:
    total = sum((r["DMD_QTY"] for r in lines if r["DMD_TP"] == kind), Decimal(0))
    return total.quantize(Decimal("0.01"))


def _naive_utc(wall: datetime) -> datetime:
    """Master marts hold timestamps as naive UTC wall time."""
    moment = instant(wall)
    assert moment is not None
    return moment.replace(tzinfo=None)
