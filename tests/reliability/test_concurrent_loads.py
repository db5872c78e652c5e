"""5b. Two attempts of one load at the same instant, for every raw write mode:
one writer wins, and raw equals a single attempt's result, every time.

Airflow runs a task at least once: a zombie load and its retry share one
extract (the same XComs); two runs of one day each extract on their own. Each
race releases both attempts at once (`racers.Racers`, a Barrier); half the
races also hold both at their snapshot commit until both planned, so they
commit against the same snapshot. An attempt that loses fails with a
retryable LoadError and is retried, as Airflow would; then raw is compared
with what the source's rows say it must hold, computed here row by row.

`MOZART_RACE_REPEAT` (default 20) sets the races per mode.
"""

from __future__ import annotations

import os
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from mozart_etl.factory import tasks
from mozart_etl.load.catalog import open_catalog
from mozart_etl.load.versions import DELETED, VALID_FROM
from tests.helpers import seoul_day, sqlite_value, table_dict, tenant_dict
from tests.reliability.chaos import Recorder, iceberg_orphans, raw_figures
from tests.reliability.lots import COLUMNS, KEY, SQLITE_DDL, lots_table
from tests.reliability.pipeline import (
    run_table,
    task_context,
    tenant_of,
    write_tenant,
)
from tests.reliability.racers import Attempt, Outcome, Racers

REPEAT = int(os.environ.get("MOZART_RACE_REPEAT", "20"))
DAY_0, DAY_1 = date(2026, 11, 15), date(2026, 11, 16)
ROWS = 24
Row = dict[str, Any]
Version = tuple[Any, ...]


@dataclass
class Source:
    """The SQLite source's rows, kept beside it: the oracle reads these."""

    path: Path
    rows: dict[tuple, Row]

    def write(self) -> None:
        with sqlite3.connect(self.path) as conn:
            conn.execute("DELETE FROM lots")
            conn.executemany(
                "INSERT INTO lots VALUES (?, ?, ?, ?)",
                [
                    [sqlite_value(row[c["name"]]) for c in COLUMNS]
                    for row in self.rows.values()
                ],
            )
        conn.close()


def _lots(day: date, count: int = ROWS, *, runs: bool = False) -> list[Row]:
    """`count` rows of a day; with `runs`, every row of a lot shares its
    instant (a plan run is written at once)."""
    start = seoul_day(day).start
    return [
        {
            "lot_id": f"{day:%m%d}-L{i % 4}",
            "step_seq": i,
            "qty": Decimal(i) + Decimal("0.5"),
            "updated_at": start + timedelta(minutes=(i % 4 if runs else i) * 13),
        }
        for i in range(count)
    ]


def _source(root: Path, rows: list[Row]) -> Source:
    path = root / "source.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute(SQLITE_DDL)
    conn.close()
    source = Source(path, {(row["lot_id"], row["step_seq"]): row for row in rows})
    source.write()
    return source


def _tenant(root: Path, mode: str) -> Path:
    if mode == "snapshot":  # each lot is an immutable run of lines
        table = table_dict(
            "lots",
            COLUMNS,
            primary_key=KEY,
            mode="snapshot",
            snapshot_key="lot_id",
            cursor="updated_at",
        )
    else:
        table = lots_table(mode)
    data = tenant_dict(root, [table])
    data["schedule"]["retries"] = 0
    return write_tenant(root / "tenants", data)


# --- what raw must hold, from the source's rows alone ----------------------------


def _dated(states: list[list[Row]]) -> Counter[Version]:
    """A cursor table keeps each (key, cursor) version once, live, valid from
    its cursor."""
    versions = {
        (r["lot_id"], r["step_seq"], r["qty"], r["updated_at"].astimezone(UTC), False)
        for rows in states
        for r in rows
    }
    return Counter(versions)


