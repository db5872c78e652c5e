"""The users' daily paths converge on the same raw: a killed first load, a
pause, an old load cleared after newer days, deletes, naive local clocks.

A small MES table on the local MariaDB (`visits`, naive `DATETIME(6)` in the
plant's wall time) is synced through the real stages
(`mozart_etl.pipeline.stages.sync_table`) on a simulated clock
(`captured_at`). Every expectation is computed from the rows the test wrote
into the source, never from what the pipeline read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow.compute as pc
import pymysql
import pytest

from mozart_etl.config.constants import SourceType
from mozart_etl.config.models import TenantConfig
from mozart_etl.core.calendar import production_day
from mozart_etl.core.credentials import Credentials
from mozart_etl.core.errors import ReconcileMismatch
from mozart_etl.extract.connectors import connector_for
from mozart_etl.load import iceberg, reconcile
from mozart_etl.load.catalog import open_catalog
from mozart_etl.load.ledger import LEDGER_TABLE, read_ledger
from mozart_etl.load.reconcile import ReconcileResult
from mozart_etl.load.versions import DELETED, VALID_FROM, live_rows
from mozart_etl.pipeline import stages
from tests.helpers import MYSQL_HOST, MYSQL_PORT, make_tenant, mysql_source, table_dict

CHICAGO = "America/Chicago"
SEOUL = "Asia/Seoul"
COLUMNS = [
    {"name": "id", "type": "bigint", "nullable": False},
    {"name": "status", "type": "string", "nullable": False},
    {"name": "started", "type": "timestamp", "nullable": False},
    {"name": "updated", "type": "timestamp", "nullable": False},
    {"name": "is_deleted", "type": "int", "nullable": False},
]
DDL = (
    "CREATE TABLE visits (id BIGINT PRIMARY KEY, status VARCHAR(8) NOT NULL, "
    "started DATETIME(6) NOT NULL, updated DATETIME(6) NOT NULL, "
    "is_deleted TINYINT NOT NULL DEFAULT 0)"
)
SOURCE_COLUMNS = [column["name"] for column in COLUMNS]


@dataclass
class Plant:
    """The MES database and the tenant that syncs it, on a simulated clock."""

    database: str
    home: Path
    zone: str
    deletes: Any = None
    lookback_hours: float = 0
    runs: int = 0

    def tenant(self) -> TenantConfig:
        extra: dict[str, Any] = {
            "mode": "merge",
            "cursor": "updated",
            "lookback_hours": self.lookback_hours,
        }
        if self.deletes is not None:
            extra["deletes"] = self.deletes
        source = {**mysql_source(self.database), "timezone": self.zone}
        table = table_dict("visits", COLUMNS, **extra)
        return make_tenant(self.home, [table], source=source)

    def sql(self, statement: str, rows: list[tuple[Any, ...]] | None = None) -> None:
        conn = pymysql.connect(
            host=MYSQL_HOST,
            port=MYSQL_PORT,
            user="root",
            password="",
            database=self.database,
            autocommit=True,
        )
        try:
            with conn.cursor() as cursor:
                if rows is None:
                    cursor.execute(statement)
                else:
                    cursor.executemany(statement, rows)
        finally:
            conn.close()

    def upsert(self, *rows: tuple[int, str, datetime, datetime]) -> None:
        """Rows as the MES writes them: naive wall times of the plant's zone."""
        self.sql(
            "REPLACE INTO visits (id, status, started, updated) "
            "VALUES (%s, %s, %s, %s)",
            [(i, s, _wall(a, self.zone), _wall(u, self.zone)) for i, s, a, u in rows],
        )

    def source(self) -> dict[int, dict[str, Any]]:
        conn = pymysql.connect(
            host=MYSQL_HOST,
            port=MYSQL_PORT,
            user="root",
            password="",
            database=self.database,
            cursorclass=pymysql.cursors.DictCursor,
        )
        try:
            with conn.cursor() as cursor:
                cursor.execute("SELECT * FROM visits")
                return {row["id"]: row for row in cursor.fetchall()}
        finally:
            conn.close()

    def sync(self, at: datetime) -> ReconcileResult:
        self.runs += 1
        tenant = self.tenant()
        table = tenant.table("visits")
        connector = connector_for(
            SourceType.MYSQL,
            Credentials(
                host=MYSQL_HOST, port=MYSQL_PORT, database=self.database, user="root"
            ),
        )
        day = production_day(_day_of(at, self.zone), self.zone)
        return stages.sync_table(
            self.home,
            tenant,
            table,
            day,
            connector,
            open_catalog(tenant),
            run_id=f"run{self.runs}",
            captured_at=at,
        ).reconcile

    def raw(self) -> Any:
        tenant = self.tenant()
        return open_catalog(tenant).load_table((tenant.raw_namespace, "visits"))

    def live(self) -> dict[int, dict[str, Any]]:
        """Raw's current rows, source columns only, naive times as written."""
        rows = live_rows(self.raw(), self.tenant().table("visits")).to_pylist()
        return {row["id"]: {name: row[name] for name in SOURCE_COLUMNS} for row in rows}

    def versions(self) -> list[dict[str, Any]]:
        data = (
            self.raw()
            .scan()
            .to_arrow()
            .sort_by([("id", "ascending"), (VALID_FROM, "ascending")])
        )
        return data.to_pylist()


