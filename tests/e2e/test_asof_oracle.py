"""The as-of oracle and the demo source over time, checked before use.

Hand-made timelines pin the as-of reading of the spec (a hold released around
T, an event open at T, deletions before and after T, a capture only after T);
the generator is checked at many instants: its file is `rows_as_of`, it never
shows a version before its cursor, the spec's invariants hold at every instant
(but for the planted rows), and a pipeline that captured every change sees
exactly the truth. No Airflow, no dbt: seconds.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mozart_etl.demo.generate import (
    DEMO_DAY,
    HISTORY_END_UTC,
    DemoTimeline,
    generate_demo_source,
    rows_as_of,
    table_columns,
)

try:
    from tests.e2e.asof_oracle import (
        PRIMARY_KEYS,
        Capture,
        day_end,
        mart_differences,
        perceived_marts,
        row_at,
        table_versions,
        truth_marts,
    )
except ImportError:  # tests/ collected as rootdir-less modules
    from asof_oracle import (  # type: ignore[no-redef]
        PRIMARY_KEYS,
        Capture,
        day_end,
        mart_differences,
        perceived_marts,
        row_at,
        table_versions,
        truth_marts,
    )

Row = dict[str, Any]
DAY = date(2026, 11, 19)
T = datetime(2026, 11, 19, 15, tzinfo=UTC)
"""The end of DAY in Asia/Seoul: DAY is [11-18 15:00, 11-19 15:00) UTC."""


# --- a tiny MES over time -----------------------------------------------------

Versions = list[tuple[datetime, Row | None]]


def at(text: str) -> datetime:
    """'19 14:00' = 2026-11-19 14:00 UTC."""
    day, clock = text.split()
    hour, minute = clock.split(":")
    return datetime(2026, 11, int(day), int(hour), int(minute), tzinfo=UTC)


def ts(text: str | None) -> str | None:
    """'19 14:00' in the generator's storage format."""
    return None if text is None else f"{at(text):%Y-%m-%d %H:%M:%S}.000000+00:00"


class Mes:
    """A source that keeps only each row's latest state, as an MES does:
    every row's successive contents (None: deleted) with the instant of each."""

    def __init__(self) -> None:
        self.history: defaultdict[str, defaultdict[tuple[Any, ...], Versions]] = (
            defaultdict(lambda: defaultdict(list))
        )

    def put(self, table: str, when: str, row: Row | None, key: Iterable[Any]) -> None:
        self.history[table][tuple(key)].append((at(when), row))

    def at(self, when: datetime) -> dict[str, list[Row]]:
        tables: dict[str, list[Row]] = {}
        for table, rows in self.history.items():
            tables[table] = []
            for versions in rows.values():
                valid = [row for since, row in versions if since <= when]
                if valid and valid[-1] is not None:
                    tables[table].append(dict(valid[-1]))
        return tables

    def captures(self, *whens: str) -> list[Capture]:
        return [(at(w), self.at(at(w))) for w in whens]

    def change_instants(self) -> list[str]:
        instants = {
            since
            for rows in self.history.values()
            for versions in rows.values()
            for since, _ in versions
        }
        return [f"{i.day} {i:%H:%M}" for i in sorted(instants)]


def visit(
    lot: str,
    seq: int,
    status: str,
    updated: str,
    arrived: str,
    track_in: str | None = None,
    track_out: str | None = None,
    eq: str | None = None,
    qty_out: int | None = None,
) -> Row:
    return {
        "lot_id": lot,
        "step_seq": seq,
        "product_id": "P1",
        "step_id": "X",
        "equipment_id": eq,
        "qty_in": 20,
        "qty_out": qty_out,
        "status": status,
        "arrived_at": ts(arrived),
        "track_in_at": ts(track_in),
        "track_out_at": ts(track_out),
        "updated_at": ts(updated),
    }


