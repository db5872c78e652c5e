"""The daily marts of production day D *as of T*, the end of D, in plain Python.

Written from APS_SCENARIOS.md ("As of the day's end") alone, independent of
the pipeline's SQL: the mart arithmetic is `oracle.marts_of`'s; this module only
decides which rows the marts see at T.

- `truth_marts`: what a perfect observer writes at T: the marts over the source
  exactly as it stood at T.
- `perceived_marts`: what a pipeline can know that captured the whole source at
  some instants. Raw keeps every version of a row it captured, valid from the
  row's cursor (tables without one: from the capture that first showed that
  content); a key missing from a capture was deleted at that capture's instant.
  The row a mart sees at T is the version valid at T; a row first seen after T
  gives its facts (timestamps) but no state: it never blocks a lot. The only
  difference from the truth is then a state that began and ended between two
  captures, which no one saw.

Rows are dicts named like the demo's columns, with the stored values (UTC text
timestamps, as `SELECT *` reads them) or typed ones (aware datetimes).
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

try:
    from tests.e2e.oracle import marts_of, source_from_rows
except ImportError:  # tests/ collected as rootdir-less modules
    from oracle import marts_of, source_from_rows  # type: ignore[no-redef]

Row = dict[str, Any]
Key = tuple[Any, ...]
_TICK = timedelta(microseconds=1)
Tables = Mapping[str, Iterable[Row]]
Capture = tuple[datetime, Tables]
"""(captured_at, every table as the source showed it at that instant)."""

PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "equipment": ("equipment_id",),
    "product_route": ("product_id", "step_seq"),
    "lot_history": ("lot_id", "step_seq"),
    "equipment_event": ("event_id",),
    "process_result": ("result_id",),
    "plan_production": ("plan_run_id", "line_no"),
    "item_master": ("item_id",),
    "bom": ("parent_item_id", "child_item_id", "valid_from"),
    "demand": ("demand_id",),
}
CURSORS = {
    "lot_history": "updated_at",
    "equipment_event": "updated_at",
    "process_result": "measured_at",
    "demand": "updated_at",
}
"""A version of these tables is valid from its cursor value."""
_DAILY_TABLES = (
    "equipment",
    "product_route",
    "lot_history",
    "equipment_event",
    "plan_production",
)
_BLOCKING = frozenset({"HOLD", "SCRAP"})


def day_end(day: date, tz: str = "Asia/Seoul", day_start_hour: int = 0) -> datetime:
    """T: the end of production day `day`, in UTC."""
    end = datetime.combine(
        day + timedelta(days=1), time(day_start_hour), tzinfo=ZoneInfo(tz)
    )
    return end.astimezone(UTC)


def instant(value: str | datetime) -> datetime:
    """A stored timestamp (UTC text or aware datetime) as an aware UTC datetime."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        raise ValueError(f"naive timestamp {value!r}")
    return value.astimezone(UTC)


# --- truth --------------------------------------------------------------------


def truth_marts(
    day: date,
    rows_at_t: Tables,
    *,
    tz: str = "Asia/Seoul",
    day_start_hour: int = 0,
    exclude_keys: Iterable[tuple[str, int]] = frozenset(),
    threshold_pct: float = 20.0,
    tenant_id: str = "demo",
) -> dict[str, list[Row]]:
    """The six daily marts of `day` over the source as it stood at T (its end)."""
    source = source_from_rows(rows_at_t, exclude_keys)
    return marts_of(
        source,
        day,
        tz,
        day_start_hour,
        threshold_pct=threshold_pct,
        tenant_id=tenant_id,
    )


# --- versions -----------------------------------------------------------------


@dataclass(frozen=True)
class Version:
    """One captured content of a row; `row` None: the row was deleted."""

    valid_from: datetime
    row: Row | None
    seen: int
    """Order of discovery: breaks ties between equal `valid_from`."""

    @property
    def counts(self) -> bool:
        """A deleted row, or a lot visit that breaks an MES invariant (the spec:
        such a row is quarantined and counts in no mart), is absent while this
        version is the row's current one."""
        return self.row is not None and not breaks_invariants(self.row)


def breaks_invariants(row: Row) -> bool:
    """The spec's lot_history invariants, read from the row alone:
    arrived <= track-in <= track-out, qty_out <= qty_in, and a track-out exactly
    on DONE and SCRAP visits. Rows of other tables never break them."""
    if "lot_id" not in row or "step_seq" not in row or "qty_in" not in row:
        return False
    arrived, track_in, track_out = (
        None if row[name] is None else instant(row[name])
        for name in ("arrived_at", "track_in_at", "track_out_at")
    )
    if track_in is not None and arrived is not None and arrived > track_in:
        return True
    if track_out is not None and (track_in is None or track_in > track_out):
        return True
    if row["qty_out"] is not None and row["qty_out"] > row["qty_in"]:
        return True
    return (row["status"] in ("DONE", "SCRAP")) != (track_out is not None)


@dataclass(frozen=True)
class RowAtT:
    """The row a mart sees at T and whether its state is known at T."""

    row: Row
    known: bool
    """False: no version was valid at T; `row` is the earliest one seen, whose
    facts (timestamps) count but whose state (status) did not hold at T."""


