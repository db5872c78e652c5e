"""The oracle and the demo generator, checked before anything is checked with them.

A tiny hand-made source with hand-computed marts pins the oracle's reading of
the spec; the generated source is checked for determinism and for the spec's
invariants, broken by exactly the three rows it reports.
"""

from __future__ import annotations

import itertools
import re
import sqlite3
from collections import defaultdict
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from mozart_etl.demo.generate import (
    DEMO_DAY,
    HISTORY_END_UTC,
    TENANT_TZ,
    DemoTimeline,
    SourceSummary,
    generate_demo_source,
)

try:
    from tests.e2e.oracle import expected_marts
except ImportError:  # tests/ collected as rootdir-less modules
    from oracle import expected_marts  # type: ignore[no-redef]

DAY = date(2026, 11, 19)

_COLUMNS = {
    "equipment": "equipment_id, equipment_group, step_id, capacity_per_hour, active",
    "product_route": "product_id, step_seq, step_id, std_process_minutes",
    "lot_history": "lot_id, step_seq, product_id, step_id, equipment_id, qty_in, "
    "qty_out, status, arrived_at, track_in_at, track_out_at, updated_at",
    "equipment_event": "event_id, equipment_id, event_type, started_at, ended_at, "
    "updated_at",
    "process_result": "result_id, lot_id, step_id, equipment_id, measured_at, "
    "good_qty, defect_qty, defect_code, remark",
    "plan_production": "plan_run_id, line_no, plan_date, product_id, step_id, "
    "equipment_id, planned_qty, planned_start, planned_end, created_at",
}
_TS = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.000000\+00:00$")
_TIMESTAMPS = {
    "lot_history": ("arrived_at", "track_in_at", "track_out_at", "updated_at"),
    "equipment_event": ("started_at", "ended_at", "updated_at"),
    "process_result": ("measured_at",),
    "plan_production": ("planned_start", "planned_end", "created_at"),
}


# --- a tiny hand-made source ------------------------------------------------


def ts(text: str) -> str:
    """'11-19 01:00' (UTC, 2026) in the generator's storage format."""
    return f"2026-{text}:00.000000+00:00"


def write_source(path: Path, tables: dict[str, list[tuple[Any, ...]]]) -> Path:
    conn = sqlite3.connect(path)
    for table, columns in _COLUMNS.items():
        conn.execute(f"CREATE TABLE {table} ({columns})")
        rows = tables.get(table, [])
        if rows:
            marks = ", ".join("?" * len(rows[0]))
            conn.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
    conn.commit()
    conn.close()
    return path


def visit(head: str, *times: str) -> tuple[Any, ...]:
    """A lot_history row from "lot seq product step equipment qty_in qty_out status"
    ('-' for null) and its November (UTC) arrival, track-in and track-out times."""
    lot, seq, product, step, eq, qty_in, qty_out, status = head.split()
    stamps = [nov(t) for t in times] + [None] * (3 - len(times))
    return (
        lot,
        int(seq),
        product,
        step,
        None if eq == "-" else eq,
        int(qty_in),
        None if qty_out == "-" else int(qty_out),
        status,
        *stamps,
        nov(times[-1]),
    )


def nov(text: str) -> str:
    """'19 01:00' = 2026-11-19 01:00 UTC, in the generator's storage format."""
    return ts(f"11-{text}")