def event(
    event_id: int, eq: str, kind: str, started: str, ended: str | None = None
) -> Row:
    return {
        "event_id": event_id,
        "equipment_id": eq,
        "event_type": kind,
        "started_at": ts(started),
        "ended_at": ts(ended),
        "updated_at": ts(ended or started),
    }


def plan(run_id: str, created: str, qty: int) -> Row:
    return {
        "plan_run_id": run_id,
        "line_no": 1,
        "plan_date": "2026-11-19",
        "product_id": "P1",
        "step_id": "X",
        "equipment_id": "E1",
        "planned_qty": qty,
        "planned_start": None,
        "planned_end": None,
        "created_at": ts(created),
    }


@pytest.fixture
def mes() -> Mes:
    mes = Mes()
    for eq in ("E1", "E2"):
        row = {
            "equipment_id": eq,
            "equipment_group": "GRP-X",
            "step_id": "X",
            "capacity_per_hour": "10.00",
            "active": 1,
        }
        mes.put("equipment", "17 00:00", row, [eq])
    for seq in (10, 20):
        route = {"product_id": "P1", "step_seq": seq, "step_id": "X"}
        mes.put(
            "product_route",
            "17 00:00",
            route | {"std_process_minutes": "60.00"},
            ["P1", seq],
        )
    lots = [
        # L1: held before T, released after it, then processed
        visit("L1", 10, "WAIT", "19 10:00", "19 10:00"),
        visit("L1", 10, "HOLD", "19 14:00", "19 10:00"),
        visit("L1", 10, "WAIT", "19 16:00", "19 10:00"),
        visit("L1", 10, "RUN", "19 17:00", "19 10:00", "19 17:00", eq="E1"),
        visit(
            "L1", 10, "DONE", "19 18:00", "19 10:00", "19 17:00", "19 18:00", "E1", 20
        ),
        # L2: running at T, held after it, released, done
        visit("L2", 10, "WAIT", "19 10:00", "19 10:00"),
        visit("L2", 10, "RUN", "19 11:00", "19 10:00", "19 11:00", eq="E2"),
        visit("L2", 10, "HOLD", "19 15:30", "19 10:00", "19 11:00", eq="E2"),
        visit("L2", 10, "RUN", "19 16:30", "19 10:00", "19 11:00", eq="E2"),
        visit(
            "L2", 10, "DONE", "19 18:00", "19 10:00", "19 11:00", "19 18:00", "E2", 20
        ),
        # L3: step 10 done in the day, step 20 running at T
        visit("L3", 10, "WAIT", "18 16:00", "18 16:00"),
        visit("L3", 10, "RUN", "18 17:00", "18 16:00", "18 17:00", eq="E1"),
        visit(
            "L3", 10, "DONE", "19 02:00", "18 16:00", "18 17:00", "19 02:00", "E1", 20
        ),
        visit("L3", 20, "WAIT", "19 02:00", "19 02:00"),
        visit("L3", 20, "RUN", "19 03:00", "19 02:00", "19 03:00", eq="E2"),
    ]
    for row in lots:
        mes.put(
            "lot_history", _hm(row["updated_at"]), row, [row["lot_id"], row["step_seq"]]
        )
    # ev1 open at T, closed after it; ev2 deleted before T; ev3 deleted after T
    mes.put("equipment_event", "19 10:00", event(1, "E1", "RUN", "19 10:00"), [1])
    mes.put(
        "equipment_event",
        "19 20:00",
        event(1, "E1", "RUN", "19 10:00", "19 20:00"),
        [1],
    )
    mes.put("equipment_event", "19 01:00", event(2, "E2", "DOWN", "19 01:00"), [2])
    mes.put(
        "equipment_event",
        "19 03:00",
        event(2, "E2", "DOWN", "19 01:00", "19 03:00"),
        [2],
    )
    mes.put("equipment_event", "19 05:00", None, [2])
    mes.put("equipment_event", "19 11:00", event(3, "E2", "IDLE", "19 11:00"), [3])
    mes.put(
        "equipment_event",
        "19 12:00",
        event(3, "E2", "IDLE", "19 11:00", "19 12:00"),
        [3],
    )
    mes.put("equipment_event", "19 16:00", None, [3])
    # PR-1 before the day; PR-2 a re-plan written after its end
    mes.put("plan_production", "18 12:00", plan("PR-1", "18 12:00", 40), ["PR-1", 1])
    mes.put("plan_production", "19 16:00", plan("PR-2", "19 16:00", 50), ["PR-2", 1])
    return mes


