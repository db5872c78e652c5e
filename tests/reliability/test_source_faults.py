"""6. The source connection killed mid-stream; 8. rows committed late.

6: the extract's query sleeps in the server half-way through its rows (a flag
table arms it); the test kills that backend (`pg_terminate_backend`, MariaDB
`KILL CONNECTION`) while rows are streaming. The source then "comes back"
(flag dropped) and the retry runs.

8: a row committed late, dated within the lookback before raw's high-water
mark, is picked up by the next sync; a row committed after the extract read
past its cursor is caught by the reconcile stage, which names the key, both
figures and `lookback_hours`, and ledgers them.
"""

from __future__ import annotations

import gc
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pymysql
import pytest
import yaml
from airflow.sdk.exceptions import AirflowFailException

from mozart_etl.core.errors import SourceError
from mozart_etl.core.lake import Lake, latest_manifest
from mozart_etl.load.catalog import open_catalog
from mozart_etl.load.ledger import read_ledger
from tests.helpers import (
    mysql_source,
    postgres_source,
    seoul_day,
    sqlite_value,
    table_dict,
    tenant_dict,
)
from tests.reliability.chaos import Recorder, iceberg_orphans, lake_orphans, raw_figures
from tests.reliability.lots import (
    DAYS,
    KEY,
    add_sqlite_rows,
    keys,
    rows_for,
    sqlite_lots_tenant,
)
from tests.reliability.pipeline import run_table, tenant_of, write_tenant

ROWS = 60_000
STALL_AT = 30_000
COLUMNS = [
    {"name": "id", "type": "bigint", "nullable": False},
    {"name": "note", "type": "string"},
]
PG_QUERY = (
    "SELECT id, note FROM big WHERE CASE WHEN id = {stall} AND EXISTS "
    "(SELECT 1 FROM chaos_flag) THEN pg_sleep(60) IS NOT NULL ELSE true END"
)
MYSQL_QUERY = (
    "SELECT id, note FROM big WHERE CASE WHEN id = {stall} AND EXISTS "
    "(SELECT 1 FROM chaos_flag) THEN SLEEP(60) = 0 ELSE 1 END"
)


class Source:
    """One server source: run SQL, find the stalled extract, kill it."""

    def __init__(self, kind: str, database: str) -> None:
        self.kind, self.database = kind, database

    def run(self, *statements: str) -> list[tuple]:
        rows: list[tuple] = []
        if self.kind == "postgresql":
            conninfo = f"host=127.0.0.1 port=5432 user=postgres dbname={self.database}"
            with psycopg.connect(conninfo, autocommit=True) as conn:
                for statement in statements:
                    cursor = conn.execute(statement)
                    rows = cursor.fetchall() if cursor.description else []
            return rows
        conn = pymysql.connect(
            host="127.0.0.1", user="root", database=self.database, autocommit=True
        )
        try:
            with conn.cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement)
                    rows = list(cursor.fetchall())
        finally:
            conn.close()
        return rows

    def stalled_session(self) -> list[tuple]:
        if self.kind == "postgresql":
            return self.run(
                "SELECT pid FROM pg_stat_activity WHERE datname = "
                f"'{self.database}' AND wait_event = 'PgSleep'"
            )
        return self.run(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = "
            f"'{self.database}' AND INFO LIKE '%SLEEP(60)%' AND INFO LIKE '%big%'"
            " AND INFO NOT LIKE '%PROCESSLIST%'"
        )

    def kill(self, session: int) -> None:
        if self.kind == "postgresql":
            self.run(f"SELECT pg_terminate_backend({session})")
        else:
            self.run(f"KILL CONNECTION {session}")


def _seed(source: Source) -> None:
    source.run(
        "CREATE TABLE big (id bigint, note varchar(40))",
        "CREATE TABLE chaos_flag (armed int)",
    )
    if source.kind == "postgresql":
        source.run(
            f"INSERT INTO big SELECT g, 'note ' || g FROM generate_series(1, {ROWS}) g"
        )
    else:
        source.run(
            f"SET SESSION max_recursive_iterations = {ROWS + 1}",
            "INSERT INTO big WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 "
            f"FROM s WHERE n < {ROWS}) SELECT n, CONCAT('note ', n) FROM s",
        )


