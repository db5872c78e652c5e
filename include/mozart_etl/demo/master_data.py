"""The demo source's APS master data: items, BOM lines and demand (deterministic).

Fixed in size (it does not follow `scale`): master data is small beside the
MES history. Stored with the generator's SQLite conventions (UTC text
timestamps, numeric(p, s) as text with `s` decimals, dates as `YYYY-MM-DD`).

Shapes the master marts must get right:
- items of the three types, some names in Korean;
- BOM lines whose validity changes on DEMO_DAY (a line valid up to the day
  before, its successor from the day itself), a line that expired, one that
  starts in the future, and open-ended lines (`valid_to` null);
- demand of both types, all three statuses, due dates before and after
  DEMO_DAY, several lines per item and due date, `updated_at` spread over the
  history so an incremental extract has something to merge each day;
- demand that changed during the history (`demand_versions`): re-prioritised,
  or OPEN first and CANCELLED later, so a source read at an earlier instant
  shows an older version of the row.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

DDL = {
    "item_master": """CREATE TABLE item_master (
        item_id TEXT NOT NULL PRIMARY KEY, item_name TEXT NOT NULL,
        item_type TEXT NOT NULL, item_group_id TEXT, procurement_type TEXT NOT NULL,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL)""",
    "bom": """CREATE TABLE bom (
        parent_item_id TEXT NOT NULL, child_item_id TEXT NOT NULL,
        valid_from TEXT NOT NULL, qty_per TEXT NOT NULL, valid_to TEXT,
        PRIMARY KEY (parent_item_id, child_item_id, valid_from))""",
    "demand": """CREATE TABLE demand (
        demand_id TEXT NOT NULL PRIMARY KEY, item_id TEXT NOT NULL,
        customer_id TEXT NOT NULL, demand_type TEXT NOT NULL, due_date TEXT NOT NULL,
        demand_qty TEXT NOT NULL, priority INTEGER NOT NULL, status TEXT NOT NULL,
        updated_at TEXT NOT NULL)""",
}

# item_id, name, type, group, procurement
_ITEMS: tuple[tuple[str, str, str, str, str], ...] = (
    ("PRD-A", "로직 웨이퍼 A", "FG", "GRP-LOGIC", "MAKE"),
    ("PRD-B", "Memory wafer B", "FG", "GRP-MEMORY", "MAKE"),
    ("PRD-C", "전력 반도체 C", "FG", "GRP-POWER", "MAKE"),
    ("PRD-D", "Sensor wafer D", "FG", "GRP-SENSOR", "MAKE"),
    ("SFG-EPI", "에피 웨이퍼", "SFG", "GRP-WAFER", "MAKE"),
    ("SFG-OXI", "Oxidised wafer", "SFG", "GRP-WAFER", "MAKE"),
    ("RM-SI200", "실리콘 웨이퍼 200mm", "RM", "GRP-RM-WAFER", "BUY"),
    ("RM-SI300", "Silicon wafer 300mm", "RM", "GRP-RM-WAFER", "BUY"),
    ("RM-PR01", "포토레지스트 PR-01", "RM", "GRP-RM-CHEM", "BUY"),
    ("RM-SLURRY", "CMP 슬러리", "RM", "GRP-RM-CHEM", "BUY"),
    ("RM-GAS-N2", "Nitrogen gas", "RM", "GRP-RM-GAS", "BUY"),
    ("RM-TARGET", "스퍼터링 타깃", "RM", "GRP-RM-METAL", "BUY"),
)
_FINISHED = [item[0] for item in _ITEMS if item[2] == "FG"]
_CUSTOMERS = ("CUST-001", "CUST-002", "CUST-003", "CUST-004", "CUST-005")
_OPEN_FROM = date(2026, 1, 1)
DEMAND_ROWS = 80
DEMAND_CHANGE_RATE = 0.2
"""Share of demand rows that had an earlier version (re-prioritised or cancelled)."""
_CHANGED_BEFORE_HOURS = (2, 48)
_DUE_OFFSETS = (-3, -1, 0, 2, 5, 8, 12, 16, 21)
"""Due dates around the anchor day: the day before it too (base dates differ)."""


ItemRow = tuple[str, str, str, str, str, str, str]
"""item_id, name, kind, group, procurement, created_at, updated_at."""
BomRow = tuple[str, str, str, str, str | None]
"""parent, child, valid_from, qty, valid_to (None: open)."""
DemandRow = tuple[str, str, str, str, str, str, int, str, str]
"""demand_id, item_id, customer, kind, due_date, qty, priority, status, updated_at."""


def item_rows(rng: random.Random, history_start: int) -> list[ItemRow]:
    """Items created months before the history; some updated during it."""
    rows: list[ItemRow] = []
    for item_id, name, kind, group, procurement in _ITEMS:
        created = history_start - rng.randint(30, 300) * 86_400 - rng.randint(0, 86_399)
        updated = created + rng.randint(0, 20) * 86_400
        if rng.random() < 0.3:
            updated = history_start + rng.randint(0, 4 * 86_400)
        rows.append(
            (item_id, name, kind, group, procurement, _ts(created), _ts(updated))
        )
    return rows


def bom_rows(rng: random.Random, change_day: date) -> list[BomRow]:
    """FG → SFG → RM lines; validity changes on `change_day` for some lines."""
    lines: list[tuple[str, str, date, str, date | None]] = []
    before = change_day - timedelta(days=1)
    for product in _FINISHED:
        wafer = "SFG-EPI" if product in ("PRD-A", "PRD-C") else "SFG-OXI"
        lines.append((product, wafer, _OPEN_FROM, "1.0000", None))
        old, new = _qty(rng, 0.5, 3.0), _qty(rng, 0.5, 3.0)
        while new == old:
            new = _qty(rng, 0.5, 3.0)
        # PR-01 usage re-specified on change_day: old line ends the day before.
        lines.append((product, "RM-PR01", _OPEN_FROM, old, before))
        lines.append((product, "RM-PR01", change_day, new, None))
        lines.append((product, "RM-GAS-N2", _OPEN_FROM, _qty(rng, 0.1, 0.9), None))
    lines.append(("SFG-EPI", "RM-SI300", _OPEN_FROM, "1.0000", None))
    lines.append(("SFG-EPI", "RM-TARGET", _OPEN_FROM, _qty(rng, 0.01, 0.2), None))
    lines.append(("SFG-OXI", "RM-SI200", _OPEN_FROM, "1.0000", None))
    # Expired the day before change_day, and a line that only starts later.
    lines.append(("PRD-B", "RM-SLURRY", _OPEN_FROM, _qty(rng, 0.2, 1.5), before))
    lines.append(
        (
            "PRD-D",
            "RM-SLURRY",
            change_day + timedelta(days=6),
            _qty(rng, 0.2, 1.5),
            None,
        )
    )
    return [
        (
            parent,
            child,
            start.isoformat(),
            qty,
            None if end is None else end.isoformat(),
        )
        for parent, child, start, qty, end in lines
    ]


def demand_rows(
    rng: random.Random, anchor_day: date, history_start: int, history_end: int
) -> list[DemandRow]:
    """Orders and forecasts due around `anchor_day`, updated during the history."""
    items = [*_FINISHED, "SFG-EPI"]
    due_days = [anchor_day + timedelta(days=offset) for offset in _DUE_OFFSETS]
    rows: list[DemandRow] = []
    for number in range(1, DEMAND_ROWS + 1):
        kind = "ORDER" if rng.random() < 0.6 else "FORECAST"
        status = rng.choices(("OPEN", "CLOSED", "CANCELLED"), weights=(7, 2, 1))[0]
        cents = rng.randint(500, 250_000)
        rows.append(
            (
                f"DM-{number:05d}",
                rng.choice(items),
                rng.choice(_CUSTOMERS),
                kind,
                rng.choice(due_days).isoformat(),
                f"{cents // 100}.{cents % 100:02d}",
                rng.randint(1, 9),
                status,
                _ts(rng.randrange(history_start, history_end)),
            )
        )
    return rows


def demand_versions(
    rng: random.Random, rows: list[DemandRow]
) -> list[list[tuple[int, DemandRow]]]:
    """Each demand row's versions as (instant it became valid, row), oldest first.

    The last version of each is the row of `rows` itself (valid from its
    `updated_at`), so the source at the end of the history is unchanged; a few
    rows had an earlier version some hours before: a CANCELLED one was OPEN, any
    other had another priority. `rng` is the caller's own stream: the rows of
    `demand_rows` do not depend on it.
    """
    history: list[list[tuple[int, DemandRow]]] = []
    for row in rows:
        updated = _seconds(str(row[8]))
        versions = [(updated, row)]
        if rng.random() < DEMAND_CHANGE_RATE:
            low, high = _CHANGED_BEFORE_HOURS
            earlier = updated - rng.randint(low * 3600, high * 3600)
            status, priority = row[7], row[6]
            if status == "CANCELLED":
                status = "OPEN"
            else:
                priority = rng.choice([p for p in range(1, 10) if p != priority])
            before = (*row[:6], priority, status, _ts(earlier))
            versions.insert(0, (earlier, before))
        history.append(versions)
    return history


def _seconds(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())


def _qty(rng: random.Random, low: float, high: float) -> str:
    return f"{rng.randint(round(low * 10_000), round(high * 10_000)) / 10_000:.4f}"


def _ts(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00:00")
