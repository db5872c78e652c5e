"""Product-standard marts computed straight from a SQLite source, in plain Python.

Written from APS_SCENARIOS.md alone and independent of the dbt models: when a
mart and this oracle disagree, one of the two misreads the spec. Only
`SELECT *` touches the database; every filter, join and aggregate is Python.

Reading of the spec where it leaves room:
- `lot_count` is always the number of *distinct* lots (a lot may pass the same
  step_id twice in a route, even on the same day);
- a lot is blocked if any of its *remaining* visits (after `exclude_keys`) is
  HOLD or SCRAP; the lot's earliest `arrived_at` also uses remaining visits;
- plan_vs_actual carries the day's latest `plan_run_id` on every row, also on
  rows with actuals only; ties on `created_at` go to the greater run id.

`marts_of` works on rows in memory (`source_from_rows`): `asof_oracle.py`
feeds it the rows as they stood at the end of a day.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

Row = dict[str, Any]

_TIMESTAMP_COLUMNS = frozenset(
    {
        "arrived_at",
        "track_in_at",
        "track_out_at",
        "updated_at",
        "started_at",
        "ended_at",
        "measured_at",
        "planned_start",
        "planned_end",
        "created_at",
    }
)
_DATE_COLUMNS = frozenset({"plan_date"})
_EVENT_TYPES = ("RUN", "IDLE", "DOWN", "PM")
_BLOCKING = frozenset({"HOLD", "SCRAP"})


@dataclass(frozen=True)
class _Window:
    """Production day `day` as the UTC instants [start, end)."""

    day: date
    start: datetime
    end: datetime

    @property
    def hours(self) -> float:
        return _hours(self.end - self.start)

    def holds(self, instant: datetime | None) -> bool:
        return instant is not None and self.start <= instant < self.end


@dataclass(frozen=True)
class Source:
    equipment: list[Row]
    routes: list[Row]
    visits: list[Row]
    events: list[Row]
    plans: list[Row]
    blocked_lots: frozenset[str] | None = None
    """Lots blocked at the day's end; None: every lot with a HOLD or SCRAP visit."""


def expected_marts(
    source_path: Path,
    day: date,
    tz: str = "Asia/Seoul",
    day_start_hour: int = 0,
    exclude_keys: Iterable[tuple[str, int]] = frozenset(),
    *,
    threshold_pct: float = 20.0,
    tenant_id: str = "demo",
) -> dict[str, list[Row]]:
    """Rows of every actuals mart for production day `day`, sorted by grain.

    `exclude_keys` are the (lot_id, step_seq) visits that validation
    quarantined: they count in no mart.
    """
    source = _load_source(Path(source_path), set(exclude_keys))
    return marts_of(
        source,
        day,
        tz,
        day_start_hour,
        threshold_pct=threshold_pct,
        tenant_id=tenant_id,
    )


def marts_of(
    source: Source,
    day: date,
    tz: str,
    day_start_hour: int = 0,
    *,
    threshold_pct: float = 20.0,
    tenant_id: str,
) -> dict[str, list[Row]]:
    """Every actuals mart of production day `day` from standard-named rows
    (another tenant's reader maps its own schema onto `Source` first)."""
    window = _production_window(day, tz, day_start_hour)
    done = _done_visits(source.visits, window)
    marts = {
        "mart_wip": _wip(source.visits, window, source.blocked_lots),
        "mart_cycle_time": _cycle_time(done, window),
        "mart_lead_time": _lead_time(source, done, window),
        "mart_plan_vs_actual": _plan_vs_actual(source.plans, done, window),
        "mart_equipment_utilization": _equipment_utilization(source, window),
        "mart_line_balance": _line_balance(
            source.equipment, done, window, threshold_pct
        ),
    }
    return {
        name: [{"tenant_id": tenant_id, **row} for row in rows]
        for name, rows in marts.items()
    }


# --- reading ----------------------------------------------------------------


def _production_window(day: date, tz: str, day_start_hour: int) -> _Window:
    zone = ZoneInfo(tz)
    start = datetime.combine(day, time(day_start_hour), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(day_start_hour), tzinfo=zone)
    return _Window(day=day, start=start.astimezone(UTC), end=end.astimezone(UTC))


_SOURCE_TABLES = {
    "equipment": "equipment",
    "routes": "product_route",
    "visits": "lot_history",
    "events": "equipment_event",
    "plans": "plan_production",
}


def _load_source(path: Path, exclude_keys: set[tuple[str, int]]) -> Source:
    conn = sqlite3.connect(path)
    try:
        tables = {table: _read_table(conn, table) for table in _SOURCE_TABLES.values()}
    finally:
        conn.close()
    return source_from_rows(tables, exclude_keys)