def _killer(source: Source, killed: list[int]) -> Callable[[], None]:
    def kill_when_stalled() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            sessions = source.stalled_session()
            if sessions:
                source.kill(sessions[0][0])
                killed.append(sessions[0][0])
                return
            time.sleep(0.05)

    return kill_when_stalled


# The killed MariaDB session's cursor complains when garbage-collected.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
def test_source_connection_killed_mid_stream(
    request: pytest.FixtureRequest, tmp_path: Path, kind: str, chaos: Recorder
) -> None:
    chaos.name(f"6. source connection killed mid-stream ({kind}), source back, retry")
    database = request.getfixturevalue(
        "postgres_db" if kind == "postgresql" else "mysql_db"
    )
    source = Source(kind, database)
    _seed(source)
    query = (PG_QUERY if kind == "postgresql" else MYSQL_QUERY).format(stall=STALL_AT)
    table = table_dict("big", COLUMNS, source={"query": query})
    settings = (
        postgres_source(database) if kind == "postgresql" else mysql_source(database)
    )
    folder = write_tenant(
        tmp_path / "tenants", tenant_dict(tmp_path, [table], source=settings)
    )
    tenant = tenant_of(folder)
    first = run_table(folder, "big", DAYS[0], "run-1")  # a good load to keep
    catalog = open_catalog(tenant)
    snapshot = catalog.load_table(("acme_raw", "big")).current_snapshot().snapshot_id

    source.run("INSERT INTO chaos_flag VALUES (1)")  # the next read stalls half-way
    killed: list[int] = []
    killer = threading.Thread(target=_killer(source, killed))
    killer.start()
    with pytest.raises(SourceError) as caught:
        run_table(folder, "big", DAYS[0], "run-2")
    killer.join()
    gc.collect()  # the killed session's cursor, collected under this test's filter

    assert killed, "the extract never reached the stall"
    error = str(caught.value)
    assert "tenant=acme table=big" in error and f"{kind}" in error
    assert any(
        cause in error.lower()
        for cause in ("terminat", "connection is lost", "lost connection", "gone away")
    ), error
    assert not caught.value.terminal  # Airflow retries it
    day_folder = Path(Lake(tenant).day_folder("big", DAYS[0]))
    assert (
        latest_manifest(Lake(tenant), "big", DAYS[0]).extract_id
        == (first["extract"]["extract_id"])
    )  # the dead attempt wrote no manifest
    assert (
        catalog.load_table(("acme_raw", "big")).current_snapshot().snapshot_id
        == snapshot
    )

    source.run("DELETE FROM chaos_flag")  # the source is back
    retry = run_table(folder, "big", DAYS[0], "run-2")

    assert retry["reconcile"]["source_rows"] == retry["reconcile"]["raw_rows"] == ROWS
    lost, dups = raw_figures(
        catalog, ("acme_raw", "big"), ["id"], [(i,) for i in range(1, ROWS + 1)]
    )
    chaos.record(
        lost=lost,
        dups=dups,
        orphans=lake_orphans(day_folder)
        + iceberg_orphans(catalog, ("acme_raw", "big")),
        cause=f"{type(caught.value).__name__}: {error.split(': ', 2)[-1][:60]}",
    )
    assert (lost, dups) == (0, 0)


def _insert_sqlite(path: Path, row: dict) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO lots VALUES (?, ?, ?, ?)",
            [
                sqlite_value(row[name])
                for name in ("lot_id", "step_seq", "qty", "updated_at")
            ],
        )
    conn.close()


