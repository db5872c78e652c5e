"""12b to 12g. Two publishes of the same tables at the same instant: one writer
wins, provably.

Two attempts (separate processes, started once per test with the 'spawn'
context) publish the same day / plan version to the same APS table, released
together by a `multiprocessing.Barrier`. After both finished the table must hold
exactly the rows one attempt alone would have left, computed here from the
warehouse rows and the table's previous rows (never read back from publish),
and both attempts must have committed. Each mode repeats the race on an existing
table, then twice more where the target does not exist yet: no schema at all,
and a schema without the table (the CREATE race). 12h repeats replace_day with
the server's default isolation set to SERIALIZABLE, which publish overrides.

The rows each attempt reports deleting prove the order: the second to commit
deletes what the first wrote, not the previous rows (two attempts that both
deleted the previous rows overlapped, and left duplicates under READ COMMITTED).
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest

from mozart_etl.config.models import TenantConfig
from mozart_etl.core.errors import PublishError
from mozart_etl.publish.postgres import PostgresTarget, publish_marts
from tests.helpers import POSTGRES_HOST, POSTGRES_PORT, table_dict, tenant_dict
from tests.reliability.chaos import Recorder

log = logging.getLogger(__name__)

D1, D2 = date(2026, 11, 18), date(2026, 11, 19)
PLAN, OTHER_PLAN = "W47", "W46"
SCHEMA = "aps"
REPEATS = 20
SLICE_ROWS = 400
"""Rows of the published slice: enough for the COPYs of two unguarded attempts
to overlap in most repetitions."""
WAIT_SECONDS = 120.0
"""A bound on every wait on the workers, so a dead worker fails the test."""

KEY = ["snapshot_date", "step_id"]
MART_DDL = """CREATE TABLE acme.mart_wip (snapshot_date DATE, plan_ver VARCHAR,
    product_id VARCHAR, step_id VARCHAR, lot_count BIGINT)"""
PG_COLUMNS = (
    "snapshot_date date, plan_ver text, product_id text, step_id text, lot_count bigint"
)

Row = tuple[Any, ...]


def _rows(day: date, plan_ver: str, version: int, count: int) -> list[Row]:
    """One slice of the mart: `count` steps of `day` and `plan_ver`."""
    return [
        (day, plan_ver, f"PRD-{i % 5}", f"S{i:04d}", i * version) for i in range(count)
    ]


# The warehouse holds the new slice (D1, W47) and another one (D2, W46) that only
# `full` publishes; the APS table previously held an older, smaller D1/W47 slice
# and an older D2/W46 one.
MART = _rows(D1, PLAN, 2, SLICE_ROWS) + _rows(D2, OTHER_PLAN, 2, 50)
PREVIOUS = _rows(D1, PLAN, 1, SLICE_ROWS - 100) + _rows(D2, OTHER_PLAN, 1, 30)


def _expected(mode: str, previous: list[Row]) -> tuple[list[Row], list[int]]:
    """What one attempt alone leaves from `previous`, and the rows two
    serialised attempts delete (the first the previous slice, the second the
    first's)."""
    if mode == "replace_day":
        kept = [row for row in previous if row[0] != D1]
        new = [row for row in MART if row[0] == D1]
    elif mode == "replace_plan_ver":
        kept = [row for row in previous if row[1] != PLAN]
        new = [row for row in MART if row[1] == PLAN]
    elif mode == "full":
        kept, new = [], list(MART)
    else:  # upsert: keyed by (snapshot_date, step_id), the day's rows only
        merged = {(row[0], row[3]): row for row in previous}
        merged.update({(row[0], row[3]): row for row in MART if row[0] == D1})
        return sorted(merged.values()), [0, 0]
    return sorted(kept + new), sorted([len(previous) - len(kept), len(new)])


@dataclass(frozen=True)
class Attempt:
    """What one worker's publish ended with (plain values: it crosses processes)."""

    ok: bool
    deleted: dict[str, int] = field(default_factory=dict)
    """Rows deleted per target table (`aps.<table>`)."""
    created: dict[str, bool] = field(default_factory=dict)
    waited: bool = False
    error: str = ""
    retryable: bool = False


class _Waits(logging.Handler):
    """Counts publish's "waiting for the publish lock" records in a worker."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seen = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "waiting for the publish lock" in record.getMessage():
            self.seen += 1


def _worker(
    data: dict[str, Any],
    base_dir: str,
    rounds: int,
    barrier: Any,
    results: Any,
) -> None:
    """One attempt per round, started by the barrier with the other attempt."""
    waits = _Waits()
    publish_log = logging.getLogger("mozart_etl.publish.postgres")
    publish_log.setLevel(logging.INFO)
    publish_log.addHandler(waits)
    tenant = TenantConfig.model_validate(data, context={"base_dir": Path(base_dir)})
    assert tenant.publish is not None
    target = PostgresTarget.from_config(tenant.publish.target)
    for _ in range(rounds):
        try:
            barrier.wait(WAIT_SECONDS)
        except threading.BrokenBarrierError:  # the parent stopped: a failed test
            return
        waits.seen = 0
        try:
            result = publish_marts(tenant, D1, target, PLAN)
        except Exception as exc:  # reported to the parent, which asserts on it
            results.put(
                Attempt(
                    ok=False,
                    error=f"{type(exc).__name__}: {exc}",
                    retryable=isinstance(exc, PublishError) and not exc.terminal,
                )
            )
            continue
        results.put(
            Attempt(
                ok=True,
                deleted={mart.table: mart.rows_deleted for mart in result.marts},
                created={mart.table: mart.created for mart in result.marts},
                waited=waits.seen > 0,
            )
        )


def _tenant_data(
    tmp_path: Path,
    database: str,
    mode: str,
    tables: Sequence[str],
    options: dict[str, str] | None = None,
) -> dict[str, Any]:
    data = tenant_dict(
        tmp_path, [table_dict("lots", [{"name": "id", "type": "bigint"}])]
    )
    marts: list[dict[str, Any]] = [
        {"mart": "mart_wip", "table": table} for table in tables
    ]
    if mode == "upsert":
        marts = [{**mart, "key": KEY} for mart in marts]
    data["publish"] = {
        "target": {
            "host": POSTGRES_HOST,
            "port": POSTGRES_PORT,
            "database": database,
            "user": "postgres",
            "options": options or {},
        },
        "schema": SCHEMA,
        "mode": mode,
        "marts": marts,
    }
    return data


def _write_warehouse(path: str) -> None:
    with duckdb.connect(path) as con:
        con.execute("CREATE SCHEMA acme")
        con.execute(MART_DDL)
        con.executemany("INSERT INTO acme.mart_wip VALUES (?, ?, ?, ?, ?)", MART)


@dataclass
class Race:
    """Two spawned workers and the parent, meeting at one barrier per round."""

    barrier: Any
    results: Any
    workers: list[Any]

    def run_round(self) -> list[Attempt]:
        """Release both attempts at once; their outcomes once both ended."""
        self.barrier.wait(WAIT_SECONDS)
        attempts = []
        for _ in self.workers:
            try:
                attempts.append(self.results.get(timeout=WAIT_SECONDS))
            except queue.Empty:
                alive = [worker.is_alive() for worker in self.workers]
                raise AssertionError(
                    f"an attempt never ended (alive: {alive})"
                ) from None
        return attempts


@pytest.fixture
def race_of(tmp_path: Path) -> Iterator[Any]:
    """Start two workers publishing the given tenants for `rounds` rounds."""
    context = multiprocessing.get_context("spawn")
    started: list[Any] = []
    barriers: list[Any] = []

    def start(tenants: Sequence[dict[str, Any]], rounds: int) -> Race:
        barrier = context.Barrier(len(tenants) + 1)
        barriers.append(barrier)
        results = context.Queue()
        for data in tenants:
            worker = context.Process(
                target=_worker,
                args=(data, str(tmp_path), rounds, barrier, results),
                daemon=True,
            )
            worker.start()
            started.append(worker)
        return Race(barrier, results, started)

    yield start
    for barrier in barriers:  # a test that failed half-way: release the workers
        barrier.abort()
    for worker in started:
        worker.join(WAIT_SECONDS)
        if worker.is_alive():  # only after a failed assertion left it waiting
            worker.kill()
            worker.join()


def _reset(
    conn: psycopg.Connection, tables: Sequence[str], state: str, mode: str
) -> None:
    """The APS side before a round: no schema, no table, or the previous rows."""
    conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    if state == "no schema":
        return
    conn.execute(f"CREATE SCHEMA {SCHEMA}")
    if state == "no table":
        return
    key = f", PRIMARY KEY ({', '.join(KEY)})" if mode == "upsert" else ""
    for table in tables:
        conn.execute(f"CREATE TABLE {SCHEMA}.{table} ({PG_COLUMNS}{key})")
        with conn.cursor().copy(f"COPY {SCHEMA}.{table} FROM STDIN") as copy:
            for row in PREVIOUS:
                copy.write_row(row)


def _table(conn: psycopg.Connection, table: str) -> list[Row]:
    """The table's rows, sorted; none when no attempt managed to create it."""
    exists = conn.execute("SELECT to_regclass(%s)", [f"{SCHEMA}.{table}"]).fetchone()
    if exists is None or exists[0] is None:
        return []
    return sorted(conn.execute(f"SELECT * FROM {SCHEMA}.{table}").fetchall())


def _differences(actual: list[Row], expected: list[Row]) -> tuple[int, int]:
    """(lost, extra) rows of `actual` against `expected`, as multisets."""
    have, want = Counter(actual), Counter(expected)
    return sum((want - have).values()), sum((have - want).values())


def _race(
    tmp_path: Path,
    database: str,
    mode: str,
    race_of: Any,
    tables_of_each: Sequence[Sequence[str]],
    states: Sequence[str],
    options: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run one race per state; figures over all rounds (failures listed)."""
    tables = sorted({table for tables in tables_of_each for table in tables})
    tenants = [
        _tenant_data(tmp_path, database, mode, t, options) for t in tables_of_each
    ]
    _write_warehouse(str(tmp_path / "warehouse.duckdb"))
    race = race_of(tenants, len(states))
    figures: dict[str, Any] = {"lost": 0, "dups": 0, "waited": 0, "failures": []}
    with psycopg.connect(
        host=POSTGRES_HOST,
        port=POSTGRES_PORT,
        user="postgres",
        dbname=database,
        autocommit=True,
    ) as conn:
        for number, state in enumerate(states):
            _reset(conn, tables, state, mode)
            previous = PREVIOUS if state == "previous rows" else []
            expected, deletes = _expected(mode, previous)
            attempts = race.run_round()
            figures["waited"] += any(attempt.waited for attempt in attempts)
            for table in tables:
                lost, extra = _differences(_table(conn, table), expected)
                figures["lost"] += lost
                figures["dups"] += extra
                if lost or extra:
                    figures["failures"].append(
                        f"round {number} ({state}) {table}: {lost} lost, {extra} extra"
                    )
            for attempt in attempts:
                if not attempt.ok:
                    kind = "retryable" if attempt.retryable else "terminal"
                    figures["failures"].append(
                        f"round {number}: {kind} {attempt.error}"
                    )
            if all(attempt.ok for attempt in attempts):
                for table in tables:
                    name = f"{SCHEMA}.{table}"
                    seen = sorted(attempt.deleted[name] for attempt in attempts)
                    if seen != deletes:
                        figures["failures"].append(
                            f"round {number} ({state}) {table}: deleted {seen}, "
                            f"serialised attempts delete {deletes}"
                        )
                    created = sorted(attempt.created[name] for attempt in attempts)
                    if created != [False, state != "previous rows"]:
                        figures["failures"].append(
                            f"round {number} ({state}) {table}: created {created}"
                        )
    log.info("%s: %d rounds, figures %s", mode, len(states), figures)
    return figures


def _cause(figures: dict[str, Any], rounds: int) -> str:
    """The matrix's cause cell: what the rounds ended with."""
    failures: list[str] = figures["failures"]
    if failures:
        return f"{len(failures)} failure(s) in {rounds} rounds; first: {failures[0]}"
    return (
        f"none: {rounds}/{rounds} rounds exact, both attempts committed; "
        f"one waited for the lock in {figures['waited']}"
    )


@pytest.mark.parametrize(
    ("mode", "scenario", "repeats", "isolation"),
    [
        ("replace_day", "12b", REPEATS, None),
        ("replace_plan_ver", "12c", REPEATS, None),
        ("full", "12d", REPEATS, None),
        ("upsert", "12e", REPEATS, None),
        # Publish pins READ COMMITTED: under a server default of SERIALIZABLE the
        # second attempt's snapshot would predate its wait for the lock.
        ("replace_day", "12h", 5, "serializable"),
    ],
)
def test_two_publishes_at_once_leave_the_single_attempt_result(
    tmp_path: Path,
    postgres_db: str,
    chaos: Recorder,
    race_of: Any,
    mode: str,
    scenario: str,
    repeats: int,
    isolation: str | None,
) -> None:
    default = f", server default {isolation}" if isolation else ""
    chaos.name(
        f"{scenario}. two publishes ({mode}{default}) at one instant, {repeats} "
        "times, + 2 creation races: exact, both commit"
    )
    states = ["no schema", "no table"] + ["previous rows"] * repeats
    options = {"options": f"-c default_transaction_isolation={isolation}"}
    figures = _race(
        tmp_path,
        postgres_db,
        mode,
        race_of,
        [["mart_wip"]] * 2,
        states,
        options if isolation else {},
    )

    rounds = len(states)
    chaos.record(
        lost=figures["lost"],
        dups=figures["dups"],
        cause=_cause(figures, rounds),
    )
    assert figures["failures"] == []
    assert (figures["lost"], figures["dups"]) == (0, 0)
    assert figures["waited"] >= 1  # the barrier did make them meet


def test_overlapping_table_sets_in_opposite_orders_do_not_deadlock(
    tmp_path: Path, postgres_db: str, chaos: Recorder, race_of: Any
) -> None:
    """One tenant lists [wip_a, wip_b], the other [wip_b, wip_a]: locks taken in
    the configured order would deadlock (PostgreSQL aborts one); sorted, never."""
    chaos.name(
        "12f. publishes of tables [a, b] and [b, a] at one instant, 10 times: "
        "no deadlock, exact"
    )
    tables = [["wip_a", "wip_b"], ["wip_b", "wip_a"]]
    states = ["no table"] + ["previous rows"] * 10
    figures = _race(tmp_path, postgres_db, "full", race_of, tables, states)

    chaos.record(
        lost=figures["lost"],
        dups=figures["dups"],
        cause=_cause(figures, len(states)),
    )
    assert figures["failures"] == []
    assert (figures["lost"], figures["dups"]) == (0, 0)


def test_a_lock_held_past_the_timeout_fails_retryably_and_changes_nothing(
    tmp_path: Path, postgres_db: str, chaos: Recorder
) -> None:
    """Another session holds the table's publish lock (the key documented in
    publish/postgres.py, computed here in SQL): publish gives up after its
    lock_timeout with a retryable error naming the cause; the table is as it was."""
    chaos.name("12g. publish lock held past lock_timeout: retryable, table unchanged")
    data = _tenant_data(tmp_path, postgres_db, "replace_day", ["mart_wip"])
    tenant = TenantConfig.model_validate(data, context={"base_dir": tmp_path})
    assert tenant.publish is not None
    _write_warehouse(str(tmp_path / "warehouse.duckdb"))
    connect = {
        "host": POSTGRES_HOST,
        "port": POSTGRES_PORT,
        "user": "postgres",
        "dbname": postgres_db,
    }
    with psycopg.connect(**connect, autocommit=True) as conn:
        _reset(conn, ["mart_wip"], "previous rows", "replace_day")
    with psycopg.connect(**connect) as holder:
        holder_pid = holder.info.backend_pid
        holder.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            ['mozart-etl publish "aps"."mart_wip"'],
        )
        with pytest.raises(PublishError) as caught:
            publish_marts(
                tenant,
                D1,
                PostgresTarget.from_config(tenant.publish.target),
                lock_timeout=0.2,
            )
        holder.rollback()
    with psycopg.connect(**connect) as conn:
        after = _table(conn, "mart_wip")

    error = caught.value
    chaos.record(
        lost=0,
        dups=0,
        cause=f"{type(error).__name__}, retryable: another publish of the same "
        "table holds it",
    )
    assert not error.terminal
    assert "another publish of the same table holds it" in str(error)
    assert "aps.mart_wip" in str(error)
    assert f"pid {holder_pid} " in str(error)  # who holds it, for the operator
    assert after == sorted(PREVIOUS)
