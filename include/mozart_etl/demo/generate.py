"""Deterministic MES source of the `demo` tenant, written to a SQLite file.

The same seed and scale give identical rows, so marts built from the file can be
checked against figures computed straight from it (`tests/e2e/oracle.py`).
Only the standard library is used: the generator must run anywhere the
extractor's tests do, and at scale (1M+ `lot_history` rows) it streams.

The plant is simulated once, up to HISTORY_END_UTC, and the file shows it *as
the MES showed it at an instant* `as_of` (HISTORY_END_UTC by default): like a
real MES it keeps only each row's latest state, so a visit running at `as_of`
has no track-out yet, an open event no end, a lot held then released shows
HOLD only while held, and an equipment event deleted as an MES correction is
gone once deleted. One rule decides what is visible: a change made at instant
`t` (the row's `updated_at`, or `measured_at` / `created_at`) shows at `as_of`
iff `t <= as_of`. The simulation never depends on `as_of`: every instant shows
the same lots and events. `DemoTimeline` gives the same rows in memory, with
every instant where something changes, for tests.

SQLite storage conventions, which the extractor relies on:

- timestamps are TEXT in UTC, `%Y-%m-%d %H:%M:%S.%f+00:00` with 6 fractional
  digits (whole seconds); NULL where the visit has not reached that point;
- numeric(p, s) is TEXT with exactly `s` decimals; int, bigint and bool are
  INTEGER (bool as 0/1); a date is TEXT `YYYY-MM-DD`.

`process_result` has one row per tracked-out visit (DONE and SCRAP). Exactly
three `lot_history` rows break an invariant on purpose (see `_BadRowInjector`),
from their track-out on; `SourceSummary.bad_lot_history_keys` names those
visible at `as_of`.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import random
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from time import perf_counter
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from mozart_etl.demo import master_data

log = logging.getLogger(__name__)

TENANT_TZ = "Asia/Seoul"
DEMO_DAY = date(2026, 11, 19)
"""The last production day of the history."""
HISTORY_END_UTC = datetime.combine(
    DEMO_DAY + timedelta(days=1), time(0), tzinfo=ZoneInfo(TENANT_TZ)
).astimezone(UTC)
"""The instant the source is "now": every timestamp in it is strictly earlier."""

LOTS_PER_DAY = 30
"""Lots started per production day at scale 1.0."""
HOLD_RATE = 0.05
"""Lots put on HOLD and never released (within the history)."""
SCRAP_RATE = 0.03
HOLD_RELEASE_RATE = 0.08
"""Lots put on HOLD at one step and released some hours later."""
HOLD_RELEASE_HOURS = (2, 12)
EVENT_DELETE_RATE = 0.02
"""Equipment events recorded by mistake and deleted later (MES corrections)."""
EVENT_DELETE_HOURS = (1, 12)
"""Hours between an event's start and its deletion."""
CHUNK_ROWS = 20_000
"""Rows buffered per `executemany`: keeps memory flat at any scale."""

_HOUR = 3600
_DAY = 86_400
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

# step_id, equipment_group, equipment id prefix, machines, inactive machine numbers
_GROUP_LAYOUT: tuple[tuple[str, str, str, int, tuple[int, ...]], ...] = (
    ("CLEAN", "GRP-CLEAN", "CLN", 2, ()),
    ("DEPO", "GRP-DEPO", "DEP", 3, (3,)),
    ("PHOTO", "GRP-PHOTO", "PHO", 4, (4,)),
    ("ETCH", "GRP-ETCH", "ETC", 3, ()),
    ("CMP", "GRP-CMP", "CMP", 2, ()),
)
_MACHINE_WEIGHTS = (1.6, 1.0, 0.9, 0.7)
"""Share of a group's lots per machine number: uneven so line balance flags some."""
_BASE_PROCESS_MINUTES = {"CLEAN": 25, "DEPO": 70, "PHOTO": 50, "ETCH": 40, "CMP": 60}
_ROUTES = {
    "PRD-A": "CLEAN DEPO PHOTO ETCH CLEAN DEPO CMP PHOTO ETCH",
    "PRD-B": "CLEAN PHOTO ETCH DEPO CMP CLEAN PHOTO",
    "PRD-C": "CLEAN DEPO PHOTO ETCH CLEAN DEPO",
    "PRD-D": "DEPO PHOTO ETCH CLEAN DEPO PHOTO ETCH CLEAN",
}
"""step_ids per product in step_seq order (10, 20, ...): they repeat, as in a fab."""
_PRODUCT_MIX = {"PRD-A": 0.35, "PRD-B": 0.25, "PRD-C": 0.2, "PRD-D": 0.2}
_UNPLANNED_STEP = "CLEAN"
"""Never planned: gives product/steps with actuals but no plan line."""
_PLAN_ONLY = ("PRD-C", "CMP")
"""Planned although PRD-C's route has no CMP: a plan line without actuals."""

_EVENT_WEIGHTS = {"RUN": 0.55, "IDLE": 0.3, "DOWN": 0.1, "PM": 0.05}
_EVENT_MINUTES = {
    "RUN": (60, 360),
    "IDLE": (10, 120),
    "DOWN": (20, 180),
    "PM": (60, 240),
}
_DEFECT_CODES = ("D01-PARTICLE", "D02-SCRATCH", "D03-THICKNESS", "D04-CD")
_DEFECT_REMARKS = ("재작업 필요", "표면 스크래치", "파티클 검출", "막 두께 편차")