def table_versions(captures: Sequence[Capture], table: str) -> dict[Key, list[Version]]:
    """Every version of every row of `table` the captures saw, per primary key.

    A new version starts when a key's content differs from the last one seen
    (valid from the cursor, or from the capture instant without a cursor), when
    a key disappears (a deletion, valid from that capture's instant) and when it
    re-appears (valid from its cursor if that is after the deletion, else from
    the capture that shows it again). A capture without `table` did not read it.
    """
    key_columns, cursor = PRIMARY_KEYS[table], CURSORS.get(table)
    versions: dict[Key, list[Version]] = defaultdict(list)
    last: dict[Key, Row | None] = {}
    order = itertools.count()
    present: set[Key] = set()
    previous: datetime | None = None
    for captured_at, tables in sorted(captures, key=lambda c: instant(c[0])):
        if table not in tables:
            continue
        captured_at = instant(captured_at)
        # A change no timestamp dates happened after the previous capture (which
        # still saw the old state) and by this one: it is taken to begin just
        # after the previous capture.
        since = captured_at if previous is None else previous + _TICK
        now: dict[Key, Row] = {}
        for row in tables[table]:
            now[tuple(row[c] for c in key_columns)] = dict(row)
        for key, row in now.items():
            if key in present and last[key] == row:
                continue
            valid_from = since if cursor is None else instant(row[cursor])
            deletion = versions[key][-1] if key in last and last[key] is None else None
            if deletion is not None and valid_from <= deletion.valid_from:
                valid_from = captured_at
            versions[key].append(Version(valid_from, row, next(order)))
            last[key] = row
        for key in present - now.keys():
            versions[key].append(Version(since, None, next(order)))
            last[key] = None
        present = set(now)
        previous = captured_at
    return dict(versions)


def row_at(versions: Sequence[Version], at: datetime) -> RowAtT | None:
    """The version of one row valid at `at` (None: the row did not exist then)."""
    ordered = sorted(versions, key=lambda v: (v.valid_from, v.seen))
    valid = [v for v in ordered if v.valid_from <= at]
    if valid:
        current = valid[-1]
        return RowAtT(current.row, known=True) if current.counts else None  # type: ignore[arg-type]
    earliest = ordered[0] if ordered else None
    if earliest is None or not earliest.counts:
        return None
    return RowAtT(earliest.row, known=False)  # type: ignore[arg-type]


def rows_at(captures: Sequence[Capture], table: str, at: datetime) -> list[RowAtT]:
    """`table` as a pipeline that made `captures` knows it at `at`."""
    found = (row_at(v, at) for v in table_versions(captures, table).values())
    return [row for row in found if row is not None]


def _plan_lines(captures: Sequence[Capture], at: datetime) -> list[Row]:
    """Every plan line ever captured whose run was created at or before `at`.

    A plan run is never changed after it is written and raw keeps it whole, so
    its lines count whether or not the source still shows them.
    """
    lines: dict[Key, Row] = {}
    key_columns = PRIMARY_KEYS["plan_production"]
    for _, tables in sorted(captures, key=lambda c: instant(c[0])):
        for row in tables.get("plan_production", []):
            lines.setdefault(tuple(row[c] for c in key_columns), dict(row))
    return [line for line in lines.values() if instant(line["created_at"]) <= at]


# --- perceived ------------------------------------------------------------------


def perceived_tables(
    captures: Sequence[Capture],
    at: datetime,
    exclude_keys: Iterable[tuple[str, int]] = frozenset(),
) -> tuple[dict[str, list[Row]], frozenset[str]]:
    """The daily marts' tables as known at `at`, and the lots blocked then.

    A lot is blocked when one of its (not excluded) visits has a version valid
    at `at` with status HOLD or SCRAP.
    """
    excluded = set(exclude_keys)
    tables: dict[str, list[Row]] = {}
    blocked: set[str] = set()
    for table in _DAILY_TABLES:
        if table == "plan_production":
            tables[table] = _plan_lines(captures, at)
            continue
        found = rows_at(captures, table, at)
        if table == "lot_history":
            found = [
                r for r in found if (r.row["lot_id"], r.row["step_seq"]) not in excluded
            ]
            blocked.update(
                r.row["lot_id"]
                for r in found
                if r.known and r.row["status"] in _BLOCKING
            )
        tables[table] = [r.row for r in found]
    return tables, frozenset(blocked)


def perceived_marts(
    day: date,
    captures: Sequence[Capture],
    *,
    tz: str = "Asia/Seoul",
    day_start_hour: int = 0,
    exclude_keys: Iterable[tuple[str, int]] = frozenset(),
    threshold_pct: float = 20.0,
    tenant_id: str = "demo",
) -> dict[str, list[Row]]:
    """The six daily marts of `day` as a pipeline that made `captures` can
    build them as of T, the end of the day."""
    at = day_end(day, tz, day_start_hour)
    tables, blocked = perceived_tables(captures, at, exclude_keys)
    source = source_from_rows(tables, blocked_lots=blocked)
    return marts_of(
        source,
        day,
        tz,
        day_start_hour,
        threshold_pct=threshold_pct,
        tenant_id=tenant_id,
    )


# --- comparing ------------------------------------------------------------------


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def mart_differences(
    got: Mapping[str, list[Row]], want: Mapping[str, list[Row]]
) -> list[str]:
    """What differs between two sets of marts (floats to 1e-9: sums of the same
    hours in another order differ in the last bit); empty when they agree."""
    out = []
    for mart in sorted(set(got) | set(want)):
        a, b = got.get(mart, []), want.get(mart, [])
        if len(a) != len(b):
            out.append(f"{mart}: {len(a)} rows != {len(b)}")
            continue
        for x, y in zip(a, b, strict=True):
            if x.keys() != y.keys() or not all(_same(x[k], y[k]) for k in y):
                out.append(f"{mart}: {x} != {y}")
    return out