def _hm(text: str) -> str:
    """'2026-11-19 14:00:00...' -> '19 14:00' (the Mes's instant notation)."""
    return f"{text[8:10]} {text[11:16]}"


def wip(marts: dict[str, list[Row]]) -> tuple[int, int]:
    (row,) = marts["mart_wip"]
    return row["lot_count"], row["wip_qty"]


def hours(marts: dict[str, list[Row]], eq: str) -> tuple[float, float, float]:
    (row,) = [r for r in marts["mart_equipment_utilization"] if r["equipment_id"] == eq]
    return row["run_hours"], row["idle_hours"], row["down_hours"]


@pytest.fixture
def truth(mes: Mes) -> dict[str, list[Row]]:
    return truth_marts(DAY, mes.at(T))


def test_day_end() -> None:
    assert day_end(DAY) == T
    assert day_end(DAY, "America/New_York", 6) == datetime(2026, 11, 20, 11, tzinfo=UTC)


def test_the_truth_is_the_oracle_over_the_source_at_t(
    truth: dict[str, list[Row]],
) -> None:
    assert wip(truth) == (2, 40)  # L2 and L3/20; L1 is on HOLD at T
    (cycle,) = truth["mart_cycle_time"]
    assert (cycle["lot_count"], cycle["avg_cycle_hours"]) == (1, 10.0)
    assert hours(truth, "E1") == (5.0, 0.0, 0.0)  # open at T: runs to the day's end
    assert hours(truth, "E2") == (0.0, 1.0, 0.0)  # ev2 deleted before T, ev3 after
    assert {r["plan_run_id"] for r in truth["mart_plan_vs_actual"]} == {"PR-1"}


def test_captures_at_every_change_see_the_truth(mes: Mes, truth: dict) -> None:
    captures = mes.captures(*mes.change_instants())
    assert mart_differences(perceived_marts(DAY, captures), truth) == []


def test_a_capture_at_t_sees_the_truth(mes: Mes, truth: dict) -> None:
    assert mart_differences(perceived_marts(DAY, [(T, mes.at(T))]), truth) == []


def test_a_hold_seen_before_t_blocks_though_released_after(
    mes: Mes, truth: dict
) -> None:
    # (15:45: a capture after T and before ev3's deletion at 16:00, which a
    # capture at 17:30 alone would date just after 14:30, i.e. before T)
    captures = mes.captures("19 14:30", "19 15:45", "19 17:30")
    assert mart_differences(perceived_marts(DAY, captures), truth) == []


def test_a_hold_no_capture_saw_is_the_only_difference(mes: Mes, truth: dict) -> None:
    # L1's HOLD began and ended between the two captures: no one saw it
    perceived = perceived_marts(DAY, mes.captures("19 13:00", "19 17:30"))
    assert wip(perceived) == (3, 60)
    same = ("mart_cycle_time", "mart_lead_time", "mart_plan_vs_actual")
    assert (
        mart_differences(
            {k: v for k, v in perceived.items() if k in same},
            {k: v for k, v in truth.items() if k in same},
        )
        == []
    )
    # (and ev3, deleted at 16:00 with no capture between 13:00 and then, is
    # dated gone just after 13:00: E2's idle hour is the other unseen change)
    assert hours(perceived, "E1") == hours(truth, "E1")
    assert hours(perceived, "E2") == (0.0, 0.0, 0.0) != hours(truth, "E2")


def test_a_hold_that_began_after_t_does_not_block(mes: Mes, truth: dict) -> None:
    # seen only after T: L2's HOLD (15:30) did not hold at T; L1's (14:00) did
    perceived = perceived_marts(DAY, mes.captures("19 15:45"))
    assert mart_differences(perceived, truth) == []