_DDL = {
    "equipment": """CREATE TABLE equipment (
        equipment_id TEXT NOT NULL PRIMARY KEY, equipment_group TEXT NOT NULL,
        step_id TEXT NOT NULL, capacity_per_hour TEXT, active INTEGER NOT NULL)""",
    "product_route": """CREATE TABLE product_route (
        product_id TEXT NOT NULL, step_seq INTEGER NOT NULL, step_id TEXT NOT NULL,
        std_process_minutes TEXT, PRIMARY KEY (product_id, step_seq))""",
    "lot_history": """CREATE TABLE lot_history (
        lot_id TEXT NOT NULL, step_seq INTEGER NOT NULL, product_id TEXT NOT NULL,
        step_id TEXT NOT NULL, equipment_id TEXT, qty_in INTEGER NOT NULL,
        qty_out INTEGER, status TEXT NOT NULL, arrived_at TEXT NOT NULL,
        track_in_at TEXT, track_out_at TEXT, updated_at TEXT NOT NULL,
        PRIMARY KEY (lot_id, step_seq))""",
    "equipment_event": """CREATE TABLE equipment_event (
        event_id INTEGER NOT NULL PRIMARY KEY, equipment_id TEXT NOT NULL,
        event_type TEXT NOT NULL, started_at TEXT NOT NULL, ended_at TEXT,
        updated_at TEXT NOT NULL)""",
    "process_result": """CREATE TABLE process_result (
        result_id INTEGER NOT NULL PRIMARY KEY, lot_id TEXT NOT NULL,
        step_id TEXT NOT NULL, equipment_id TEXT, measured_at TEXT NOT NULL,
        good_qty INTEGER, defect_qty INTEGER, defect_code TEXT, remark TEXT)""",
    "plan_production": """CREATE TABLE plan_production (
        plan_run_id TEXT NOT NULL, line_no INTEGER NOT NULL, plan_date TEXT NOT NULL,
        product_id TEXT NOT NULL, step_id TEXT NOT NULL, equipment_id TEXT,
        planned_qty INTEGER NOT NULL, planned_start TEXT, planned_end TEXT,
        created_at TEXT NOT NULL, PRIMARY KEY (plan_run_id, line_no))""",
}
_DDL.update(master_data.DDL)  # APS master data: items, BOM, demand


class SourceSummary(BaseModel):
    """What `generate_demo_source` wrote, for logs and for tests."""

    path: str
    rows: dict[str, int]
    """Rows per table at `as_of`."""
    bad_lot_history_keys: list[tuple[str, int]]
    """(lot_id, step_seq) of the rows that break a `lot_history` invariant at
    `as_of` (a planted break shows from the visit's track-out on)."""
    as_of: datetime = HISTORY_END_UTC
    """The instant the file shows the MES as of."""


@dataclass(frozen=True, slots=True)
class _Equipment:
    equipment_id: str
    group: str
    step_id: str
    capacity_per_hour: str
    active: bool
    weight: float


@dataclass(frozen=True, slots=True)
class _RouteStep:
    product_id: str
    step_seq: int
    step_id: str
    std_minutes: str


@dataclass(slots=True)
class _Visit:
    step: _RouteStep
    qty_in: int
    arrived: int
    equipment_id: str | None = None
    track_in: int | None = None
    track_out: int | None = None
    qty_out: int | None = None
    status: str = "WAIT"
    """The visit's status at the end of the history."""
    hold_at: int | None = None
    """When the visit was put on HOLD (a never-released hold: at its arrival,
    or at its track-in if it was tracked in)."""
    release_at: int | None = None
    """When the HOLD was released (None: still held at the end, or never held)."""
    bad: str | None = None
    """The invariant its track-out version breaks on purpose (`_BadRowInjector`)."""

    @property
    def updated(self) -> int:
        """The instant of the visit's last change within the history."""
        return max(
            t
            for t in (
                self.arrived,
                self.track_in,
                self.track_out,
                self.hold_at,
                self.release_at,
            )
            if t is not None
        )


# --- time -------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _day_text(epoch_day: int) -> str:
    return date.fromordinal(_EPOCH_ORDINAL + epoch_day).isoformat() + " "


@lru_cache(maxsize=1)
def _time_of_day_texts() -> tuple[str, ...]:
    return tuple(
        f"{s // _HOUR:02d}:{s // 60 % 60:02d}:{s % 60:02d}.000000+00:00"
        for s in range(_DAY)
    )


def _ts(seconds: int) -> str:
    """Epoch seconds as the source's UTC text (table look-ups: 1M+ rows per run)."""
    epoch_day, second_of_day = divmod(seconds, _DAY)
    return _day_text(epoch_day) + _time_of_day_texts()[second_of_day]


def _ts_or_null(seconds: int | None) -> str | None:
    return None if seconds is None else _ts(seconds)