def test_a_late_row_is_picked_up_by_the_lookback(
    tmp_path: Path, chaos: Recorder
) -> None:
    chaos.name("8. row committed late, cursor within the lookback: next sync reads it")
    path = tmp_path / "source.sqlite"
    first, second = rows_for(DAYS[0]), rows_for(DAYS[1])
    folder = sqlite_lots_tenant(tmp_path, first, "incremental", lookback_hours=12)
    run_table(folder, "lots", DAYS[0], "day-1")
    mark = max(row["updated_at"] for row in first)  # raw's high-water mark
    late = {  # committed now, dated two hours before what raw already holds
        "lot_id": "LATE-1",
        "step_seq": 1,
        "qty": Decimal("7.50"),
        "updated_at": mark - timedelta(hours=2),
    }
    _insert_sqlite(path, late)
    add_sqlite_rows(path, second)

    out = run_table(folder, "lots", DAYS[1], "day-2")

    start = mark - timedelta(hours=12)
    assert out["extract"]["window_start"].startswith(start.isoformat()[:19])
    assert out["extract"]["window_end"] is None  # a sync reads to the source's now
    synced = [row for row in [*first, late, *second] if row["updated_at"] >= start]
    assert late in synced
    assert out["extract"]["rows"] == len(synced)
    assert out["reconcile"]["source_rows"] == out["reconcile"]["raw_rows"]
    assert out["reconcile"]["source_rows"] == len(synced)
    catalog = open_catalog(tenant_of(folder))
    lost, dups = raw_figures(
        catalog, ("acme_raw", "lots"), KEY, [*keys(first + second), ("LATE-1", 1)]
    )
    chaos.record(lost=lost, dups=dups)
    assert (lost, dups) == (0, 0)


def test_a_row_committed_after_the_extract_fails_reconciliation(
    tmp_path: Path, chaos: Recorder
) -> None:
    chaos.name("8b. row committed after the extract, behind raw's mark: caught, named")
    path = tmp_path / "source.sqlite"
    first, second = rows_for(DAYS[0]), rows_for(DAYS[1])
    folder = sqlite_lots_tenant(tmp_path, first, "incremental")  # no lookback
    run_table(folder, "lots", DAYS[0], "day-1")
    add_sqlite_rows(path, second)
    start = max(row["updated_at"] for row in first)  # the sync reads from the mark
    out = run_table(
        folder, "lots", DAYS[1], "day-2", stages=("extract", "validate", "load")
    )
    # Committed after the extract read past its cursor, which is older than
    # the mark this load set: no later sync without a lookback reads it.
    late = {
        "lot_id": "LATE-2",
        "step_seq": 2,
        "qty": Decimal("100.00"),
        "updated_at": seoul_day(DAYS[1]).start + timedelta(hours=1),
    }
    assert start < late["updated_at"] < max(row["updated_at"] for row in second)
    _insert_sqlite(path, late)

    with pytest.raises(AirflowFailException) as caught:
        run_table(folder, "lots", DAYS[1], "day-2", manifest=out["extract"])

    message = str(caught.value)
    synced = [row for row in [*first, *second] if row["updated_at"] >= start]
    total = sum(row["qty"] for row in synced)
    count = len(synced)
    assert f"source {count + 1} row(s), raw {count} + 0 quarantined" in message
    assert f"sum(qty): source {total + 100}, raw {total}" in message, message
    assert "{'lot_id': 'LATE-2', 'step_seq': 2}" in message, message
    assert "`lookback_hours`" in message, message
    tenant = tenant_of(folder)
    ledger = read_ledger(open_catalog(tenant), tenant).to_pylist()
    (record,) = [r for r in ledger if r["run_id"] == "day-2"]
    assert record["status"] == "mismatch"
    assert (record["source_rows"], record["raw_rows"]) == (count + 1, count)
    assert Decimal(record["source_sum"]) == total + 100
    assert Decimal(record["raw_sum"]) == total

    # As the error says: a lookback covering such late commits, and a rerun.
    settings = folder / "tenant.yaml"
    data = yaml.safe_load(settings.read_text())
    data["tables"][0]["lookback_hours"] = 12
    settings.write_text(yaml.safe_dump(data, allow_unicode=True))
    rerun = run_table(folder, "lots", DAYS[1], "day-2-rerun")

    assert rerun["reconcile"]["source_rows"] == rerun["reconcile"]["raw_rows"]
    lost, dups = raw_figures(
        open_catalog(tenant),
        ("acme_raw", "lots"),
        KEY,
        [*keys(first + second), ("LATE-2", 2)],
    )
    chaos.record(lost=lost, dups=dups, cause="ReconcileMismatch (names the key)")
    assert (lost, dups) == (0, 0)