# Day D = 2026-11-19 in Asia/Seoul = [11-18 15:00, 11-19 15:00) UTC.
TINY = {
    "equipment": [
        ("E1", "GRP-X", "X", "10.00", 1),
        ("E2", "GRP-X", "X", "10.00", 1),
        ("E3", "GRP-X", "X", "10.00", 0),
        ("E4", "GRP-Y", "Y", "10.00", 1),
        ("E5", "GRP-Z", "Z", "10.00", 1),
    ],
    "product_route": [
        ("P1", 10, "X", "60.00"),
        ("P1", 20, "Y", "60.00"),
        ("P2", 10, "X", "60.00"),
        ("P3", 10, "X", "60.00"),
        ("P3", 20, "X", "60.00"),
    ],
    "lot_history": [
        visit("L1 10 P1 X E1 20 15 DONE", "18 16:00", "18 17:00", "18 19:00"),
        visit("L1 20 P1 Y E4 15 15 DONE", "18 19:00", "18 20:00", "19 01:00"),
        # tracked out exactly at the day's start: in D
        visit("L2 10 P1 X E2 25 25 DONE", "18 10:00", "18 13:00", "18 15:00"),
        visit("L2 20 P1 Y - 25 - WAIT", "18 15:00"),
        visit("L3 10 P1 X E1 22 - RUN", "19 12:00", "19 13:00"),
        visit("L4 10 P2 X - 20 - HOLD", "19 10:00"),
        visit("L5 10 P2 X E2 20 0 SCRAP", "19 01:00", "19 02:00", "19 03:00"),
        # tracked out exactly at the day's end: not done in D, still WIP at its end
        visit("L6 10 P2 X E1 21 21 DONE", "19 14:00", "19 14:30", "19 15:00"),
        # quarantined by validation (qty_out > qty_in)
        visit("L7 10 P1 X E2 20 30 DONE", "18 20:00", "18 21:00", "18 22:00"),
        visit("L7 20 P1 Y - 20 - WAIT", "18 22:00"),
        # the same step_id twice in one day: one lot
        visit("L8 10 P3 X E2 10 10 DONE", "19 00:00", "19 01:00", "19 02:00"),
        visit("L8 20 P3 X E2 10 10 DONE", "19 02:00", "19 02:00", "19 04:00"),
        # finished a minute before D
        visit("L9 10 P1 X E1 20 20 DONE", "17 01:00", "17 02:00", "17 03:00"),
        visit("L9 20 P1 Y E4 20 20 DONE", "17 03:00", "17 04:00", "18 14:59"),
        # arrives exactly at the day's end: not WIP of D
        visit("L10 10 P2 X - 23 - WAIT", "19 15:00"),
    ],
    "equipment_event": [
        (1, "E1", "RUN", ts("11-18 12:00"), ts("11-18 21:00"), ts("11-18 21:00")),
        (2, "E1", "IDLE", ts("11-18 21:00"), ts("11-19 03:00"), ts("11-19 03:00")),
        (3, "E1", "DOWN", ts("11-19 03:00"), ts("11-19 05:00"), ts("11-19 05:00")),
        (4, "E1", "RUN", ts("11-19 05:00"), None, ts("11-19 05:00")),
        (5, "E2", "PM", ts("11-18 15:00"), ts("11-18 19:00"), ts("11-18 19:00")),
        (6, "E2", "RUN", ts("11-18 19:00"), ts("11-19 16:00"), ts("11-19 16:00")),
        (7, "E3", "RUN", ts("11-18 00:00"), None, ts("11-18 00:00")),
        (8, "E4", "IDLE", ts("11-18 00:00"), ts("11-18 15:00"), ts("11-18 15:00")),
        (9, "E5", "RUN", ts("11-19 16:00"), None, ts("11-19 16:00")),
    ],
    "plan_production": [
        # PR-B is older than PR-A: created_at decides, not the id
        ("PR-B", 1, "2026-11-19", "P1", "X", "E1", 30, None, None, ts("11-18 11:00")),
        ("PR-B", 2, "2026-11-19", "P1", "X", "E2", 10, None, None, ts("11-18 11:00")),
        ("PR-B", 3, "2026-11-19", "P1", "Y", "E4", 50, None, None, ts("11-18 11:00")),
        ("PR-A", 1, "2026-11-19", "P1", "X", "E1", 20, None, None, ts("11-18 14:00")),
        ("PR-A", 2, "2026-11-19", "P1", "X", "E2", 12, None, None, ts("11-18 14:00")),
        ("PR-A", 3, "2026-11-19", "P2", "Y", "E4", 15, None, None, ts("11-18 14:00")),
        ("PR-C", 1, "2026-11-20", "P1", "X", "E1", 99, None, None, ts("11-19 10:00")),
    ],
}
EXCLUDED = {("L7", 10)}


@pytest.fixture
def tiny_source(tmp_path: Path) -> Path:
    return write_source(tmp_path / "tiny.sqlite", TINY)


def demo(**row: Any) -> dict[str, Any]:
    return {"tenant_id": "demo", **row}


def test_wip(tiny_source: Path) -> None:
    marts = expected_marts(tiny_source, DAY, exclude_keys=EXCLUDED)
    d = {"snapshot_date": DAY}
    assert marts["mart_wip"] == [
        demo(**d, product_id="P1", step_id="X", lot_count=1, wip_qty=22),
        demo(**d, product_id="P1", step_id="Y", lot_count=2, wip_qty=45),
        demo(**d, product_id="P2", step_id="X", lot_count=1, wip_qty=21),
    ]