def test_an_event_open_at_t_and_closed_later_counts_to_the_day_end(
    mes: Mes, truth: dict
) -> None:
    for captures in (mes.captures("19 12:30", "19 21:00"), mes.captures("19 21:00")):
        assert hours(perceived_marts(DAY, captures), "E1") == hours(truth, "E1")


def test_deletions(mes: Mes) -> None:
    # ev2 deleted at 05:00, seen deleted before T: absent
    perceived = perceived_marts(DAY, mes.captures("19 02:00", "19 06:00"))
    assert hours(perceived, "E2") == (0.0, 0.0, 0.0)
    # its deletion only seen after T: no timestamp dates it, so it begins just
    # after the capture that last saw the row (02:00): absent at T, as in truth
    perceived = perceived_marts(DAY, mes.captures("19 02:00", "19 16:00"))
    assert hours(perceived, "E2") == (0.0, 0.0, 0.0)
    # ev3 deleted after T (and after a capture after T) keeps its version up
    # to its deletion
    captures = mes.captures("19 11:30", "19 12:30", "19 15:30", "19 16:30")
    assert hours(perceived_marts(DAY, captures), "E2") == (0.0, 1.0, 0.0)
    # seen last before T and gone at the next capture: dated before T
    captures = mes.captures("19 11:30", "19 12:30", "19 16:30")
    assert hours(perceived_marts(DAY, captures), "E2") == (0.0, 0.0, 0.0)
    # a deleted row that was never captured is not known at all
    assert hours(perceived_marts(DAY, mes.captures("19 17:00")), "E2") == (0, 0, 0)


def test_a_capture_only_after_t_keeps_the_facts(mes: Mes, truth: dict) -> None:
    perceived = perceived_marts(DAY, mes.captures("19 21:00"))
    # done, lead and plan figures come from timestamps: as at T
    for mart in ("mart_cycle_time", "mart_lead_time", "mart_plan_vs_actual"):
        assert mart_differences({mart: perceived[mart]}, {mart: truth[mart]}) == []
    # L1 and L2 were tracked out after T: WIP at T, their later states unknown
    assert wip(perceived) == (3, 60)
    assert hours(perceived, "E1") == (5.0, 0.0, 0.0)


def test_plan_runs_written_after_t_do_not_count(mes: Mes) -> None:
    # PR-1 first captured after T (created before it) counts; PR-2 does not
    perceived = perceived_marts(DAY, mes.captures("19 17:00"))
    assert {r["plan_run_id"] for r in perceived["mart_plan_vs_actual"]} == {"PR-1"}
    assert perceived["mart_plan_vs_actual"][0]["planned_qty"] == 40


def test_quarantined_visits_count_nowhere(mes: Mes) -> None:
    keys = {("L1", 10)}
    truth = truth_marts(DAY, mes.at(T), exclude_keys=keys)
    perceived = perceived_marts(DAY, mes.captures("19 14:30"), exclude_keys=keys)
    assert wip(truth) == wip(perceived) == (2, 40)  # L1 no longer blocks nor counts
    assert mart_differences(perceived, truth) == []


def test_versions_without_a_cursor_start_at_their_capture() -> None:
    def eq(active: int) -> Row:
        return {"equipment_id": "E1", "equipment_group": "G", "active": active}

    captures: list[Capture] = [
        (at("18 00:00"), {"equipment": [eq(1)]}),
        (at("19 00:00"), {"equipment": [eq(0)]}),
        (at("20 00:00"), {"equipment": [eq(1)]}),
        (at("21 00:00"), {"equipment": []}),
        (at("22 00:00"), {"equipment": [eq(1)]}),
    ]
    (versions,) = table_versions(captures, "equipment").values()
    # The first capture dates its rows itself; a later change happened after
    # the capture before it (which saw the old state) and is dated just after.
    tick = timedelta(microseconds=1)
    assert [(v.valid_from, v.row and v.row["active"]) for v in versions] == [
        (at("18 00:00"), 1),
        (at("18 00:00") + tick, 0),
        (at("19 00:00") + tick, 1),
        (at("20 00:00") + tick, None),
        (at("21 00:00") + tick, 1),
    ]
    assert row_at(versions, at("18 12:00")).row["active"] == 0  # type: ignore[union-attr]
    assert row_at(versions, at("19 12:00")).row["active"] == 1  # type: ignore[union-attr]
    assert row_at(versions, at("20 12:00")) is None
    first = row_at(versions, at("17 00:00"))
    assert first is not None and not first.known and first.row["active"] == 1