def _local_day_bounds(day: date) -> tuple[int, int]:
    """Production day `day` (a TENANT_TZ calendar day) as epoch seconds [start, end)."""
    zone = ZoneInfo(TENANT_TZ)
    start = datetime.combine(day, time(0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return int(start.timestamp()), int(end.timestamp())


# --- master data ------------------------------------------------------------


def _make_equipment(rng: random.Random) -> list[_Equipment]:
    equipment = []
    for step_id, group, prefix, machines, inactive in _GROUP_LAYOUT:
        for number in range(1, machines + 1):
            capacity = rng.randint(40, 120) / 4
            equipment.append(
                _Equipment(
                    equipment_id=f"{prefix}-{number:02d}",
                    group=group,
                    step_id=step_id,
                    capacity_per_hour=f"{capacity:.2f}",
                    active=number not in inactive,
                    weight=_MACHINE_WEIGHTS[number - 1],
                )
            )
    return equipment


def _make_routes(rng: random.Random) -> dict[str, list[_RouteStep]]:
    routes: dict[str, list[_RouteStep]] = {}
    for product_id, step_ids in _ROUTES.items():
        routes[product_id] = [
            _RouteStep(
                product_id=product_id,
                step_seq=10 * (index + 1),
                step_id=step_id,
                std_minutes=_std_minutes_text(rng, step_id),
            )
            for index, step_id in enumerate(step_ids.split())
        ]
    return routes


def _std_minutes_text(rng: random.Random, step_id: str) -> str:
    base = _BASE_PROCESS_MINUTES[step_id]
    quarters = rng.randint(base * 4 * 8 // 10, base * 4 * 12 // 10)
    return f"{quarters / 4:.2f}"


def _equipment_row(eq: _Equipment) -> tuple[object, ...]:
    return (eq.equipment_id, eq.group, eq.step_id, eq.capacity_per_hour, int(eq.active))


def _route_row(step: _RouteStep) -> tuple[object, ...]:
    return (step.product_id, step.step_seq, step.step_id, step.std_minutes)


# --- equipment events -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Event:
    """An equipment event over the whole history; `ended`/`deleted` None: never."""

    event_id: int
    equipment_id: str
    kind: str
    began: int
    ended: int | None
    deleted: int | None = None


def _equipment_events(
    rng: random.Random, equipment: Sequence[_Equipment], start: int, end: int
) -> list[_Event]:
    """RUN/IDLE/DOWN/PM intervals tiling each machine's time; the last one is open.

    An inactive machine ends on an open DOWN early in the history.
    """
    events: list[tuple[int, str, str, int | None]] = []
    for eq in equipment:
        stop = end if eq.active else start + rng.randint(2, 20) * _HOUR
        events.extend(_machine_events(rng, eq, start - rng.randint(1, 6) * _HOUR, stop))
    events.sort(key=lambda event: (event[0], event[1]))
    return [
        _Event(1_000_001 + index, eq_id, kind, began, ended)
        for index, (began, eq_id, kind, ended) in enumerate(events)
    ]


def _delete_some_events(
    rng: random.Random, events: Sequence[_Event], end: int
) -> list[_Event]:
    """MES corrections: a few events are deleted some hours after they began.

    `rng` is a stream of its own, so every other table is the same with or
    without deletions; a deletion due at or after `end` never happened.
    """
    low, high = EVENT_DELETE_HOURS
    out = []
    for event in events:
        if rng.random() < EVENT_DELETE_RATE:
            deleted = event.began + rng.randint(low * _HOUR, high * _HOUR)
            if deleted < end:
                event = replace(event, deleted=deleted)
        out.append(event)
    return out


def _event_row_as_of(event: _Event, cut: int) -> tuple[object, ...] | None:
    """The event as the MES showed it at `cut`: absent before its start and from
    its deletion on; open (`ended_at` null, `updated_at` = start) until it ends."""
    if event.began > cut or (event.deleted is not None and event.deleted <= cut):
        return None
    ended = event.ended if event.ended is not None and event.ended <= cut else None
    return (
        event.event_id,
        event.equipment_id,
        event.kind,
        _ts(event.began),
        _ts_or_null(ended),
        _ts(event.began if ended is None else ended),
    )


def _machine_events(
    rng: random.Random, eq: _Equipment, began: int, stop: int
) -> list[tuple[int, str, str, int | None]]:
    events: list[tuple[int, str, str, int | None]] = []
    kind = ""
    while True:
        kind = _next_event_kind(rng, kind)
        low, high = _EVENT_MINUTES[kind]
        ended = began + rng.randint(low, high) * 60
        if ended >= stop:
            break
        events.append((began, eq.equipment_id, kind, ended))
        began = ended
    if not eq.active:
        kind = "DOWN"
    if events and events[-1][2] == kind:
        began = events.pop()[0]
    events.append((began, eq.equipment_id, kind, None))
    return events


def _next_event_kind(rng: random.Random, previous: str) -> str:
    kinds = [kind for kind in _EVENT_WEIGHTS if kind != previous]
    return rng.choices(kinds, weights=[_EVENT_WEIGHTS[kind] for kind in kinds])[0]


# --- lots -------------------------------------------------------------------


class _LotSimulator:
    """Moves lots along their routes up to the end of the history.

    `release_rate` is the share of lots held at one step and released some hours
    later; at 0 (the default) the simulator draws exactly what it always drew,
    so callers that do not ask for releases get the same lots as before.
    """

    def __init__(
        self,
        rng: random.Random,
        routes: dict[str, list[_RouteStep]],
        equipment: Sequence[_Equipment],
        end: int,
        release_rate: float = 0.0,
    ) -> None:
        self.rng = rng
        self.routes = routes
        self.end = end
        self.release_rate = release_rate
        self.pools: dict[str, tuple[list[str], list[float]]] = {}
        for step_id, *_ in _GROUP_LAYOUT:
            active = [eq for eq in equipment if eq.step_id == step_id and eq.active]
            self.pools[step_id] = (
                [eq.equipment_id for eq in active],
                _cumulative([eq.weight for eq in active]),
            )

    def lot(self, product_id: str, arrived: int, qty: int) -> list[_Visit]:
        """The lot's visits as of the end of the history; HOLD and SCRAP stop it."""
        rng, route = self.rng, self.routes[product_id]
        fate = rng.random()
        hold_step = rng.randrange(len(route)) if fate < HOLD_RATE else -1
        scrap_step = (
            rng.randrange(len(route)) if 0 <= fate - HOLD_RATE < SCRAP_RATE else -1
        )
        release_step = (
            rng.randrange(len(route))
            if 0 <= fate - HOLD_RATE - SCRAP_RATE < self.release_rate
            else -1
        )
        visits: list[_Visit] = []
        for index, step in enumerate(route):
            if arrived >= self.end:
                break
            visit = _Visit(step=step, qty_in=qty, arrived=arrived)
            visits.append(visit)
            track_in = arrived + self._queue_seconds()
            track_out = track_in + self._process_seconds(step)
            if index == hold_step:
                self._hold(visit, track_in)
                break
            if index == release_step:
                track_in, track_out = self._hold_and_release(visit, track_in, track_out)
            if not self._run(visit, track_in, track_out):
                if visit.hold_at is not None and visit.release_at is None:
                    visit.status = "HOLD"
                break
            if index == scrap_step:
                visit.status, visit.qty_out = "SCRAP", 0
                break
            visit.status, visit.qty_out = "DONE", qty - self._loss()
            qty, arrived = visit.qty_out, track_out
        return visits

    def _run(self, visit: _Visit, track_in: int, track_out: int) -> bool:
        """Tracks in and out what the history reaches; False if the lot stays."""
        if track_in >= self.end:
            return False
        visit.status, visit.track_in = "RUN", track_in
        visit.equipment_id = self._pick_equipment(visit.step.step_id)
        if track_out >= self.end:
            return False
        visit.track_out = track_out
        return True

    def _hold(self, visit: _Visit, track_in: int) -> None:
        """Held for good: on arrival, or at track-in (half the lots tracked in)."""
        visit.status, visit.hold_at = "HOLD", visit.arrived
        if track_in < self.end and self.rng.random() < 0.5:
            visit.track_in = visit.hold_at = track_in
            visit.equipment_id = self._pick_equipment(visit.step.step_id)

    def _hold_and_release(
        self, visit: _Visit, track_in: int, track_out: int
    ) -> tuple[int, int]:
        """Held while queued or while processing, released hours later: the queue
        or the processing lasts that much longer. Returns the shifted track-in
        and track-out; the hold and release are recorded if the history reaches
        them."""
        rng = self.rng
        low, high = HOLD_RELEASE_HOURS
        held_for = rng.randint(low * _HOUR, high * _HOUR)
        if rng.random() < 0.5:  # queues last at least 5 minutes
            held = rng.randint(visit.arrived + 60, track_in - 60)
            track_in += held_for
        else:
            held = rng.randint(track_in + 60, track_out - 60)
        if held < self.end:
            visit.hold_at = held
            if held + held_for < self.end:
                visit.release_at = held + held_for
        return track_in, track_out + held_for

    def _pick_equipment(self, step_id: str) -> str:
        ids, cum_weights = self.pools[step_id]
        return self.rng.choices(ids, cum_weights=cum_weights)[0]

    def _queue_seconds(self) -> int:
        if self.rng.random() < 0.1:
            return self.rng.randint(3 * _HOUR, 10 * _HOUR)
        return self.rng.randint(5 * 60, 3 * _HOUR)

    def _process_seconds(self, step: _RouteStep) -> int:
        return int(float(step.std_minutes) * 60 * self.rng.uniform(0.85, 1.35))

    def _loss(self) -> int:
        draw = self.rng.random()
        return 0 if draw < 0.85 else 1 if draw < 0.95 else 2


def _cumulative(weights: Sequence[float]) -> list[float]:
    total, out = 0.0, []
    for weight in weights:
        total += weight
        out.append(total)
    return out


def _process_result(
    rng: random.Random, result_id: int, lot_id: str, visit: _Visit
) -> tuple[object, ...]:
    """The measurement at track-out: good + defect = qty_in; Korean remarks."""
    assert visit.track_out is not None and visit.qty_out is not None
    defect = visit.qty_in - visit.qty_out
    code: str | None
    remark: str | None
    if visit.status == "SCRAP":
        code, remark = rng.choice(_DEFECT_CODES), "폐기 처리"
    elif defect:
        code, remark = rng.choice(_DEFECT_CODES), rng.choice(_DEFECT_REMARKS)
    else:
        code, remark = None, "정상" if rng.random() < 0.3 else None
    return (
        result_id,
        lot_id,
        visit.step.step_id,
        visit.equipment_id,
        _ts(visit.track_out),
        visit.qty_out,
        defect,
        code,
        remark,
    )


# --- a visit's versions -----------------------------------------------------

_State = tuple[int, str, str | None, int | None, int | None, int | None]
"""(valid from = updated_at, status, equipment_id, track_in, track_out, qty_out)."""

_ARRIVE, _TRACK_IN, _HOLD, _RELEASE, _TRACK_OUT = range(5)
"""Change kinds, in the order they apply when several happen at one instant."""


def _visit_states(visit: _Visit) -> list[_State]:
    """The visit's successive states as the MES recorded them, oldest first.

    Each state is valid from the instant of its change (the row's `updated_at`);
    changes at one instant make one state. A planted break shows in the
    track-out state, valid from the broken row's latest timestamp.
    """
    changes = [(visit.arrived, _ARRIVE)]
    for at, kind in (
        (visit.track_in, _TRACK_IN),
        (visit.hold_at, _HOLD),
        (visit.release_at, _RELEASE),
        (visit.track_out, _TRACK_OUT),
    ):
        if at is not None:
            changes.append((at, kind))
    changes.sort()
    status, equipment_id = "WAIT", None
    track_in = track_out = qty_out = None
    states: list[_State] = []
    for at, kind in changes:
        if kind == _TRACK_IN:
            status, track_in, equipment_id = "RUN", visit.track_in, visit.equipment_id
        elif kind == _HOLD:
            status = "HOLD"
        elif kind == _RELEASE:
            status = "WAIT" if track_in is None else "RUN"
        elif kind == _TRACK_OUT:
            status, track_out, qty_out = visit.status, visit.track_out, visit.qty_out
        state = (at, status, equipment_id, track_in, track_out, qty_out)
        if states and states[-1][0] == at:
            states[-1] = state
        else:
            states.append(state)
    if visit.bad is not None:
        states[-1] = _broken(visit, states[-1])
    return states


def _broken(visit: _Visit, state: _State) -> _State:
    at, status, equipment_id, track_in, track_out, qty_out = state
    assert track_in is not None and track_out is not None
    if visit.bad == "qty_out_gt_qty_in":
        qty_out = visit.qty_in + 3
    elif visit.bad == "track_in_before_arrival":
        track_in = visit.arrived - 10 * 60
    else:  # track_out_before_in: the row's updated_at is its (late) track-in
        at = track_in = track_out + 15 * 60
    return at, status, equipment_id, track_in, track_out, qty_out


def _state_at(states: Sequence[_State], cut: int) -> _State | None:
    """The state valid at `cut` (None: the visit had not arrived)."""
    found = None
    for state in states:
        if state[0] > cut:
            break
        found = state
    return found


def _lot_history_row(lot_id: str, visit: _Visit, state: _State) -> tuple[object, ...]:
    updated, status, equipment_id, track_in, track_out, qty_out = state
    return (
        lot_id,
        visit.step.step_seq,
        visit.step.product_id,
        visit.step.step_id,
        equipment_id,
        visit.qty_in,
        qty_out,
        status,
        _ts(visit.arrived),
        _ts_or_null(track_in),
        _ts_or_null(track_out),
        _ts(updated),
    )


class _BadRowInjector:
    """Breaks one invariant in each of 3 DONE visits tracked out on DEMO_DAY.

    The visits belong to otherwise normal lots (never held nor scrapped), so
    validation must quarantine exactly them and the marts must not see them.
    The break shows from the visit's track-out on (`_broken`).
    """

    _BREAKS = ("qty_out_gt_qty_in", "track_in_before_arrival", "track_out_before_in")

    def __init__(self, day_start: int, day_end: int, end: int) -> None:
        self.day_start, self.day_end, self.end = day_start, day_end, end
        self.pending = list(self._BREAKS)
        self.planted: list[tuple[tuple[str, int], int]] = []
        """Each broken row's (lot_id, step_seq) and the instant its break shows."""

    def visit(self, lot_id: str, visits: Sequence[_Visit]) -> None:
        if not self.pending or any(
            v.status == "SCRAP" or v.hold_at is not None for v in visits
        ):
            return
        for visit in visits:
            if self._eligible(visit):
                visit.bad = self.pending.pop(0)
                shows = _visit_states(visit)[-1][0]
                self.planted.append(((lot_id, visit.step.step_seq), shows))
                return

    def _eligible(self, visit: _Visit) -> bool:
        out = visit.track_out
        return (
            visit.status == "DONE"
            and out is not None
            and self.day_start <= out < self.day_end
            and out + 15 * 60 < self.end
        )

    def keys_as_of(self, cut: int) -> list[tuple[str, int]]:
        return [key for key, shows in self.planted if shows <= cut]


# --- plans ------------------------------------------------------------------


def _plan_rows(
    rng: random.Random,
    days: Sequence[date],
    routes: dict[str, list[_RouteStep]],
    equipment: Sequence[_Equipment],
    scale: float,
) -> list[tuple[int, tuple[object, ...]]]:
    """One or two plan runs per day; DEMO_DAY always has 2, the later one re-planned.

    Each line comes with its run's `created_at` instant: it exists from then on.
    """
    pools = {
        step_id: [
            eq.equipment_id for eq in equipment if eq.step_id == step_id and eq.active
        ]
        for step_id, *_ in _GROUP_LAYOUT
    }
    targets = _plan_targets(routes, scale)
    rows: list[tuple[int, tuple[object, ...]]] = []
    for day in days:
        day_start, _ = _local_day_bounds(day)
        runs = 2 if day == DEMO_DAY or rng.random() < 0.5 else 1
        first_run: dict[tuple[str, str], int] = {}
        for run_no in range(1, runs + 1):
            # the first run the evening before, a re-plan early on the day itself
            created = day_start + (
                -6 * _HOUR + rng.randint(0, 180) * 60
                if run_no == 1
                else 6 * _HOUR + rng.randint(0, 60) * 60
            )
            lines: list[tuple[str, str, str, int]] = []
            for (product_id, step_id), expected in targets.items():
                qty = max(1, round(expected * rng.uniform(0.8, 1.2)))
                if first_run.get((product_id, step_id)) == qty:
                    qty += 1  # a re-plan always changes the quantity
                first_run.setdefault((product_id, step_id), qty)
                lines.extend(_split_plan_line(rng, product_id, step_id, qty, pools))
            run_id = f"PR-{day:%Y%m%d}-{run_no}"
            rows.extend(
                (
                    created,
                    _plan_row(rng, run_id, line_no, day, day_start, line, created),
                )
                for line_no, line in enumerate(lines, 1)
            )
    return rows


def _plan_row(
    rng: random.Random,
    run_id: str,
    line_no: int,
    day: date,
    day_start: int,
    line: tuple[str, str, str, int],
    created: int,
) -> tuple[object, ...]:
    """A plan line whose planned window lies inside its day."""
    product_id, step_id, equipment_id, qty = line
    planned_start = day_start + rng.randint(0, 8) * _HOUR
    planned_end = planned_start + rng.randint(8, 14) * _HOUR
    return (
        run_id,
        line_no,
        day.isoformat(),
        product_id,
        step_id,
        equipment_id,
        qty,
        _ts(planned_start),
        _ts(planned_end),
        _ts(created),
    )


def _plan_targets(
    routes: dict[str, list[_RouteStep]], scale: float
) -> dict[tuple[str, str], float]:
    """Expected daily output per planned product/step: near the actuals on purpose."""
    targets: dict[tuple[str, str], float] = {}
    for product_id, route in routes.items():
        lots = LOTS_PER_DAY * scale * _PRODUCT_MIX[product_id]
        for step in route:
            if step.step_id != _UNPLANNED_STEP:
                key = (product_id, step.step_id)
                targets[key] = targets.get(key, 0.0) + lots * 22.5
    targets[_PLAN_ONLY] = 40 * scale
    return targets


def _split_plan_line(
    rng: random.Random,
    product_id: str,
    step_id: str,
    qty: int,
    pools: dict[str, list[str]],
) -> list[tuple[str, str, str, int]]:
    pool = pools[step_id]
    if len(pool) >= 2 and qty >= 2 and rng.random() < 0.4:
        first, second = rng.sample(pool, 2)
        part = max(1, min(qty - 1, round(qty * rng.uniform(0.4, 0.6))))
        return [
            (product_id, step_id, first, part),
            (product_id, step_id, second, qty - part),
        ]
    return [(product_id, step_id, rng.choice(pool), qty)]


# --- the history, simulated once ---------------------------------------------


@dataclass(frozen=True)
class _Plant:
    """Everything but the lots: small at any scale, so held in memory.

    One RNG stream per part keeps master data, events and plans identical at
    every scale, and deletions and demand changes out of every other table.
    """

    seed: int
    scale: float
    days: list[date]
    start: int
    end: int
    equipment: list[_Equipment]
    routes: dict[str, list[_RouteStep]]
    events: list[_Event]
    plans: list[tuple[int, tuple[object, ...]]]
    items: list[master_data.ItemRow]
    bom: list[master_data.BomRow]
    demand: list[list[tuple[int, master_data.DemandRow]]]


def _plant(seed: int, scale: float, days: int) -> _Plant:
    if days < 1 or scale <= 0:
        raise ValueError(f"need days >= 1 and scale > 0, got {days=} {scale=}")
    production_days = [DEMO_DAY - timedelta(days=back) for back in range(days)][::-1]
    start, _ = _local_day_bounds(production_days[0])
    end = int(HISTORY_END_UTC.timestamp())
    master_rng = random.Random(f"{seed}:masters")
    equipment = _make_equipment(master_rng)
    routes = _make_routes(master_rng)
    events = _delete_some_events(
        random.Random(f"{seed}:event-deletes"),
        _equipment_events(random.Random(f"{seed}:events"), equipment, start, end),
        end,
    )
    plans = _plan_rows(
        random.Random(f"{seed}:plans"), production_days, routes, equipment, scale
    )
    rng = random.Random(f"{seed}:master-data")
    items = master_data.item_rows(rng, start)
    bom = master_data.bom_rows(rng, DEMO_DAY)
    demand = master_data.demand_versions(
        random.Random(f"{seed}:demand-changes"),
        master_data.demand_rows(rng, DEMO_DAY, start, end),
    )
    return _Plant(
        seed=seed,
        scale=scale,
        days=production_days,
        start=start,
        end=end,
        equipment=equipment,
        routes=routes,
        events=events,
        plans=plans,
        items=items,
        bom=bom,
        demand=demand,
    )


@dataclass(frozen=True, slots=True)
class _Lot:
    lot_id: str
    visits: list[_Visit]
    results: list[tuple[object, ...]]
    """One measurement per tracked-out visit, in visit order."""


def _lots(plant: _Plant, injector: _BadRowInjector) -> Iterator[_Lot]:
    """The lots one by one (streams at any scale); the same whatever `as_of`.

    Raises ValueError once exhausted if the scale left no visit to break.
    """
    rng = random.Random(f"{plant.seed}:lots")
    simulator = _LotSimulator(
        rng, plant.routes, plant.equipment, plant.end, release_rate=HOLD_RELEASE_RATE
    )
    lot_count = max(1, round(LOTS_PER_DAY * len(plant.days) * plant.scale))
    products, weights = list(_PRODUCT_MIX), list(_PRODUCT_MIX.values())
    result_ids = itertools.count(1)
    for number, arrived in enumerate(
        _lot_starts(rng, lot_count, plant.start, plant.end), 1
    ):
        lot_id = f"LOT-{number:07d}"
        product_id = rng.choices(products, weights=weights)[0]
        visits = simulator.lot(product_id, arrived, rng.randint(20, 25))
        results = [
            _process_result(rng, next(result_ids), lot_id, visit)
            for visit in visits
            if visit.track_out is not None
        ]
        injector.visit(lot_id, visits)
        yield _Lot(lot_id, visits, results)
    if injector.pending:
        raise ValueError(
            f"scale {plant.scale} too small: no DONE visit on {DEMO_DAY} left to "
            f"break {injector.pending}"
        )


def _lot_starts(rng: random.Random, count: int, start: int, end: int) -> list[int]:
    return sorted(rng.randrange(start, end) for _ in range(count))


def _injector(plant: _Plant) -> _BadRowInjector:
    return _BadRowInjector(*_local_day_bounds(DEMO_DAY), plant.end)


# --- the source as of an instant ---------------------------------------------


def _lot_rows_as_of(
    lot: _Lot, cut: int
) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """The lot's lot_history and process_result rows as the MES showed them."""
    history: list[tuple[object, ...]] = []
    results: list[tuple[object, ...]] = []
    measured = iter(lot.results)
    for visit in lot.visits:
        if visit.track_out is not None:
            result = next(measured)  # measured at the track-out: exists from then on
            if visit.track_out <= cut:
                results.append(result)
        state = _state_at(_visit_states(visit), cut)
        if state is not None:
            history.append(_lot_history_row(lot.lot_id, visit, state))
    return history, results


def _plant_rows_as_of(plant: _Plant, cut: int) -> dict[str, list[tuple[object, ...]]]:
    """Every table but lot_history and process_result, as of `cut`.

    Equipment, routes, items and BOM are static: the same at every instant.
    """
    events = (_event_row_as_of(event, cut) for event in plant.events)
    demand = (_last_version(versions, cut) for versions in plant.demand)
    return {
        "equipment": [_equipment_row(eq) for eq in plant.equipment],
        "product_route": [
            _route_row(step) for route in plant.routes.values() for step in route
        ],
        "equipment_event": [row for row in events if row is not None],
        "plan_production": [row for created, row in plant.plans if created <= cut],
        "item_master": list(plant.items),
        "bom": list(plant.bom),
        "demand": [row for row in demand if row is not None],
    }


def _last_version(
    versions: Sequence[tuple[int, tuple[object, ...]]], cut: int
) -> tuple[object, ...] | None:
    found = None
    for since, row in versions:
        if since > cut:
            break
        found = row
    return found


def _cut(as_of: datetime | None) -> int:
    if as_of is None:
        return int(HISTORY_END_UTC.timestamp())
    if as_of.tzinfo is None:
        raise ValueError(f"as_of must be timezone-aware, got {as_of!r}")
    return int(as_of.timestamp())


@lru_cache(maxsize=1)
def table_columns() -> dict[str, tuple[str, ...]]:
    """Each source table's column names, in `SELECT *` order (from the DDL)."""
    conn = sqlite3.connect(":memory:")
    try:
        for ddl in _DDL.values():
            conn.execute(ddl)
        return {
            table: tuple(row[1] for row in conn.execute(f"PRAGMA table_info({table})"))
            for table in _DDL
        }
    finally:
        conn.close()


class DemoTimeline:
    """The demo source's whole history in memory, for tests (small scales only).

    `rows_as_of(T)` is exactly what `generate_demo_source(as_of=T)` writes, as
    dicts named like the columns with the stored values (UTC text timestamps);
    `change_instants()` lists every instant where some row changes, so a test
    can capture the source at each of them.
    """

    def __init__(
        self, *, seed: int = 20261119, scale: float = 1.0, days: int = 5
    ) -> None:
        self.seed, self.scale, self.days = seed, scale, days
        self._plant = _plant(seed, scale, days)
        self._injector = _injector(self._plant)
        self._simulated = list(_lots(self._plant, self._injector))

    @property
    def start(self) -> datetime:
        """The start of the first production day of the history."""
        return datetime.fromtimestamp(self._plant.start, UTC)

    def rows_as_of(
        self, as_of: datetime | None = None
    ) -> dict[str, list[dict[str, Any]]]:
        """Every table's rows as the MES showed them at `as_of` (None: the end)."""
        cut = _cut(as_of)
        tables = _plant_rows_as_of(self._plant, cut)
        tables["lot_history"], tables["process_result"] = [], []
        for lot in self._simulated:
            history, results = _lot_rows_as_of(lot, cut)
            tables["lot_history"] += history
            tables["process_result"] += results
        columns = table_columns()
        return {
            table: [
                dict(zip(columns[table], row, strict=True)) for row in tables[table]
            ]
            for table in _DDL
        }

    def bad_lot_history_keys(
        self, as_of: datetime | None = None
    ) -> list[tuple[str, int]]:
        """The planted broken rows whose break shows at `as_of`."""
        return self._injector.keys_as_of(_cut(as_of))

    def planted_bad_keys(self) -> list[tuple[str, int]]:
        """Every planted broken row, whenever its break shows."""
        return [key for key, _ in self._injector.planted]

    def event_deletions(self) -> dict[int, datetime]:
        """event_id -> the instant the MES deleted the event."""
        return {
            event.event_id: datetime.fromtimestamp(event.deleted, UTC)
            for event in self._plant.events
            if event.deleted is not None
        }

    def events(self) -> list[dict[str, object]]:
        """Every event ever recorded, deleted ones too: its whole interval."""
        return [
            {
                "event_id": e.event_id,
                "equipment_id": e.equipment_id,
                "event_type": e.kind,
                "started_at": _ts(e.began),
                "ended_at": _ts_or_null(e.ended),
                "deleted_at": _ts_or_null(e.deleted),
            }
            for e in self._plant.events
        ]

    def change_instants(self) -> list[datetime]:
        """Every instant where some row appears, changes or disappears, sorted."""
        instants: set[int] = set()
        for lot in self._simulated:
            for visit in lot.visits:
                instants.update(state[0] for state in _visit_states(visit))
        for event in self._plant.events:
            instants.update(
                t for t in (event.began, event.ended, event.deleted) if t is not None
            )
        instants.update(created for created, _ in self._plant.plans)
        for versions in self._plant.demand:
            instants.update(since for since, _ in versions)
        return [datetime.fromtimestamp(t, UTC) for t in sorted(instants)]


def rows_as_of(
    as_of: datetime | None = None,
    *,
    seed: int = 20261119,
    scale: float = 1.0,
    days: int = 5,
) -> dict[str, list[dict[str, Any]]]:
    """The demo source as the MES showed it at `as_of`, without writing SQLite."""
    return DemoTimeline(seed=seed, scale=scale, days=days).rows_as_of(as_of)


# --- writing ----------------------------------------------------------------


def _insert(
    conn: sqlite3.Connection, table: str, rows: Iterable[tuple[object, ...]]
) -> int:
    rows = list(rows)
    if rows:
        marks = ", ".join("?" * len(rows[0]))
        conn.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
    return len(rows)


def _write_lots(
    conn: sqlite3.Connection, lots: Iterable[_Lot], cut: int
) -> tuple[int, int]:
    """Streams lot_history and process_result in chunks; returns their row counts."""
    history: list[tuple[object, ...]] = []
    results: list[tuple[object, ...]] = []
    counts = [0, 0]
    for lot in lots:
        lot_history, lot_results = _lot_rows_as_of(lot, cut)
        history += lot_history
        results += lot_results
        if len(history) >= CHUNK_ROWS:
            counts[0] += _insert(conn, "lot_history", history)
            counts[1] += _insert(conn, "process_result", results)
            history, results = [], []
    counts[0] += _insert(conn, "lot_history", history)
    counts[1] += _insert(conn, "process_result", results)
    return counts[0], counts[1]


def generate_demo_source(
    path: Path,
    *,
    seed: int = 20261119,
    scale: float = 1.0,
    days: int = 5,
    as_of: datetime | None = None,
) -> SourceSummary:
    """Write the demo MES source to `path` (replaced atomically) and summarise it.

    `days` production days end at HISTORY_END_UTC; `scale` multiplies the lots.
    The file shows the source as the MES showed it at the instant `as_of`
    (aware; None: HISTORY_END_UTC); the simulated plant is the same whatever
    `as_of`, only what is visible changes.
    """
    cut = _cut(as_of)
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.unlink(missing_ok=True)
    try:
        rows, bad_keys = _write_source(tmp, seed=seed, scale=scale, days=days, cut=cut)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    return SourceSummary(
        path=str(path),
        rows=rows,
        bad_lot_history_keys=bad_keys,
        as_of=HISTORY_END_UTC if as_of is None else as_of.astimezone(UTC),
    )


def _write_source(
    path: Path, *, seed: int, scale: float, days: int, cut: int
) -> tuple[dict[str, int], list[tuple[str, int]]]:
    """Rows per table and the bad lot_history keys visible at `cut`."""
    plant = _plant(seed, scale, days)
    injector = _injector(plant)
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        for ddl in _DDL.values():
            conn.execute(ddl)
        rows = {
            table: _insert(conn, table, values)
            for table, values in _plant_rows_as_of(plant, cut).items()
        }
        rows["lot_history"], rows["process_result"] = _write_lots(
            conn, _lots(plant, injector), cut
        )
        conn.commit()
    finally:
        conn.close()
    return {table: rows[table] for table in _DDL}, injector.keys_as_of(cut)


def _instant(text: str) -> datetime:
    """An ISO 8601 instant for `--as-of`; without an offset it is UTC."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Generate the demo tenant's MES source."
    )
    parser.add_argument("path", type=Path, help="SQLite file to (over)write")
    parser.add_argument("--seed", type=int, default=20261119)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies the lots")
    parser.add_argument(
        "--days", type=int, default=5, help="production days of history"
    )
    parser.add_argument(
        "--as-of",
        type=_instant,
        default=None,
        help="show the source as the MES showed it at this ISO 8601 instant "
        "(UTC unless it has an offset; default: the end of the history)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    started = perf_counter()
    summary = generate_demo_source(
        args.path, seed=args.seed, scale=args.scale, days=args.days, as_of=args.as_of
    )
    for table, count in summary.rows.items():
        log.info("%-16s %10d rows", table, count)
    log.info("as of %s", summary.as_of.isoformat())
    log.info("bad lot_history keys: %s", summary.bad_lot_history_keys)
    log.info("wrote %s in %.1f s", summary.path, perf_counter() - started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