def _undated(before: list[Row], after: list[Row]) -> Counter[Version]:
    """A full refresh: the first state; each row new or changed in the second;
    a deletion (a copy of its last version) for each key gone."""
    old = {(r["lot_id"], r["step_seq"]): r for r in before}
    new = {(r["lot_id"], r["step_seq"]): r for r in after}
    versions: Counter[Version] = Counter(
        (k[0], k[1], r["qty"], None, False) for k, r in old.items()
    )
    for k, r in new.items():
        if k not in old or old[k]["qty"] != r["qty"]:
            versions[(k[0], k[1], r["qty"], None, False)] += 1
    for k, r in old.items():
        if k not in new:
            versions[(k[0], k[1], r["qty"], None, True)] += 1
    return versions


def _runs(states: list[list[Row]]) -> Counter[Version]:
    """Plan runs: every line of every run, once."""
    return Counter(
        {
            (
                r["lot_id"],
                r["step_seq"],
                r["qty"],
                r["updated_at"].astimezone(UTC),
                None,
            )
            for rows in states
            for r in rows
        }
    )


def _held(folder: Path, mode: str) -> Counter[Version]:
    """What raw holds, in the oracle's terms (one entry per stored row)."""
    raw = open_catalog(tenant_of(folder)).load_table(("acme_raw", "lots"))
    data = raw.scan().to_arrow().to_pylist()
    if mode == "snapshot":
        return Counter(
            (r["lot_id"], r["step_seq"], r["qty"], r["updated_at"], None) for r in data
        )
    identity = Counter((r["lot_id"], r["step_seq"], r[VALID_FROM]) for r in data)
    assert max(identity.values()) == 1, "a (key, valid_from) version is stored twice"
    if mode == "full_refresh":
        return Counter(
            (r["lot_id"], r["step_seq"], r["qty"], None, r[DELETED]) for r in data
        )
    for r in data:  # a dated version is valid from its own cursor
        assert r[VALID_FROM] == r["updated_at"], r
    return Counter(
        (r["lot_id"], r["step_seq"], r["qty"], r["updated_at"], r[DELETED])
        for r in data
    )


# --- one race ---------------------------------------------------------------------


@dataclass
class Scenario:
    """How the source moves before the race, and what raw must then hold."""

    first_load: bool
    change: Callable[[Source], None]
    expect: Callable[[list[Row], list[Row]], Counter[Version]]


def _new_day(source: Source) -> None:
    for row in _lots(DAY_1):
        source.rows[(row["lot_id"], row["step_seq"])] = row


def _dated_change(source: Source) -> None:
    """Day 1's rows arrive; a few of day 0's change, with a later cursor."""
    later = seoul_day(DAY_1).start + timedelta(hours=20)
    for step in range(0, ROWS, 5):
        row = source.rows[(f"{DAY_0:%m%d}-L{step % 4}", step)]
        row.update(qty=row["qty"] + 100, updated_at=later + timedelta(seconds=step))
    _new_day(source)


def _undated_change(source: Source) -> None:
    """Day 1's rows arrive; a few of day 0's change, a few are deleted."""
    for step in range(0, ROWS, 5):
        source.rows[(f"{DAY_0:%m%d}-L{step % 4}", step)]["qty"] += 100
    for step in range(1, ROWS, 7):
        del source.rows[(f"{DAY_0:%m%d}-L{step % 4}", step)]
    _new_day(source)


def _new_runs(source: Source) -> None:
    for row in _lots(DAY_1, runs=True):
        source.rows[(row["lot_id"], row["step_seq"])] = row


SCENARIOS: dict[str, Scenario] = {
    "first load": Scenario(True, _new_day, lambda before, after: _dated([after])),
    "incremental": Scenario(
        False, _dated_change, lambda before, after: _dated([before, after])
    ),
    "merge": Scenario(
        False, _dated_change, lambda before, after: _dated([before, after])
    ),
    "full_refresh": Scenario(False, _undated_change, _undated),
    "snapshot": Scenario(
        False, _new_runs, lambda before, after: _runs([before, after])
    ),
}
MODE_OF = {"first load": "incremental"}