def test_a_deleted_row_reappearing_starts_a_new_version() -> None:
    row = event(7, "E1", "RUN", "18 01:00", "18 02:00")
    captures: list[Capture] = [
        (at("18 03:00"), {"equipment_event": [row]}),
        (at("18 04:00"), {"equipment_event": []}),
        (at("18 05:00"), {"equipment_event": [row]}),
    ]
    versions = table_versions(captures, "equipment_event")[(7,)]
    assert [(v.valid_from, v.row is None) for v in versions] == [
        (at("18 02:00"), False),
        (at("18 03:00") + timedelta(microseconds=1), True),
        (at("18 05:00"), False),
    ]
    assert row_at(versions, at("18 04:30")) is None
    assert row_at(versions, at("18 06:00")).row == row  # type: ignore[union-attr]


# --- the generated source over time -------------------------------------------


@pytest.fixture(scope="module")
def timeline() -> DemoTimeline:
    return DemoTimeline()


def instants(timeline: DemoTimeline, step_hours: int) -> list[datetime]:
    """From before the history to after its end, every `step_hours`."""
    first = timeline.start - timedelta(hours=2)
    count = int((HISTORY_END_UTC - first) / timedelta(hours=step_hours)) + 2
    return [first + timedelta(hours=step_hours * n) for n in range(count)]


def read(path: Path) -> dict[str, list[Row]]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return {
            table: [dict(r) for r in conn.execute(f"SELECT * FROM {table}")]
            for table in table_columns()
        }
    finally:
        conn.close()


def by_key(tables: dict[str, list[Row]]) -> dict[str, dict[tuple[Any, ...], Row]]:
    return {
        table: {tuple(r[c] for c in PRIMARY_KEYS[table]): r for r in rows}
        for table, rows in tables.items()
    }


@pytest.mark.parametrize(
    "as_of",
    [
        None,
        HISTORY_END_UTC,
        day_end(DEMO_DAY - timedelta(days=2)) + timedelta(minutes=5),
        datetime(2026, 11, 17, 3, 17, 42, tzinfo=UTC),
        datetime(2026, 11, 14, tzinfo=UTC),  # before the history
        HISTORY_END_UTC + timedelta(days=3),
    ],
)
def test_the_file_is_rows_as_of(
    tmp_path: Path, timeline: DemoTimeline, as_of: datetime | None
) -> None:
    summary = generate_demo_source(tmp_path / "s.sqlite", as_of=as_of)
    expected = timeline.rows_as_of(as_of)
    got = read(tmp_path / "s.sqlite")
    assert by_key(got) == by_key(expected)
    assert summary.rows == {table: len(rows) for table, rows in expected.items()}
    assert summary.bad_lot_history_keys == timeline.bad_lot_history_keys(as_of)
    assert summary.as_of == (as_of or HISTORY_END_UTC)


def test_as_of_is_deterministic_and_the_default_is_the_end(tmp_path: Path) -> None:
    when = datetime(2026, 11, 18, 9, tzinfo=UTC)
    generate_demo_source(tmp_path / "a.sqlite", as_of=when)
    generate_demo_source(tmp_path / "b.sqlite", as_of=when)
    assert read(tmp_path / "a.sqlite") == read(tmp_path / "b.sqlite")
    assert rows_as_of(when) == read(tmp_path / "a.sqlite")
    generate_demo_source(tmp_path / "c.sqlite")
    generate_demo_source(tmp_path / "d.sqlite", as_of=HISTORY_END_UTC)
    assert read(tmp_path / "c.sqlite") == read(tmp_path / "d.sqlite")
    with pytest.raises(ValueError, match="aware"):
        generate_demo_source(tmp_path / "e.sqlite", as_of=datetime(2026, 11, 18))