def _wall(instant: datetime, zone: str) -> datetime:
    return instant.astimezone(ZoneInfo(zone)).replace(tzinfo=None)


def _day_of(instant: datetime, zone: str) -> date:
    return (instant.astimezone(ZoneInfo(zone)) - timedelta(days=1)).date()


def _expected_live(plant: Plant) -> dict[int, dict[str, Any]]:
    return {key: row for key, row in plant.source().items() if not row["is_deleted"]}


@pytest.fixture
def plant(tmp_path: Path, mysql_db: str) -> Iterator[Plant]:
    site = Plant(database=mysql_db, home=tmp_path, zone=CHICAGO)
    site.sql(DDL)
    yield site


T0 = datetime(2026, 11, 2, 12, tzinfo=UTC)


def _history(days: int, per_day: int) -> list[tuple[int, str, datetime, datetime]]:
    """`per_day` visits a day, each started and last updated within its day."""
    rows = []
    for day in range(days):
        for n in range(per_day):
            began = T0 + timedelta(days=day, minutes=37 * n + 5)
            rows.append((day * 100 + n, "RUN", began, began + timedelta(minutes=20)))
    return rows


def test_a_killed_first_load_is_retried_with_the_whole_table(
    plant: Plant, monkeypatch: pytest.MonkeyPatch
) -> None:
    plant.upsert(*_history(6, 10))
    real = iceberg.append_planned

    def die(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("worker killed before the commit")

    monkeypatch.setattr(iceberg, "append_planned", die)
    with pytest.raises(RuntimeError):
        plant.sync(T0 + timedelta(days=6))
    assert plant.raw().current_snapshot() is None  # created, never committed
    monkeypatch.setattr(iceberg, "append_planned", real)

    result = plant.sync(T0 + timedelta(days=6, hours=1))
    assert result.matched and result.source_rows == 60
    assert plant.live() == _expected_live(plant)


def test_days_skipped_while_paused_are_synced_by_the_next_run(plant: Plant) -> None:
    history = _history(5, 4)
    plant.upsert(*[row for row in history if row[3] < T0 + timedelta(days=1)])
    plant.sync(T0 + timedelta(days=1))
    before = len(plant.versions())
    # Three days pass with the DAG paused: new rows, and an old row moves on.
    plant.upsert(*[row for row in history if row[3] >= T0 + timedelta(days=1)])
    moved = (1, "DONE", history[1][2], T0 + timedelta(days=3, hours=2))
    plant.upsert(moved)

    plant.sync(T0 + timedelta(days=5))

    assert plant.live() == _expected_live(plant)
    # Only what changed is read again; the row that moved keeps both versions.
    assert len(plant.versions()) == before + 16 + 1
    states = [v["status"] for v in plant.versions() if v["id"] == 1]
    assert states == ["RUN", "DONE"]


def test_an_old_load_cleared_after_newer_days_never_reverts_a_row(
    plant: Plant,
) -> None:
    plant.upsert((1, "WAIT", T0, T0), (2, "WAIT", T0, T0))
    tenant = plant.tenant()
    table = tenant.table("visits")
    catalog = open_catalog(tenant)
    connector = connector_for(
        SourceType.MYSQL,
        Credentials(
            host=MYSQL_HOST, port=MYSQL_PORT, database=plant.database, user="root"
        ),
    )
    day = production_day(date(2026, 11, 2), CHICAGO)
    # Day 1: extracted and validated, then its load failed.
    old = stages.extract(
        tenant, table, day, connector, catalog, captured_at=T0 + timedelta(hours=1)
    )
    old_report = stages.validate(tenant, table, old, catalog, run_id="old")
    # Newer days run completely; the rows move on.
    plant.upsert((1, "RUN", T0, T0 + timedelta(hours=5)))
    plant.sync(T0 + timedelta(hours=6))
    plant.upsert(
        (1, "DONE", T0, T0 + timedelta(days=1)), (2, "RUN", T0, T0 + timedelta(days=1))
    )
    plant.sync(T0 + timedelta(days=1, hours=1))
    current = plant.live()

    # The old day is cleared: its load runs now, with its old extract.
    stages.load(tenant, table, old, old_report, catalog, run_id="old-retry")

    assert plant.live() == current == _expected_live(plant)
    assert [v["status"] for v in plant.versions() if v["id"] == 1] == [
        "WAIT",
        "RUN",
        "DONE",
    ]


@pytest.mark.parametrize("strategy", ["key_scan", "soft_delete"])
def test_a_source_delete_closes_the_row_at_its_deletion(
    plant: Plant, strategy: str
) -> None:
    plant.deletes = (
        "key_scan"
        if strategy == "key_scan"
        else {"column": "is_deleted", "values": [1]}
    )
    plant.upsert(*_history(2, 3))
    plant.sync(T0 + timedelta(days=2))
    gone_at = T0 + timedelta(days=2, hours=3)
    if strategy == "key_scan":
        plant.sql("DELETE FROM visits WHERE id = 101")
    else:
        plant.sql(
            "UPDATE visits SET is_deleted = 1, updated = %s WHERE id = 101",
            [(_wall(gone_at, CHICAGO),)],
        )
    result = plant.sync(T0 + timedelta(days=2, hours=4))

    assert result.matched
    assert 101 not in plant.live()
    assert plant.live() == _expected_live(plant)
    closing = [v for v in plant.versions() if v["id"] == 101][-1]
    assert closing[DELETED] is True
    # A soft delete is dated by its cursor; a key scan cannot know when the row
    # went, only that it was there at the previous sync and gone at this one:
    # the deletion begins just after the previous sync.
    previous_sync = T0 + timedelta(days=2)
    expected = previous_sync + timedelta(microseconds=1)
    assert closing[VALID_FROM] == (expected if strategy == "key_scan" else gone_at)


def test_a_delete_without_a_strategy_fails_naming_the_key_and_the_fix(
    plant: Plant,
) -> None:
    plant.upsert(*_history(2, 3))
    plant.sync(T0 + timedelta(days=2))
    plant.sql("DELETE FROM visits WHERE id = 2")

    with pytest.raises(ReconcileMismatch) as failure:
        plant.sync(T0 + timedelta(days=2, hours=1))
    message = str(failure.value)
    assert "{'id': 2}" in message and "deletes: key_scan" in message
    assert "table=visits" in message

    plant.deletes = "key_scan"  # the fix the message names; the rerun passes
    assert plant.sync(T0 + timedelta(days=2, hours=2)).matched
    assert plant.live() == _expected_live(plant)


def test_deleted_keys_are_looked_up_only_when_raw_counts_more_rows(
    plant: Plant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Raw's live rows are at most the rows its snapshot summary counts: a sync
    whose raw counts no more rows than the source holds cannot have a key gone
    from the source, and reads no raw file to look for one. Once raw counts
    more (a delete), the keys are looked up and the gone one named."""
    plant.upsert(*_history(2, 3))

    def no_scan(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("raw's live rows were read for the deleted-key check")

    with monkeypatch.context() as patched:
        patched.setattr(reconcile, "live_rows", no_scan)
        assert plant.sync(T0 + timedelta(days=2)).matched  # 6 rows, 6 in raw

    plant.sql("DELETE FROM visits WHERE id = 101")  # raw's 6 > the source's 5
    with pytest.raises(ReconcileMismatch) as failure:
        plant.sync(T0 + timedelta(days=2, hours=1))
    assert "{'id': 101}" in str(failure.value)


@pytest.mark.parametrize("zone", [CHICAGO, SEOUL])
def test_naive_local_clocks_west_and_east_of_utc(plant: Plant, zone: str) -> None:
    """Validity instants and the sync's bounds read the MES's wall time in its
    zone: a row committed late within the lookback is read by the next sync;
    one dated before the lookback is not (read as UTC, the bound would be
    hours off either way, and the test fails in both zones)."""
    plant.zone, plant.lookback_hours = zone, 1
    first = T0 + timedelta(hours=10)
    plant.upsert((1, "RUN", first, first))
    plant.sync(first + timedelta(minutes=5))
    (version,) = plant.versions()
    assert version[VALID_FROM] == first  # the wall time, read in the plant's zone

    late = first - timedelta(minutes=30)  # committed now, dated before the mark
    too_late = first - timedelta(minutes=90)
    plant.upsert((2, "RUN", late, late), (3, "RUN", too_late, too_late))
    assert plant.sync(first + timedelta(minutes=10)).matched
    assert set(plant.live()) == {1, 2}


def test_a_row_committed_during_the_sync_fails_it_naming_the_key(
    plant: Plant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row the extract could not see (committed after it read, dated before
    the capture) is named by the reconciliation; the next sync, whose range
    starts at raw's mark less the lookback, reads it."""
    plant.lookback_hours = 2
    plant.upsert(*_history(1, 3))
    plant.sync(T0 + timedelta(days=1))
    real = stages.load
    committed_late = T0 + timedelta(days=1, hours=1)

    def commit_then_load(*args: Any, **kwargs: Any) -> Any:
        plant.upsert((7, "RUN", committed_late, committed_late))
        return real(*args, **kwargs)

    monkeypatch.setattr(stages, "load", commit_then_load)
    with pytest.raises(ReconcileMismatch) as failure:
        plant.sync(T0 + timedelta(days=1, hours=2))
    assert "{'id': 7}" in str(failure.value)
    assert "lookback_hours" in str(failure.value)
    monkeypatch.setattr(stages, "load", real)

    assert plant.sync(T0 + timedelta(days=1, hours=3)).matched
    assert plant.live() == _expected_live(plant)


def test_the_same_source_synced_twice_adds_nothing(plant: Plant) -> None:
    plant.upsert(*_history(3, 5))
    plant.sync(T0 + timedelta(days=3))
    versions = plant.versions()
    plant.sync(T0 + timedelta(days=3, hours=1))
    assert plant.versions() == versions
    counts = pc.value_counts(plant.raw().scan().to_arrow().column("id"))
    assert max(item["counts"].as_py() for item in counts) == 1


def test_a_sync_ledgers_its_load_and_reconciliation_in_one_write(
    plant: Plant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sync task loads and reconciles in one process: its ledger gets one
    record (one Iceberg commit) with both. A reconciliation that raises still
    leaves the load's record, naming the snapshot the load committed."""
    plant.upsert(*_history(2, 3))
    plant.sync(T0 + timedelta(days=2))
    tenant = plant.tenant()
    catalog = open_catalog(tenant)
    ledger = catalog.load_table((tenant.raw_namespace, LEDGER_TABLE))
    (record,) = ledger.scan().to_arrow().to_pylist()  # one write, not two
    snapshot = plant.raw().current_snapshot()
    assert (record["run_id"], record["status"]) == ("run1", "reconciled")
    assert (record["rows_loaded"], record["source_rows"], record["raw_rows"]) == (
        6,
        6,
        6,
    )
    assert record["snapshot_id"] == snapshot.snapshot_id

    def source_gone(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the source went away during the reconciliation")

    plant.upsert((900, "RUN", T0 + timedelta(days=2), T0 + timedelta(days=2)))
    monkeypatch.setattr(stages, "reconcile", source_gone)
    with pytest.raises(RuntimeError, match="went away"):
        plant.sync(T0 + timedelta(days=2, hours=1))
    loaded = {r["run_id"]: r for r in read_ledger(catalog, tenant).to_pylist()}["run2"]
    snapshot = plant.raw().current_snapshot()
    assert (loaded["status"], loaded["source_rows"]) == ("loaded", None)
    assert loaded["snapshot_id"] == snapshot.snapshot_id
    assert loaded["rows_loaded"] == loaded["rows_accepted"] >= 1