@pytest.fixture(scope="module")
def racers() -> Iterator[Racers]:
    pool = Racers(2)
    yield pool
    pool.close()


def _extract(folder: Path, run_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    out = run_table(folder, "lots", DAY_1, run_id, stages=("extract", "validate"))
    return out["extract"], out["validate"]


def _race(root: Path, name: str, racers: Racers, index: int) -> list[Outcome]:
    """Set the source and raw up, race two loads, retry the losers; returns
    the race's outcomes after checking raw against the oracle."""
    scenario = SCENARIOS[name]
    mode = MODE_OF.get(name, name)
    shared, hold = index % 2 == 0, index % 4 < 2  # every combination, in turn
    folder = _tenant(root, mode)
    source = _source(root, _lots(DAY_0, runs=mode == "snapshot"))
    before = [dict(row) for row in source.rows.values()]
    if not scenario.first_load:
        run_table(
            folder, "lots", DAY_0, "day-0", stages=("extract", "validate", "load")
        )
    scenario.change(source)
    source.write()
    after = list(source.rows.values())

    if shared:  # a zombie load and its retry: one extract, one run id
        inputs = [_extract(folder, "day-1")] * 2
        run_ids = ["day-1", "day-1"]
    else:  # two runs of one day, each with its own extract
        inputs = [_extract(folder, "day-1"), _extract(folder, "day-1-again")]
        run_ids = ["day-1", "day-1-again"]
    attempts = [
        Attempt(str(folder), "lots", DAY_1, run_id, extract, validate)
        for run_id, (extract, validate) in zip(run_ids, inputs, strict=True)
    ]
    outcomes = racers.race(attempts, hold_commit=hold)

    for attempt, outcome in zip(attempts, outcomes, strict=True):
        if hold:
            assert outcome.held_at_commit, f"{name} race {index}: {outcome}"
        if outcome.ok:
            continue
        # The loser: a retryable LoadError, raw untouched; Airflow retries it.
        assert outcome.error.startswith("LoadError"), outcome
        assert "another writer committed" in outcome.error, outcome
        with task_context(attempt.run_id, attempt.day):
            tasks.run_load(
                attempt.folder, attempt.table, attempt.extract, attempt.validate
            )
    expected = scenario.expect(before, after)
    assert _held(folder, mode) == expected, f"{name} race {index}"
    # A refused commit removed its own data files: nothing is left unreferenced.
    catalog = open_catalog(tenant_of(folder))
    assert iceberg_orphans(catalog, ("acme_raw", "lots")) == 0, f"{name} {index}"
    return outcomes


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_two_attempts_of_one_load_at_the_same_instant(
    tmp_path: Path, name: str, racers: Racers, chaos: Recorder
) -> None:
    chaos.name(f"5b. two loads released at once by a barrier ({name}) x{REPEAT}")
    refused = held = 0
    for index in range(REPEAT):
        outcomes = _race(tmp_path / f"race-{index}", name, racers, index)
        refused += sum(not outcome.ok for outcome in outcomes)
        held += index % 4 < 2
    # The last race's raw, as the chaos figures count it.
    folder = tmp_path / f"race-{REPEAT - 1}" / "tenants" / "acme"
    source_keys = _source_keys(tmp_path / f"race-{REPEAT - 1}" / "source.sqlite")
    catalog = open_catalog(tenant_of(folder))
    lost, dups = raw_figures(
        catalog,
        ("acme_raw", "lots"),
        KEY,
        source_keys,
    )
    chaos.record(
        lost=lost,
        dups=dups,
        orphans=0,  # asserted after every race
        cause=(
            f"{REPEAT} races ({held} held at the commit): {refused} attempt(s) "
            "refused (LoadError), retried; raw = oracle every time"
        ),
    )
    assert (lost, dups) == (0, 0)
    # Forced overlaps must have produced losers: the check was exercised.
    assert refused >= held


def _source_keys(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        keys = conn.execute("SELECT lot_id, step_seq FROM lots").fetchall()
    conn.close()
    return [tuple(key) for key in keys]