_CURSORS = {
    "lot_history": "updated_at",
    "equipment_event": "updated_at",
    "process_result": "measured_at",
    "plan_production": "created_at",
    "demand": "updated_at",
}


def test_no_version_shows_before_its_cursor(timeline: DemoTimeline) -> None:
    previous: dict[str, dict[tuple[Any, ...], Row]] = {}
    deleted = timeline.event_deletions()
    for when in instants(timeline, 5):
        tables = by_key(timeline.rows_as_of(when))
        for table, cursor in _CURSORS.items():
            for key, row in tables[table].items():
                assert datetime.fromisoformat(row[cursor]) <= when, (table, row)
                before = previous.get(table, {}).get(key)
                if before is not None:  # a row only moves forward
                    assert before[cursor] <= row[cursor], (table, before, row)
            for key in previous.get(table, {}).keys() - tables[table].keys():
                # only deleted events disappear
                assert table == "equipment_event" and deleted[key[0]] <= when
        previous = tables
    assert previous == by_key(timeline.rows_as_of(None))


def broken(row: Row) -> set[str]:
    """The spec's first four lot_history invariants this row breaks."""
    arrived, track_in, track_out = (
        row["arrived_at"],
        row["track_in_at"],
        row["track_out_at"],
    )
    out = set()
    if row["qty_out"] is not None and row["qty_out"] > row["qty_in"]:
        out.add("qty_out <= qty_in")
    if track_in is not None and track_in < arrived:
        out.add("arrived <= track_in")
    if track_out is not None and (track_in is None or track_out < track_in):
        out.add("track_in <= track_out")
    if (row["status"] in ("DONE", "SCRAP")) != (track_out is not None):
        out.add("track-out iff DONE/SCRAP")
    return out


def test_invariants_hold_at_every_instant(timeline: DemoTimeline) -> None:
    planted = set(timeline.planted_bad_keys())
    planted_lots = {lot for lot, _ in planted}
    for when in instants(timeline, 3):
        rows = timeline.rows_as_of(when)["lot_history"]
        bad = {(r["lot_id"], r["step_seq"]) for r in rows if broken(r)}
        assert bad == set(timeline.bad_lot_history_keys(when)) <= planted
        lots: dict[str, list[Row]] = defaultdict(list)
        for row in rows:
            lots[row["lot_id"]].append(row)
            assert (row["equipment_id"] is None) == (row["track_in_at"] is None)
            assert (row["qty_out"] is None) == (row["track_out_at"] is None)
            if row["status"] == "WAIT":
                assert row["track_in_at"] is None
            if row["status"] in ("RUN", "HOLD"):
                assert row["track_out_at"] is None
            if row["status"] == "RUN":
                assert row["track_in_at"] is not None
            if row["status"] == "SCRAP":
                assert row["qty_out"] == 0
        for lot_id, visits in lots.items():
            assert [v["step_seq"] for v in visits] == list(
                range(10, 10 * len(visits) + 1, 10)
            )
            for previous, current in itertools.pairwise(visits):
                assert current["arrived_at"] == previous["track_out_at"] or (
                    lot_id in planted_lots and previous["track_out_at"] is None
                )
                assert previous["status"] == "DONE" or lot_id in planted_lots