def source_from_rows(
    tables: Mapping[str, Iterable[Row]],
    exclude_keys: Iterable[tuple[str, int]] = frozenset(),
    blocked_lots: Iterable[str] | None = None,
) -> Source:
    """A `Source` from rows named like the demo's columns (stored text or typed
    values), by table name; the visits in `exclude_keys` are left out."""
    excluded = set(exclude_keys)
    rows = {
        field: [_typed(dict(row)) for row in tables.get(table, [])]
        for field, table in _SOURCE_TABLES.items()
    }
    rows["visits"] = [
        v for v in rows["visits"] if (v["lot_id"], v["step_seq"]) not in excluded
    ]
    blocked = None if blocked_lots is None else frozenset(blocked_lots)
    return Source(**rows, blocked_lots=blocked)


def _read_table(conn: sqlite3.Connection, table: str) -> list[Row]:
    cursor = conn.execute(f"SELECT * FROM {table}")
    names = [column[0] for column in cursor.description]
    return [_typed(dict(zip(names, values, strict=True))) for values in cursor]


def _typed(row: Row) -> Row:
    """Source text as Python values: aware datetimes, dates (typed values stay)."""
    for name, value in row.items():
        if not isinstance(value, str):
            continue
        if name in _TIMESTAMP_COLUMNS:
            row[name] = datetime.fromisoformat(value).astimezone(UTC)
        elif name in _DATE_COLUMNS:
            row[name] = date.fromisoformat(value)
    return row


# --- helpers ----------------------------------------------------------------


def _hours(delta: timedelta) -> float:
    return delta.total_seconds() / 3600


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _group_by(rows: Iterable[Row], key: Callable[[Row], Any]) -> dict[Any, list[Row]]:
    groups: dict[Any, list[Row]] = defaultdict(list)
    for row in rows:
        groups[key(row)].append(row)
    return groups


def _product_step(row: Row) -> tuple[str, str]:
    return row["product_id"], row["step_id"]


def _done_visits(visits: list[Row], window: _Window) -> list[Row]:
    """DONE visits tracked out in the production day."""
    return [
        visit
        for visit in visits
        if visit["status"] == "DONE" and window.holds(visit["track_out_at"])
    ]


def _distinct_lots(visits: Iterable[Row]) -> int:
    return len({visit["lot_id"] for visit in visits})


# --- marts ------------------------------------------------------------------


def _wip(
    visits: list[Row], window: _Window, blocked: frozenset[str] | None = None
) -> list[Row]:
    """Visits open at the end of the day, of lots not blocked then (by default:
    lots with a visit on HOLD or scrapped)."""
    if blocked is None:
        blocked = frozenset(v["lot_id"] for v in visits if v["status"] in _BLOCKING)
    snapshot = window.end
    open_visits = [
        visit
        for visit in visits
        if visit["lot_id"] not in blocked
        and visit["arrived_at"] < snapshot
        and (visit["track_out_at"] is None or visit["track_out_at"] >= snapshot)
    ]
    rows = [
        {
            "snapshot_date": window.day,
            "product_id": product_id,
            "step_id": step_id,
            "lot_count": _distinct_lots(group),
            "wip_qty": sum(visit["qty_in"] for visit in group),
        }
        for (product_id, step_id), group in _group_by(
            open_visits, _product_step
        ).items()
    ]
    return sorted(rows, key=lambda row: (row["product_id"], row["step_id"]))


def _cycle_time(done: list[Row], window: _Window) -> list[Row]:
    rows = []
    for (product_id, step_id), group in _group_by(done, _product_step).items():
        queue = [_hours(v["track_in_at"] - v["arrived_at"]) for v in group]
        process = [_hours(v["track_out_at"] - v["track_in_at"]) for v in group]
        cycle = [_hours(v["track_out_at"] - v["arrived_at"]) for v in group]
        rows.append(
            {
                "work_date": window.day,
                "product_id": product_id,
                "step_id": step_id,
                "lot_count": _distinct_lots(group),
                "avg_queue_hours": _mean(queue),
                "avg_process_hours": _mean(process),
                "avg_cycle_hours": _mean(cycle),
                "max_cycle_hours": max(cycle),
            }
        )
    return sorted(rows, key=lambda row: (row["product_id"], row["step_id"]))


