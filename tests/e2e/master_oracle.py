"""The APS master marts computed straight from the demo's SQLite source, in Python.

Written from APS_SCENARIOS.md ("Master data and plan versions") alone, not from
the dbt models: only `SELECT *` touches the database. Readings where the spec
leaves room: `order_qty`/`forecast_qty` are 0 (not null) for an item and due
date without lines of that type; timestamps are naive UTC wall times.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

Row = dict[str, Any]
GRAINS = {
    "mart_item_master": ["plan_ver", "item_id"],
    "mart_bom": ["plan_ver", "parent_item_id", "child_item_id"],
    "mart_demand": ["plan_ver", "item_id", "due_date"],
}


def expected_master_marts(
    source: Path, base_date: date, plan_ver: str, tenant_id: str = "demo"
) -> dict[str, list[Row]]:
    """Rows of the three master marts for one plan version and base date."""
    with sqlite3.connect(source) as conn:
        conn.row_factory = sqlite3.Row
        tables = {
            name: [dict(row) for row in conn.execute(f"SELECT * FROM {name}")]
            for name in ("item_master", "bom", "demand")
        }
    head = {"tenant_id": tenant_id, "plan_ver": plan_ver}
    marts = {
        "mart_item_master": [
            {
                **head,
                **{k: item[k] for k in ("item_id", "item_name", "item_type")},
                "item_group_id": item["item_group_id"],
                "procurement_type": item["procurement_type"],
                "created_at": _utc(item["created_at"]),
                "updated_at": _utc(item["updated_at"]),
            }
            for item in tables["item_master"]
        ],
        "mart_bom": [
            {
                **head,
                "parent_item_id": line["parent_item_id"],
                "child_item_id": line["child_item_id"],
                "qty_per": Decimal(line["qty_per"]).quantize(Decimal("0.0001")),
            }
            for line in tables["bom"]
            if date.fromisoformat(line["valid_from"]) <= base_date
            and (
                line["valid_to"] is None
                or date.fromisoformat(line["valid_to"]) >= base_date
            )
        ],
        "mart_demand": _demand(tables["demand"], base_date, head),
    }
    return {
        mart: sorted(rows, key=lambda row: [row[k] for k in GRAINS[mart]])
        for mart, rows in marts.items()
    }


def _demand(lines: list[Row], base_date: date, head: Row) -> list[Row]:
    groups: dict[tuple[str, date], list[Row]] = defaultdict(list)
    for line in lines:
        due = date.fromisoformat(line["due_date"])
        if line["status"] == "OPEN" and due >= base_date:
            groups[(line["item_id"], due)].append(line)
    cents = Decimal("0.01")
    return [
        {
            **head,
            "item_id": item_id,
            "due_date": due,
            "order_qty": _sum(group, "ORDER").quantize(cents),
            "forecast_qty": _sum(group, "FORECAST").quantize(cents),
            "max_priority": max(line["priority"] for line in group),
            "demand_count": len(group),
        }
        for (item_id, due), group in groups.items()
    ]


def _sum(group: list[Row], kind: str) -> Decimal:
    return sum(
        (Decimal(line["demand_qty"]) for line in group if line["demand_type"] == kind),
        Decimal(0),
    )


def _utc(text: str) -> datetime:
    """The source's UTC text as a naive UTC wall time."""
    return datetime.fromisoformat(text).replace(tzinfo=None)