def test_cycle_time(tiny_source: Path) -> None:
    marts = expected_marts(tiny_source, DAY, exclude_keys=EXCLUDED)
    hours = (
        "avg_queue_hours",
        "avg_process_hours",
        "avg_cycle_hours",
        "max_cycle_hours",
    )
    got = {
        (r["product_id"], r["step_id"]): (r["lot_count"], *(r[h] for h in hours))
        for r in marts["mart_cycle_time"]
    }
    assert got == {
        ("P1", "X"): (2, 2.0, 2.0, 4.0, 5.0),
        ("P1", "Y"): (1, 1.0, 5.0, 6.0, 6.0),
        ("P3", "X"): (1, 0.5, 1.5, 2.0, 2.0),
    }
    assert [r["work_date"] for r in marts["mart_cycle_time"]] == [DAY] * 3


def test_lead_time(tiny_source: Path) -> None:
    marts = expected_marts(tiny_source, DAY, exclude_keys=EXCLUDED)
    assert marts["mart_lead_time"] == [
        demo(work_date=DAY, product_id="P1", lot_count=1, avg_lead_time_hours=9.0),
        demo(work_date=DAY, product_id="P3", lot_count=1, avg_lead_time_hours=4.0),
    ]


def test_plan_vs_actual_takes_the_latest_run_and_joins_fully(tiny_source: Path) -> None:
    marts = expected_marts(tiny_source, DAY, exclude_keys=EXCLUDED)
    w = {"work_date": DAY, "plan_run_id": "PR-A"}
    assert marts["mart_plan_vs_actual"] == [
        demo(**w, product_id="P1", step_id="X", planned_qty=32, actual_qty=40)
        | {"deviation_qty": 8, "attainment_pct": 125.0},
        demo(**w, product_id="P1", step_id="Y", planned_qty=0, actual_qty=15)
        | {"deviation_qty": 15, "attainment_pct": None},
        demo(**w, product_id="P2", step_id="Y", planned_qty=15, actual_qty=0)
        | {"deviation_qty": -15, "attainment_pct": 0.0},
        demo(**w, product_id="P3", step_id="X", planned_qty=0, actual_qty=20)
        | {"deviation_qty": 20, "attainment_pct": None},
    ]


def test_plan_vs_actual_without_a_run(tiny_source: Path) -> None:
    rows = expected_marts(tiny_source, date(2026, 11, 18))["mart_plan_vs_actual"]
    assert {r["plan_run_id"] for r in rows} == {None}
    assert all(r["planned_qty"] == 0 and r["attainment_pct"] is None for r in rows)


def test_equipment_utilization(tiny_source: Path) -> None:
    marts = expected_marts(tiny_source, DAY, exclude_keys=EXCLUDED)
    got = {
        r["equipment_id"]: (
            r["run_hours"],
            r["idle_hours"],
            r["down_hours"],
            r["pm_hours"],
        )
        for r in marts["mart_equipment_utilization"]
    }
    assert got == {
        "E1": (16.0, 6.0, 2.0, 0.0),
        "E2": (20.0, 0.0, 0.0, 4.0),
        "E4": (0.0, 0.0, 0.0, 0.0),
        "E5": (0.0, 0.0, 0.0, 0.0),
    }
    pct = {
        r["equipment_id"]: r["utilization_pct"]
        for r in marts["mart_equipment_utilization"]
    }
    assert pct == pytest.approx({"E1": 200 / 3, "E2": 250 / 3, "E4": 0.0, "E5": 0.0})


def test_line_balance(tiny_source: Path) -> None:
    marts = expected_marts(tiny_source, DAY, exclude_keys=EXCLUDED)
    got = [
        (
            r["equipment_group"],
            r["equipment_id"],
            r["output_qty"],
            r["group_mean_qty"],
            r["deviation_pct"],
            r["imbalance_flag"],
        )
        for r in marts["mart_line_balance"]
    ]
    assert got == [
        ("GRP-X", "E1", 15, 30.0, -50.0, True),
        ("GRP-X", "E2", 45, 30.0, 50.0, True),
        ("GRP-Y", "E4", 15, 15.0, 0.0, False),
        ("GRP-Z", "E5", 0, 0.0, None, False),
    ]
    lenient = expected_marts(tiny_source, DAY, exclude_keys=EXCLUDED, threshold_pct=60)
    assert not any(r["imbalance_flag"] for r in lenient["mart_line_balance"])


