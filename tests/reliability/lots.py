"""A small MES-like source table `lots` (SQLite or PostgreSQL) over several days.

Keys are (lot_id, step_seq); `qty` is a decimal the reconcile stage sums;
`updated_at` is the cursor. Rows are spread over the production days
DAYS (Asia/Seoul), ROWS_PER_DAY each.
"""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.helpers import (
    seoul_day,
    sqlite_value,
    table_dict,
    tenant_dict,
    write_sqlite,
)
from tests.reliability.pipeline import write_tenant

DAYS = [date(2026, 11, 15) + timedelta(days=i) for i in range(5)]
ROWS_PER_DAY = 40
KEY = ["lot_id", "step_seq"]
COLUMNS = [
    {"name": "lot_id", "type": "string", "nullable": False},
    {"name": "step_seq", "type": "int", "nullable": False},
    {"name": "qty", "type": "decimal", "precision": 12, "scale": 2},
    {"name": "updated_at", "type": "timestamptz", "nullable": False},
]
SQLITE_DDL = (
    "CREATE TABLE lots (lot_id TEXT, step_seq INTEGER, qty TEXT, updated_at TEXT)"
)


def rows_for(day: date, version: int = 1) -> list[dict[str, Any]]:
    start = seoul_day(day).start
    return [
        {
            "lot_id": f"{day:%m%d}-L{i % 5}",
            "step_seq": i,
            "qty": Decimal(i * version) + Decimal("0.25"),
            "updated_at": start + timedelta(minutes=17 * i),
        }
        for i in range(ROWS_PER_DAY)
    ]


def all_rows(days: list[date] = DAYS) -> list[dict[str, Any]]:
    return [row for day in days for row in rows_for(day)]


def add_sqlite_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """Commit `rows` to the SQLite source's `lots` (the MES writing on)."""
    names = [column["name"] for column in COLUMNS]
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO lots VALUES (?, ?, ?, ?)",
            [[sqlite_value(row[name]) for name in names] for row in rows],
        )
    conn.close()


def keys(rows: list[dict[str, Any]]) -> list[tuple]:
    return [(row["lot_id"], row["step_seq"]) for row in rows]


def lots_table(mode: str = "incremental", **extra: Any) -> dict[str, Any]:
    if mode != "full_refresh":
        extra.setdefault("cursor", "updated_at")
    return table_dict(
        "lots", COLUMNS, primary_key=KEY, mode=mode, reconcile_sum="qty", **extra
    )


def sqlite_lots_tenant(
    tmp_path: Path, rows: list[dict[str, Any]], mode: str = "incremental", **extra: Any
) -> Path:
    """A tenant folder reading `lots` from a new SQLite file holding `rows`."""
    write_sqlite(tmp_path / "source.sqlite", SQLITE_DDL, "lots", rows)
    data = tenant_dict(tmp_path, [lots_table(mode, **extra)])
    data["schedule"]["retries"] = 0
    return write_tenant(tmp_path / "tenants", data)
