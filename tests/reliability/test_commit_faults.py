"""3. A commit whose response is lost; 4. concurrent commits from several
processes; 5. two attempts of the same task at once.

Every commit tags its snapshot with the extract id (`mozart.extract-id`): a
retry whose commit already landed finds it and writes nothing.
"""

from __future__ import annotations

import subprocess
from datetime import date, timedelta
from pathlib import Path

import pytest
from pyiceberg.catalog.sql import SqlCatalog

from mozart_etl.load.catalog import open_catalog
from mozart_etl.load.iceberg import EXTRACT_PROPERTY
from mozart_etl.load.ledger import read_ledger
from mozart_etl.ops.sweep import sweep_tenant
from tests.reliability.chaos import Recorder, iceberg_orphans, raw_figures
from tests.reliability.lots import (
    DAYS,
    KEY,
    add_sqlite_rows,
    all_rows,
    keys,
    rows_for,
    sqlite_lots_tenant,
)
from tests.reliability.pipeline import child_command, run_table, tenant_of

RAW = ("acme_raw", "lots")


class ResponseLost(ConnectionError):
    """The catalog committed, then the connection dropped before the answer."""


@pytest.mark.parametrize("mode", ["incremental", "merge"])
def test_a_commit_whose_response_is_lost_lands_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, chaos: Recorder
) -> None:
    chaos.name(f"3. commit lands, response lost ({mode}): retry writes nothing")
    rows = all_rows(DAYS[:2])
    first, second = rows_for(DAYS[0]), rows_for(DAYS[1])
    folder = sqlite_lots_tenant(tmp_path, first, mode)
    run_table(folder, "lots", DAYS[0], "day-1")
    add_sqlite_rows(tmp_path / "source.sqlite", second)  # the MES writes on
    out = run_table(folder, "lots", DAYS[1], "day-2", stages=("extract", "validate"))
    # The sync reads from raw's mark on: day 1's last row again, and day 2's.
    assert out["extract"]["rows"] == 1 + len(second)
    catalog = open_catalog(tenant_of(folder))
    snapshots_before = len(catalog.load_table(RAW).snapshots())

    original = SqlCatalog.commit_table
    lost_answers: list[str] = []

    def commit_then_drop(self: SqlCatalog, table, requirements, updates):  # type: ignore[no-untyped-def]
        response = original(self, table, requirements, updates)
        if table.name() == RAW and not lost_answers:
            lost_answers.append("lost")
            raise ResponseLost("server closed the connection after COMMIT")
        return response

    monkeypatch.setattr(SqlCatalog, "commit_table", commit_then_drop)
    with pytest.raises(ResponseLost):
        run_table(folder, "lots", DAYS[1], "day-2", manifest=out["extract"])
    monkeypatch.undo()
    landed = catalog.load_table(RAW).snapshots()
    assert len(landed) > snapshots_before  # the commit did land

    retry = run_table(folder, "lots", DAYS[1], "day-2", manifest=out["extract"])

    table = catalog.load_table(RAW)
    assert len(table.snapshots()) == len(landed)  # the retry committed nothing
    tagged = {
        s.snapshot_id
        for s in table.snapshots()
        if (s.summary or {}).get(EXTRACT_PROPERTY) == out["extract"]["extract_id"]
    }
    assert tagged and table.current_snapshot().snapshot_id in tagged
    assert retry["reconcile"]["source_rows"] == retry["reconcile"]["raw_rows"] == 41
    ledger = [
        r
        for r in read_ledger(catalog, tenant_of(folder)).to_pylist()
        if r["run_id"] == "day-2"
    ]
    assert [r["status"] for r in ledger] == ["reconciled"]
    lost, dups = raw_figures(catalog, RAW, KEY, keys(rows))
    chaos.record(
        lost=lost,
        dups=dups,
        orphans=iceberg_orphans(catalog, RAW),
        cause=ResponseLost.__name__,
    )
    assert (lost, dups) == (0, 0)


def test_concurrent_commits_from_several_processes_all_land(
    tmp_path: Path, chaos: Recorder
) -> None:
    chaos.name("4c. four processes commit four days to one table at once")
    rows = all_rows()
    folder = sqlite_lots_tenant(tmp_path, rows_for(DAYS[0]), "incremental")
    run_table(folder, "lots", DAYS[0], "day-0")  # creates the table
    # Four more days reach the source; four runs sync them at once, each from
    # raw's mark: the same new versions, appended by whichever commits first.
    add_sqlite_rows(tmp_path / "source.sqlite", all_rows(DAYS[1:]))

    children = [
        subprocess.Popen(
            child_command(folder, "lots", day, f"run-{day}"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for day in DAYS[1:]
    ]
    failed: list[tuple[date, str]] = []
    for day, child in zip(DAYS[1:], children, strict=True):
        _, err = child.communicate(timeout=300)
        if child.returncode != 0:
            failed.append((day, err.strip().splitlines()[-1]))
    # A process that lost the race failed with a clear error; Airflow retries it.
    for day, error in failed:
        assert "LoadError" in error and "previous snapshot stays current" in error
        run_table(folder, "lots", day, f"run-{day}")

    catalog = open_catalog(tenant_of(folder))
    lost, dups = raw_figures(catalog, RAW, KEY, keys(rows))
    chaos.record(
        lost=lost,
        dups=dups,
        orphans=iceberg_orphans(catalog, RAW),
        cause=f"{len(failed)} retried (LoadError)" if failed else "none failed",
    )
    assert (lost, dups) == (0, 0)


@pytest.mark.parametrize("mode", ["incremental", "merge"])
def test_two_attempts_of_the_same_run_at_once(
    tmp_path: Path, mode: str, chaos: Recorder
) -> None:
    chaos.name(f"5. two attempts of one task run at once ({mode})")
    rows = all_rows(DAYS[:2])
    folder = sqlite_lots_tenant(tmp_path, rows_for(DAYS[0]), mode)
    run_table(folder, "lots", DAYS[0], "day-0")
    add_sqlite_rows(tmp_path / "source.sqlite", rows_for(DAYS[1]))

    attempts = [
        subprocess.Popen(
            child_command(folder, "lots", DAYS[1], "day-1"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    errors = []
    for attempt in attempts:
        _, err = attempt.communicate(timeout=300)
        if attempt.returncode != 0:
            errors.append(err.strip().splitlines()[-1])
    for error in errors:  # the stale one may lose the race, clearly
        assert "LoadError" in error, error
    if len(errors) == len(attempts):
        run_table(folder, "lots", DAYS[1], "day-1")

    catalog = open_catalog(tenant_of(folder))
    lost, dups = raw_figures(catalog, RAW, KEY, keys(rows))
    # The refused attempt removed its data files; `mozart sweep` finds any left.
    left = iceberg_orphans(catalog, RAW)
    sweep_tenant(tenant_of(folder), grace=timedelta(0))
    assert raw_figures(catalog, RAW, KEY, keys(rows)) == (lost, dups)
    outcome = f"{len(errors)} attempt(s) refused (LoadError)" if errors else "both ok"
    chaos.record(
        lost=lost,
        dups=dups,
        orphans=iceberg_orphans(catalog, RAW),
        cause=f"{outcome}; {left} dead files swept",
    )
    assert (lost, dups) == (0, 0)