def _lead_time(source: Source, done: list[Row], window: _Window) -> list[Row]:
    """Lots finishing their route on the day: last track-out minus first arrival."""
    last_seq: dict[str, int] = {}
    for step in source.routes:
        product_id = step["product_id"]
        last_seq[product_id] = max(
            last_seq.get(product_id, step["step_seq"]), step["step_seq"]
        )
    first_arrival: dict[str, datetime] = {}
    for visit in source.visits:
        lot_id = visit["lot_id"]
        arrived = visit["arrived_at"]
        first_arrival[lot_id] = min(first_arrival.get(lot_id, arrived), arrived)
    finished = [v for v in done if v["step_seq"] == last_seq.get(v["product_id"])]
    rows = []
    for product_id, group in _group_by(finished, lambda v: v["product_id"]).items():
        lead = {
            v["lot_id"]: _hours(v["track_out_at"] - first_arrival[v["lot_id"]])
            for v in group
        }
        rows.append(
            {
                "work_date": window.day,
                "product_id": product_id,
                "lot_count": len(lead),
                "avg_lead_time_hours": _mean(list(lead.values())),
            }
        )
    return sorted(rows, key=lambda row: row["product_id"])


def _latest_plan_run(plans: list[Row], day: date) -> tuple[str | None, list[Row]]:
    """The run with the latest created_at among the day's runs, and its lines."""
    runs = _group_by(
        (line for line in plans if line["plan_date"] == day), lambda r: r["plan_run_id"]
    )
    if not runs:
        return None, []
    run_id = max(
        runs, key=lambda rid: (max(line["created_at"] for line in runs[rid]), rid)
    )
    return run_id, runs[run_id]


def _plan_vs_actual(plans: list[Row], done: list[Row], window: _Window) -> list[Row]:
    run_id, lines = _latest_plan_run(plans, window.day)
    planned: dict[tuple[str, str], int] = defaultdict(int)
    for line in lines:
        planned[_product_step(line)] += line["planned_qty"]
    actual: dict[tuple[str, str], int] = defaultdict(int)
    for visit in done:
        actual[_product_step(visit)] += visit["qty_out"]
    rows = []
    for product_id, step_id in sorted(set(planned) | set(actual)):
        plan_qty = planned.get((product_id, step_id), 0)
        actual_qty = actual.get((product_id, step_id), 0)
        rows.append(
            {
                "work_date": window.day,
                "product_id": product_id,
                "step_id": step_id,
                "plan_run_id": run_id,
                "planned_qty": plan_qty,
                "actual_qty": actual_qty,
                "deviation_qty": actual_qty - plan_qty,
                "attainment_pct": 100 * actual_qty / plan_qty if plan_qty else None,
            }
        )
    return rows


def _clipped_hours(event: Row, window: _Window) -> float:
    """Hours of the event inside the day; an open event runs to the day's end."""
    ended = event["ended_at"] or window.end
    overlap = min(ended, window.end) - max(event["started_at"], window.start)
    return max(0.0, _hours(overlap))


def _equipment_utilization(source: Source, window: _Window) -> list[Row]:
    events = _group_by(source.events, lambda e: e["equipment_id"])
    rows = []
    for eq in sorted(source.equipment, key=lambda e: e["equipment_id"]):
        if not eq["active"]:
            continue
        hours = dict.fromkeys(_EVENT_TYPES, 0.0)
        for event in events.get(eq["equipment_id"], []):
            hours[event["event_type"]] += _clipped_hours(event, window)
        rows.append(
            {
                "work_date": window.day,
                "equipment_id": eq["equipment_id"],
                "run_hours": hours["RUN"],
                "idle_hours": hours["IDLE"],
                "down_hours": hours["DOWN"],
                "pm_hours": hours["PM"],
                "utilization_pct": 100 * hours["RUN"] / window.hours,
            }
        )
    return rows


def _line_balance(
    equipment: list[Row], done: list[Row], window: _Window, threshold_pct: float
) -> list[Row]:
    output: dict[str, int] = defaultdict(int)
    for visit in done:
        output[visit["equipment_id"]] += visit["qty_out"]
    active = [eq for eq in equipment if eq["active"]]
    rows = []
    for group_name, machines in _group_by(
        active, lambda e: e["equipment_group"]
    ).items():
        mean = _mean([float(output.get(eq["equipment_id"], 0)) for eq in machines])
        for eq in machines:
            qty = output.get(eq["equipment_id"], 0)
            deviation = 100 * (qty - mean) / mean if mean else None
            rows.append(
                {
                    "work_date": window.day,
                    "equipment_group": group_name,
                    "equipment_id": eq["equipment_id"],
                    "output_qty": qty,
                    "group_mean_qty": mean,
                    "deviation_pct": deviation,
                    "imbalance_flag": deviation is not None
                    and abs(deviation) > threshold_pct,
                }
            )
    return sorted(rows, key=lambda row: (row["equipment_group"], row["equipment_id"]))
