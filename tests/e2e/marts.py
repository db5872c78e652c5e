"""Reading a tenant's marts back from its DuckDB warehouse and comparing them
with oracle rows value by value (exact, floats to 1e-9 relative)."""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import duckdb

MARTS = {
    "mart_wip": ["snapshot_date", "product_id", "step_id"],
    "mart_cycle_time": ["work_date", "product_id", "step_id"],
    "mart_lead_time": ["work_date", "product_id"],
    "mart_plan_vs_actual": ["work_date", "product_id", "step_id"],
    "mart_equipment_utilization": ["work_date", "equipment_id"],
    "mart_line_balance": ["work_date", "equipment_group", "equipment_id"],
}


def mart_rows(
    warehouse: str, mart: str, day: date, schema: str = "demo"
) -> list[dict[str, Any]]:
    """One production day of a mart, sorted by its grain."""
    date_column = MARTS[mart][0]
    order = ", ".join(MARTS[mart])
    with duckdb.connect(warehouse) as con:
        result = con.execute(
            f"SELECT * FROM {schema}.{mart} WHERE {date_column} = ? ORDER BY {order}",
            [day],
        )
        names = [d[0] for d in result.description]
        return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(expected, float) and actual is not None:
        return math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-9)
    return actual == expected


def assert_rows_equal(mart: str, actual: list[dict], expected: list[dict]) -> None:
    assert len(actual) == len(expected), (
        f"{mart}: {len(actual)} != {len(expected)} rows"
    )
    for got, want in zip(actual, expected, strict=True):
        assert set(got) == set(want), f"{mart}: columns {sorted(got)} != {sorted(want)}"
        wrong = {k: (got[k], v) for k, v in want.items() if not _same(got[k], v)}
        assert not wrong, f"{mart} row {want}: (actual, expected) {wrong}"