def test_excluded_rows_count_nowhere(tiny_source: Path) -> None:
    marts = expected_marts(tiny_source, DAY)
    pva = {(r["product_id"], r["step_id"]): r for r in marts["mart_plan_vs_actual"]}
    assert pva["P1", "X"]["actual_qty"] == 70
    cycle = {(r["product_id"], r["step_id"]): r for r in marts["mart_cycle_time"]}
    assert cycle["P1", "X"]["lot_count"] == 3


def test_day_start_hour_shifts_the_window(tiny_source: Path) -> None:
    # day_start_hour=6: D = [11-18 21:00, 11-19 21:00) UTC
    marts = expected_marts(tiny_source, DAY, day_start_hour=6, exclude_keys=EXCLUDED)
    cycle = {(r["product_id"], r["step_id"]): r for r in marts["mart_cycle_time"]}
    assert set(cycle) == {("P1", "Y"), ("P2", "X"), ("P3", "X")}
    assert cycle["P2", "X"]["avg_cycle_hours"] == 1.0
    run = {
        r["equipment_id"]: r["run_hours"] for r in marts["mart_equipment_utilization"]
    }
    assert run["E2"] == 19.0


def test_utilization_on_a_25_hour_day(tmp_path: Path) -> None:
    source = write_source(
        tmp_path / "dst.sqlite",
        {
            "equipment": [("E1", "G", "X", "1.00", 1)],
            "equipment_event": [
                (1, "E1", "RUN", ts("10-01 00:00"), None, ts("10-01 00:00")),
            ],
        },
    )
    # Europe/Berlin leaves summer time on 2026-10-25: that day lasts 25 hours
    marts = expected_marts(source, date(2026, 10, 25), tz="Europe/Berlin")
    (row,) = marts["mart_equipment_utilization"]
    assert (row["run_hours"], row["utilization_pct"]) == (25.0, 100.0)


# --- the generated demo source ----------------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SourceSummary]:
    path = tmp_path_factory.mktemp("demo") / "source.sqlite"
    return path, generate_demo_source(path)


def read_all(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(path)
    try:
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
            for table in _COLUMNS
        }
    finally:
        conn.close()


def read_dicts(path: Path, table: str) -> list[dict[str, Any]]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return [
            dict(row) for row in conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2")
        ]
    finally:
        conn.close()