def test_holds_are_released_events_deleted_demand_changed(
    timeline: DemoTimeline,
) -> None:
    statuses: dict[tuple[Any, ...], list[str]] = defaultdict(list)
    demand: dict[tuple[Any, ...], set[tuple[Any, ...]]] = defaultdict(set)
    for when in instants(timeline, 2):
        tables = by_key(timeline.rows_as_of(when))
        for key, row in tables["lot_history"].items():
            if not statuses[key] or statuses[key][-1] != row["status"]:
                statuses[key].append(row["status"])
        for key, row in tables["demand"].items():
            demand[key].add((row["priority"], row["status"]))
    released = [s for s in statuses.values() if "HOLD" in s and s[-1] != "HOLD"]
    assert len(released) >= 3
    assert any(s.index("HOLD") > 0 and s[-1] == "DONE" for s in released)
    held = [s for s in statuses.values() if s[-1] == "HOLD"]
    assert held  # and some stay on HOLD to the end
    end_events = {
        row["event_id"] for row in timeline.rows_as_of(None)["equipment_event"]
    }
    deleted = timeline.event_deletions()
    assert len(deleted) >= 5 and not set(deleted) & end_events
    assert len(timeline.events()) == len(end_events) + len(deleted)
    assert sum(len(seen) > 1 for seen in demand.values()) >= 5
    assert any(
        ("CANCELLED" in {s for _, s in seen}) and len(seen) > 1
        for seen in demand.values()
    )


def captures_around(
    timeline: DemoTimeline, t: datetime, before: timedelta, after: timedelta
) -> list[Capture]:
    """The source at `t - before` and at every change up to `t + after`."""
    start = t - before
    whens = [start] + [i for i in timeline.change_instants() if start < i <= t + after]
    return [(when, timeline.rows_as_of(when)) for when in whens]


@pytest.mark.parametrize("back", [1, 2])
def test_every_change_captured_sees_the_truth(
    timeline: DemoTimeline, back: int
) -> None:
    day = DEMO_DAY - timedelta(days=back)
    t = day_end(day)
    bad = timeline.planted_bad_keys()
    truth = truth_marts(day, timeline.rows_as_of(t), exclude_keys=bad)
    assert all(truth.values())
    captures = captures_around(timeline, t, timedelta(hours=3), timedelta(hours=1))
    assert len(captures) > 30
    perceived = perceived_marts(day, captures, exclude_keys=bad)
    assert mart_differences(perceived, truth) == []


def test_a_capture_at_each_day_end_sees_the_truth(timeline: DemoTimeline) -> None:
    bad = timeline.planted_bad_keys()
    for back in range(timeline.days):
        day = DEMO_DAY - timedelta(days=back)
        t = day_end(day)
        truth = truth_marts(day, timeline.rows_as_of(t), exclude_keys=bad)
        perceived = perceived_marts(
            day, [(t, timeline.rows_as_of(t))], exclude_keys=bad
        )
        assert mart_differences(perceived, truth) == [], day


def test_a_late_capture_misses_only_states(timeline: DemoTimeline) -> None:
    """Captured once at the end of the history: facts as at T; a lot held at T
    and released since is not seen blocked (WIP only grows); utilisation may
    differ only by events deleted before anyone captured them."""
    bad = timeline.planted_bad_keys()
    late: list[Capture] = [(HISTORY_END_UTC, timeline.rows_as_of(None))]
    wip_grew = False
    for back in range(1, timeline.days):
        day = DEMO_DAY - timedelta(days=back)
        truth = truth_marts(day, timeline.rows_as_of(day_end(day)), exclude_keys=bad)
        perceived = perceived_marts(day, late, exclude_keys=bad)
        for mart in (
            "mart_cycle_time",
            "mart_lead_time",
            "mart_plan_vs_actual",
            "mart_line_balance",
        ):
            assert mart_differences({mart: perceived[mart]}, {mart: truth[mart]}) == []
        seen = {(r["product_id"], r["step_id"]): r for r in perceived["mart_wip"]}
        for row in truth["mart_wip"]:
            got = seen[row["product_id"], row["step_id"]]
            assert got["lot_count"] >= row["lot_count"]
            wip_grew |= got["lot_count"] > row["lot_count"]
    assert wip_grew  # the generator holds lots across a day's end and releases them