def at(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def test_generation_is_deterministic(
    tmp_path: Path, generated: tuple[Path, SourceSummary]
) -> None:
    path, summary = generated
    again = generate_demo_source(tmp_path / "again.sqlite")
    assert read_all(tmp_path / "again.sqlite") == read_all(path)
    assert again.rows == summary.rows
    assert again.bad_lot_history_keys == summary.bad_lot_history_keys
    generate_demo_source(tmp_path / "other.sqlite", seed=7)
    other = read_all(tmp_path / "other.sqlite")
    assert other["lot_history"] != read_all(path)["lot_history"]


def test_generation_replaces_the_file(tmp_path: Path) -> None:
    path = tmp_path / "source.sqlite"
    generate_demo_source(path, seed=1)
    summary = generate_demo_source(path, seed=2, scale=0.5)
    assert not path.with_suffix(".tmp").exists()
    assert (
        sum(1 for _ in read_dicts(path, "lot_history")) == summary.rows["lot_history"]
    )


def test_summary_counts_rows(generated: tuple[Path, SourceSummary]) -> None:
    path, summary = generated
    assert summary.path == str(path)
    counts = {table: len(rows) for table, rows in read_all(path).items()}
    with sqlite3.connect(path) as conn:  # APS master data (tests/e2e/master_oracle.py)
        for table in ("item_master", "bom", "demand"):
            (counts[table],) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert summary.rows == counts
    assert 100 <= len({r["lot_id"] for r in read_dicts(path, "lot_history")}) <= 200


def test_storage_conventions(generated: tuple[Path, SourceSummary]) -> None:
    path, _ = generated
    end = HISTORY_END_UTC
    for table, columns in _TIMESTAMPS.items():
        for row in read_dicts(path, table):
            for column in columns:
                value = row[column]
                if value is not None:
                    assert _TS.match(value), (table, column, value)
                    assert datetime.fromisoformat(value) < end, (table, row)
    for row in read_dicts(path, "equipment"):
        assert re.fullmatch(r"\d+\.\d{2}", row["capacity_per_hour"])
        assert row["active"] in (0, 1)
    for row in read_dicts(path, "product_route"):
        assert re.fullmatch(r"\d+\.\d{2}", row["std_process_minutes"])
    for row in read_dicts(path, "plan_production"):
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", row["plan_date"])


def test_master_data_shape(generated: tuple[Path, SourceSummary]) -> None:
    path, _ = generated
    equipment = read_dicts(path, "equipment")
    assert 12 <= len(equipment) <= 16
    groups = {e["equipment_group"]: set() for e in equipment}
    for e in equipment:
        groups[e["equipment_group"]].add(e["step_id"])
    assert 3 <= len(groups) <= 5
    assert all(len(steps) == 1 for steps in groups.values())
    assert 1 <= sum(1 for e in equipment if not e["active"]) <= 2
    routes: dict[str, list[int]] = defaultdict(list)
    for step in read_dicts(path, "product_route"):
        routes[step["product_id"]].append(step["step_seq"])
    assert 3 <= len(routes) <= 4
    for seqs in routes.values():
        assert 6 <= len(seqs) <= 10
        assert sorted(seqs) == list(range(10, 10 * len(seqs) + 1, 10))


def broken_invariants(row: dict[str, Any]) -> set[str]:
    arrived, track_in = at(row["arrived_at"]), at(row["track_in_at"])
    track_out = at(row["track_out_at"])
    broken = set()
    if row["qty_out"] is not None and row["qty_out"] > row["qty_in"]:
        broken.add("qty_out <= qty_in")
    if track_in is not None and track_in < arrived:
        broken.add("arrived <= track_in")
    if track_out is not None and (track_in is None or track_out < track_in):
        broken.add("track_in <= track_out")
    if (row["status"] in ("DONE", "SCRAP")) != (track_out is not None):
        broken.add("track-out iff DONE/SCRAP")
    return broken


def test_exactly_three_rows_break_an_invariant(
    generated: tuple[Path, SourceSummary],
) -> None:
    path, summary = generated
    rows = read_dicts(path, "lot_history")
    broken = {(r["lot_id"], r["step_seq"]): broken_invariants(r) for r in rows}
    bad = {key: why for key, why in broken.items() if why}
    assert set(bad) == set(summary.bad_lot_history_keys)
    assert sorted(len(why) for why in bad.values()) == [1, 1, 1]
    assert set().union(*bad.values()) == {
        "qty_out <= qty_in",
        "arrived <= track_in",
        "track_in <= track_out",
    }
    blocked = {r["lot_id"] for r in rows if r["status"] in ("HOLD", "SCRAP")}
    zone = ZoneInfo(TENANT_TZ)
    for row in rows:
        if (row["lot_id"], row["step_seq"]) in bad:
            assert row["status"] == "DONE"
            assert at(row["track_out_at"]).astimezone(zone).date() == DEMO_DAY
            assert row["lot_id"] not in blocked


def test_lots_move_along_their_routes(generated: tuple[Path, SourceSummary]) -> None:
    path, summary = generated
    bad = set(summary.bad_lot_history_keys)
    equipment = {e["equipment_id"]: e for e in read_dicts(path, "equipment")}
    lots: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in read_dicts(path, "lot_history"):
        lots[row["lot_id"]].append(row)
    statuses = set()
    for visits in lots.values():
        assert [v["step_seq"] for v in visits] == list(
            range(10, 10 * len(visits) + 1, 10)
        )
        assert 20 <= visits[0]["qty_in"] <= 25
        for previous, current in itertools.pairwise(visits):
            assert previous["status"] == "DONE"
            assert current["arrived_at"] == previous["track_out_at"]
            if (previous["lot_id"], previous["step_seq"]) not in bad:
                assert current["qty_in"] == previous["qty_out"]
        for v in visits:
            statuses.add(v["status"])
            assert (v["equipment_id"] is None) == (v["track_in_at"] is None)
            if v["equipment_id"] is not None:
                assert equipment[v["equipment_id"]]["active"] == 1
                assert equipment[v["equipment_id"]]["step_id"] == v["step_id"]
            assert (v["qty_out"] is None) == (v["track_out_at"] is None)
            if v["status"] == "SCRAP":
                assert v["qty_out"] == 0
            if v["status"] in ("WAIT",):
                assert v["track_in_at"] is None
            if v["status"] == "RUN":
                assert v["track_in_at"] is not None and v["track_out_at"] is None
            stamps = [v["arrived_at"], v["track_in_at"], v["track_out_at"]]
            # a hold or its release may be the visit's latest change
            assert v["updated_at"] >= max(s for s in stamps if s is not None)
    assert statuses == {"WAIT", "RUN", "DONE", "HOLD", "SCRAP"}


def test_process_results_match_done_visits(
    generated: tuple[Path, SourceSummary],
) -> None:
    path, _ = generated
    finished = [
        r for r in read_dicts(path, "lot_history") if r["status"] in ("DONE", "SCRAP")
    ]
    results = read_dicts(path, "process_result")
    assert len(results) == len(finished)
    qty_in = {(r["lot_id"], r["track_out_at"]): r["qty_in"] for r in finished}
    for result in results:
        assert (
            result["good_qty"] + result["defect_qty"]
            == qty_in[result["lot_id"], result["measured_at"]]
        )
        assert (result["defect_code"] is None) == (result["defect_qty"] == 0)
    assert any(r["remark"] and not r["remark"].isascii() for r in results)


def test_equipment_events_tile_time(generated: tuple[Path, SourceSummary]) -> None:
    """Every event ever recorded tiles its machine's time; the source shows all
    but the few deleted as MES corrections."""
    path, _ = generated
    active = {e["equipment_id"]: e["active"] for e in read_dicts(path, "equipment")}
    recorded = DemoTimeline().events()
    events: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in sorted(recorded, key=lambda e: e["started_at"]):
        events[event["equipment_id"]].append(event)
    assert set(events) == set(active)
    for eq_id, timeline in events.items():
        assert [e["ended_at"] is None for e in timeline] == [False] * (
            len(timeline) - 1
        ) + [True]
        for previous, current in itertools.pairwise(timeline):
            assert previous["ended_at"] == current["started_at"]
            assert previous["event_type"] != current["event_type"]
        if not active[eq_id]:
            assert timeline[-1]["event_type"] == "DOWN"
    kept = {e["event_id"] for e in recorded if e["deleted_at"] is None}
    shown = {e["event_id"] for e in read_dicts(path, "equipment_event")}
    assert shown == kept and 0 < len(recorded) - len(kept) < 0.05 * len(recorded)


def test_plans_have_gaps_both_ways_on_demo_day(
    generated: tuple[Path, SourceSummary],
) -> None:
    path, summary = generated
    lines = read_dicts(path, "plan_production")
    runs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in lines:
        runs[line["plan_run_id"]].append(line)
    by_day: dict[str, list[str]] = defaultdict(list)
    for run_id, run in runs.items():
        assert len({line["created_at"] for line in run}) == 1
        assert len({line["plan_date"] for line in run}) == 1
        by_day[run[0]["plan_date"]].append(run_id)
    assert len(by_day) == 5 and all(1 <= len(ids) <= 2 for ids in by_day.values())
    first, later = sorted(
        by_day[DEMO_DAY.isoformat()], key=lambda i: runs[i][0]["created_at"]
    )
    assert runs[first][0]["created_at"] < runs[later][0]["created_at"]
    assert [x["planned_qty"] for x in runs[first]] != [
        x["planned_qty"] for x in runs[later]
    ]

    marts = expected_marts(
        path, DEMO_DAY, exclude_keys=set(summary.bad_lot_history_keys)
    )
    pva = marts["mart_plan_vs_actual"]
    assert {r["plan_run_id"] for r in pva} == {later}
    assert any(r["planned_qty"] == 0 and r["actual_qty"] > 0 for r in pva)
    assert any(r["planned_qty"] > 0 and r["actual_qty"] == 0 for r in pva)


def test_oracle_on_the_demo_day(generated: tuple[Path, SourceSummary]) -> None:
    path, summary = generated
    bad = set(summary.bad_lot_history_keys)
    marts = expected_marts(path, DEMO_DAY, exclude_keys=bad)
    assert all(marts[name] for name in marts), {k: len(v) for k, v in marts.items()}
    assert any(r["imbalance_flag"] for r in marts["mart_line_balance"])
    assert len(marts["mart_equipment_utilization"]) == len(marts["mart_line_balance"])
    assert expected_marts(path, DEMO_DAY) != marts


def test_too_small_a_scale_fails_without_leaving_files(tmp_path: Path) -> None:
    path = tmp_path / "small.sqlite"
    with pytest.raises(ValueError, match="too small"):
        generate_demo_source(path, scale=0.02)
    assert not path.exists()
    assert not path.with_suffix(".tmp").exists()
