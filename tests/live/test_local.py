"""Backfill, reprocessing, clear-and-rerun, a sync's retry resuming from its
extract and twenty tenants at once, on a live scheduler with the LocalExecutor.

Each DAG has the default shape: `production_day`, a `sync.<table>` task per
table (extract → validate → load → reconcile in one process), then one dbt
build task per layer (`dbt_staging`, `dbt_marts`).

The deployment creates no scheduled runs here (`use_job_schedule` off): every
run is one the test asks for, so results can be compared exactly. Scheduled
runs are tested under Celery (test_celery.py).
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
import sqlite3
import time
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from mozart_etl.config.loader import load_tenant
from mozart_etl.core.calendar import production_day
from mozart_etl.core.lake import Lake
from mozart_etl.demo.generate import SourceSummary
from mozart_etl.factory.dag_factory import SHAPE_VAR, TABLES_SHAPE
from mozart_etl.load.catalog import open_catalog
from mozart_etl.pipeline.resume import RunMarkers
from tests.live.content import fingerprints, live_raw_rows
from tests.live.harness import TIMINGS, AirflowServices
from tests.live.tenants import (
    FULL,
    RAW,
    copy_tenant,
    create_shared_catalog,
    sync_sources,
    tenant_pools,
)

pytestmark = pytest.mark.live

TZ = "Asia/Seoul"
DAYS = (date(2026, 11, 17), date(2026, 11, 18), date(2026, 11, 19))
# Production days are Asia/Seoul dates: bounds with the offset say which runs.
BACKFILL = (
    "backfill",
    "create",
    "--dag-id",
    "bf",
    "--from-date",
    "2026-11-17T00:00:00+09:00",
    "--to-date",
    "2026-11-19T00:00:00+09:00",
    "--max-active-runs",
    "1",
)
FULL_TENANTS = ("bf", "rev", "clr", "clr_ref")
RESUMED = "rsm"
"""A tenant whose tasks retry once, 15 s after a failure (the others: never)."""
POOLED = {f"p{n:02d}": ("plant_a" if n <= 10 else "plant_b") for n in range(1, 21)}
SOURCE_POOLS = {"source_plant_a": 1, "source_plant_b": 2}
DOWN = "down"


@pytest.fixture(scope="module")
def local(
    live_dir: Path,
    templates: dict[str, Path],
    demo_source: SourceSummary,
    mozart_home_dir: Path,
) -> Iterator[tuple[AirflowServices, dict[str, Path]]]:
    tenants_dir = live_dir / "local_tenants"
    sources = live_dir / "sources"
    folders: dict[str, Path] = {}
    for tenant_id in FULL_TENANTS:
        source = sources / f"{tenant_id}.sqlite"
        shutil.copyfile(demo_source.path, source)
        folders[tenant_id] = copy_tenant(
            templates[FULL.name], FULL, tenants_dir, tenant_id, source=source
        )
    shutil.copyfile(demo_source.path, sources / f"{RESUMED}.sqlite")
    folders[RESUMED] = copy_tenant(
        templates[FULL.name],
        FULL,
        tenants_dir,
        RESUMED,
        source=sources / f"{RESUMED}.sqlite",
        # Long enough that no retry starts before every first attempt failed.
        schedule={"retries": 1, "retry_delay_minutes": 0.25},
    )
    for plant in ("plant_a", "plant_b"):
        shutil.copyfile(demo_source.path, sources / f"{plant}.sqlite")
    for tenant_id, plant in POOLED.items():
        folders[tenant_id] = copy_tenant(
            templates[RAW.name],
            RAW,
            tenants_dir,
            tenant_id,
            source=sources / f"{plant}.sqlite",
            source_pool=f"source_{plant}",
        )
    # A source that is not there (its folder does not exist): every run fails.
    folders[DOWN] = copy_tenant(
        templates[RAW.name],
        RAW,
        tenants_dir,
        DOWN,
        source=live_dir / "no_such_folder" / "plant.sqlite",
        alerting={"max_consecutive_failed_runs": 3},
    )
    sync_sources(tenants_dir)
    create_shared_catalog(folders[FULL_TENANTS[0]])
    pools = tenant_pools((*FULL_TENANTS, RESUMED, *POOLED, DOWN)) | SOURCE_POOLS
    services = AirflowServices(
        tenants_dir=tenants_dir,
        mozart_home=mozart_home_dir,
        pools=pools,
        env={
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            SHAPE_VAR: TABLES_SHAPE,  # the task ids below are this shape's
        },
    )
    with services:
        services.wait_for_dags(folders)
        yield services, folders


def test_backfill_equals_single_days_in_reverse(
    local: tuple[AirflowServices, dict[str, Path]], demo_source: SourceSummary
) -> None:
    airflow, folders = local
    airflow.set_paused("bf", False)
    airflow.set_paused("rev", False)

    started = time.monotonic()
    airflow.airflow(*BACKFILL)
    for day in reversed(DAYS):  # the same days, one by one, last first
        run_id = f"day_{day}"
        airflow.trigger("rev", run_id, conf={"production_day": day.isoformat()})
        airflow.wait_for_run("rev", run_id, timeout=400)
    runs = airflow.wait_for_runs("bf", 3, timeout=400)
    TIMINGS["backfill, 3 days"] = time.monotonic() - started

    assert {r["run_type"] for r in runs} == {"backfill"}
    assert {r["state"] for r in runs} == {"success"}
    # Each run's data interval is one production day, in order, never overlapping.
    runs.sort(key=lambda r: r["data_interval_start"])
    for run, day in zip(runs, DAYS, strict=True):
        window = production_day(day, TZ)
        assert _instant(run["data_interval_start"]) == window.start
        assert _instant(run["data_interval_end"]) == window.end
        assert _xcom_day(airflow, "bf", run["dag_run_id"]) == day.isoformat()
    for earlier, later in itertools.pairwise(runs):
        assert _instant(earlier["end_date"]) <= _instant(later["start_date"])

    backfilled = fingerprints(folders["bf"], FULL.tables, FULL.marts)
    assert backfilled == fingerprints(folders["rev"], FULL.tables, FULL.marts)
    # The first run syncs the whole history (the source as it stands), later
    # ones what changed since: raw's live rows are every source row, except
    # the broken rows validation quarantined.
    source = folders["bf"].parent.parent / "sources" / "bf.sqlite"
    quarantined = {tuple(key) for key in demo_source.bad_lot_history_keys}
    expected = [
        key
        for key in _source_keys_updated_before(source, DAYS[-1])
        if key not in quarantined
    ]
    loaded = live_raw_rows(folders["bf"], "lot_history").select(["lot_id", "step_seq"])
    assert sorted(zip(*loaded.to_pydict().values(), strict=True)) == expected


def test_reprocess_behaviours(local: tuple[AirflowServices, dict[str, Path]]) -> None:
    """`none` (the default) skips days that have a run; `completed` reruns them,
    and a rerun of a finished day changes nothing."""
    airflow, folders = local
    before = fingerprints(folders["bf"], FULL.tables, FULL.marts)
    airflow.wait_for_backfills("bf")
    runs_before = {r["dag_run_id"]: r["end_date"] for r in airflow.dag_runs("bf")}

    airflow.airflow(*BACKFILL, "--reprocess-behavior", "none")
    airflow.wait_for_backfills("bf")
    skipped = airflow.sql(
        "SELECT exception_reason, dag_run_id FROM backfill_dag_run "
        "WHERE backfill_id = (SELECT max(id) FROM backfill WHERE dag_id = 'bf')"
    )
    assert skipped == [("already exists", None)] * len(DAYS)
    assert {r["dag_run_id"]: r["end_date"] for r in airflow.dag_runs("bf")} == (
        runs_before
    )

    last_day = ("--from-date", "2026-11-19T00:00:00+09:00")
    rerun = (*BACKFILL[:4], *last_day, *BACKFILL[6:])
    airflow.airflow(*rerun, "--reprocess-behavior", "completed")
    airflow.wait_for_backfills("bf", timeout=400)
    runs = airflow.wait_for_runs("bf", 3, timeout=300)
    assert {r["state"] for r in runs} == {"success"}
    rerun_ids = {
        r["dag_run_id"] for r in runs if r["end_date"] != runs_before[r["dag_run_id"]]
    }
    assert rerun_ids == {"backfill__2026-11-19T15:00:00+00:00"}  # only the last day
    assert fingerprints(folders["bf"], FULL.tables, FULL.marts) == before


def test_clear_and_rerun_after_a_table_fails(
    local: tuple[AirflowServices, dict[str, Path]],
) -> None:
    airflow, folders = local
    day = DAYS[-1].isoformat()
    source = folders["clr"].parent.parent / "sources" / "clr.sqlite"
    _rename_table(source, "lot_history", "lot_history_moved")
    for tenant_id in ("clr", "clr_ref"):
        airflow.set_paused(tenant_id, False)
        airflow.trigger(tenant_id, "day", conf={"production_day": day})

    airflow.wait_for_run("clr", "day", state="failed", timeout=400)
    states = airflow.task_states("clr", "day")
    assert states["sync.lot_history"] == "failed"
    for task_id in ("dbt_staging", "dbt_marts"):
        assert states[task_id] == "upstream_failed", task_id
    for task_id in ("production_day", "sync.equipment"):
        assert states[task_id] == "success", task_id
    # The sync stopped at its extract: no later stage ran, nothing was loaded.
    failed = _task_log(airflow, "clr", "day", "sync.lot_history", 1)
    assert "[tenant=clr table=lot_history]" in failed  # the error names the table
    for stage_line in ("extracted clr.lot_history:", "validated clr.lot_history:"):
        assert stage_line not in failed
    assert ": loaded — " not in failed
    tenant = load_tenant(folders["clr"])
    assert not open_catalog(tenant).table_exists((tenant.raw_namespace, "lot_history"))
    # No complete extract to resume from: the rerun reads the source.
    assert RunMarkers(Lake(tenant), "day").complete_extract("lot_history") is None

    _rename_table(source, "lot_history_moved", "lot_history")
    airflow.airflow("dags", "clear", "clr", "--run-id", "day", "--only-failed", "--yes")
    airflow.wait_for_run("clr", "day", timeout=400)
    airflow.wait_for_run("clr_ref", "day", timeout=400)

    tries = airflow.sql(
        "SELECT task_id, try_number FROM task_instance "
        "WHERE dag_id = 'clr' AND run_id = 'day'"
    )
    tries_of = dict(tries)
    assert tries_of["sync.lot_history"] == 2  # cleared and rerun
    assert tries_of["sync.equipment"] == 1  # succeeded once, left alone
    rerun = _task_log(airflow, "clr", "day", "sync.lot_history", 2)
    assert "extracted clr.lot_history:" in rerun
    assert "resuming from extract" not in rerun
    assert _sync_xcom(airflow, "clr", "day", "lot_history")["resumed"] is False
    assert fingerprints(folders["clr"], FULL.tables, FULL.marts) == fingerprints(
        folders["clr_ref"], FULL.tables, FULL.marts
    )


def test_a_retried_sync_resumes_from_its_complete_extract(
    local: tuple[AirflowServices, dict[str, Path]],
) -> None:
    """An attempt that fails after its extract completed (here the load: the
    catalog refuses writes) leaves the extract's manifest in the lake; the
    scheduler's retry resumes from it and does not read the source again.
    (In the earlier shape the load was a task of its own, whose retry read
    the extract in the lake; the sync's retry keeps that.)"""
    airflow, folders = local
    tenant = load_tenant(folders[RESUMED])
    day = DAYS[-1]
    catalog = open_catalog(tenant)  # its tables exist before the lock below
    database = Path(str(tenant.iceberg.catalog.uri).removeprefix("sqlite:///"))
    syncs = [f"sync.{table}" for table in FULL.tables]
    with _write_locked(database):
        airflow.set_paused(RESUMED, False)
        airflow.trigger(RESUMED, "resume", conf={"production_day": day.isoformat()})
        # Each sync extracts (the catalog can be read), then its load cannot
        # write: the attempt fails after a few seconds and waits for its retry.
        _wait_until_each_was(airflow, RESUMED, "resume", syncs, "up_for_retry")
    airflow.wait_for_run(RESUMED, "resume", timeout=400)

    tries = dict(
        airflow.sql(
            "SELECT task_id, try_number FROM task_instance "
            "WHERE dag_id = %s AND run_id = 'resume'",
            (RESUMED,),
        )
    )
    lake, markers = Lake(tenant), RunMarkers(Lake(tenant), "resume")
    for table in FULL.tables:
        assert tries[f"sync.{table}"] == 2, tries
        synced = _sync_xcom(airflow, RESUMED, "resume", table)
        assert synced["resumed"] is True, table
        extract = synced["extract"]
        first = _task_log(airflow, RESUMED, "resume", f"sync.{table}", 1)
        retry = _task_log(airflow, RESUMED, "resume", f"sync.{table}", 2)
        # The first attempt read the source and failed writing raw ...
        assert f"extracted {RESUMED}.{table}: {extract['rows']} rows" in first
        assert "database is locked" in first
        assert ": loaded — " not in first
        # ... the retry took its extract and read no source rows.
        assert (
            f"resuming from extract {extract['extract_id']} of an earlier attempt "
            f"({extract['rows']} rows, complete); the source is not read again"
        ) in retry
        assert f"extracted {RESUMED}.{table}:" not in retry
        assert synced["validate"]["extract_id"] == extract["extract_id"]
        ledger = synced["load"]["ledger"]
        assert (ledger["status"], ledger["run_id"]) == ("loaded", "resume")
        assert ledger["extract_id"] == extract["extract_id"]
        assert synced["reconcile"]["matched"] is True
        # One extract in the lake for the day: the source was read once.
        folders_of_day = sorted(Path(lake.day_folder(table, day)).glob("extract=*"))
        assert [str(folder) for folder in folders_of_day] == [extract["folder"]]
        assert markers.complete_extract(table) is None  # forgotten once done
        loaded = live_raw_rows(folders[RESUMED], table).num_rows
        assert loaded == extract["rows"] - synced["validate"]["quarantined"], table
    assert catalog.table_exists((tenant.raw_namespace, "lot_history"))


def test_twenty_tenants_share_source_pools(
    local: tuple[AirflowServices, dict[str, Path]],
) -> None:
    airflow, folders = local
    day = DAYS[-1].isoformat()
    started = time.monotonic()
    for tenant_id in POOLED:
        airflow.set_paused(tenant_id, False)
        airflow.trigger(tenant_id, "together", conf={"production_day": day})
    for tenant_id in POOLED:
        airflow.wait_for_run(tenant_id, "together", timeout=500)
    TIMINGS["twenty tenants"] = time.monotonic() - started

    rows = airflow.sql(
        "SELECT dag_id, pool, start_date, end_date FROM task_instance "
        "WHERE run_id = 'together' AND task_id = 'sync.equipment'"
    )
    assert len(rows) == len(POOLED)
    for dag_id, pool, _, _ in rows:
        assert pool == f"source_{POOLED[dag_id]}", dag_id
    peaks = {
        pool: _peak_concurrency([(s, e) for _, p, s, e in rows if p == pool])
        for pool in SOURCE_POOLS
    }
    TIMINGS.update({f"peak {pool}": float(peak) for pool, peak in peaks.items()})
    for pool, slots in SOURCE_POOLS.items():
        assert 1 <= peaks[pool] <= slots, (pool, peaks)
    # Every tenant loaded the plant's equipment table, whole.
    expected = _source_count(folders["p01"].parent.parent / "sources", "equipment")
    for tenant_id in POOLED:
        assert live_raw_rows(folders[tenant_id], "equipment").num_rows == expected


def test_a_source_down_for_three_runs_pauses_the_dag(
    local: tuple[AirflowServices, dict[str, Path]],
) -> None:
    """Scenario 15 of the reliability matrix under the real scheduler: the DAG
    pauses itself once its last three runs failed (`max_consecutive_failed_runs`),
    not before."""
    airflow, _ = local
    airflow.set_paused(DOWN, False)
    paused_after: list[bool] = []
    for number, day in enumerate(DAYS, start=1):
        run_id = f"down_{number}"
        airflow.trigger(DOWN, run_id, conf={"production_day": day.isoformat()})
        airflow.wait_for_run(DOWN, run_id, state="failed", timeout=300)
        paused_after.append(airflow.api("GET", f"/dags/{DOWN}").json()["is_paused"])
    assert paused_after == [False, False, True]
    states = airflow.sql(
        "SELECT state FROM task_instance WHERE dag_id = %s AND task_id = %s",
        (DOWN, "sync.equipment"),
    )
    assert sorted(state for (state,) in states) == ["failed"] * 3


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _xcom_day(airflow: AirflowServices, dag_id: str, run_id: str) -> str:
    path = (
        f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/production_day"
        "/xcomEntries/return_value"
    )
    value: Any = airflow.api("GET", path, params={"deserialize": True}).json()["value"]
    return str(value["production_day"])


def _task_log(
    airflow: AirflowServices, dag_id: str, run_id: str, task_id: str, attempt: int
) -> str:
    folder = airflow.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
    return (folder / f"task_id={task_id}" / f"attempt={attempt}.log").read_text()


def _sync_xcom(
    airflow: AirflowServices, dag_id: str, run_id: str, table: str
) -> dict[str, Any]:
    """A sync task's return value: each stage's result, and `resumed`."""
    path = (
        f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/sync.{table}"
        "/xcomEntries/return_value"
    )
    params = {"deserialize": True, "stringify": False}
    return dict(airflow.api("GET", path, params=params).json()["value"])


def _wait_until_each_was(
    airflow: AirflowServices,
    dag_id: str,
    run_id: str,
    task_ids: Iterable[str],
    state: str,
    timeout: float = 300,
) -> None:
    """Until each task was seen in `state` (not necessarily at once); fail at
    once if one ended before (failed for good, or succeeded)."""
    waiting = set(task_ids)
    deadline = time.monotonic() + timeout
    states: dict[str, str | None] = {}
    while time.monotonic() < deadline:
        states = airflow.task_states(dag_id, run_id)
        waiting -= {task for task in waiting if states.get(task) == state}
        if not waiting:
            return
        ended = {
            task: states[task]
            for task in waiting
            if states.get(task) in ("success", "failed", "upstream_failed")
        }
        assert not ended, f"{dag_id}/{run_id}: expected {state}, got {ended}"
        time.sleep(0.5)
    raise AssertionError(f"{dag_id}/{run_id}: {sorted(waiting)} not {state}: {states}")


@contextlib.contextmanager
def _write_locked(database: Path) -> Iterator[None]:
    """Hold a SQLite database's write lock: readers go on, a writer waits for
    its busy timeout and then fails ('database is locked')."""
    conn = sqlite3.connect(database, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def _rename_table(source: Path, old: str, new: str) -> None:
    with sqlite3.connect(source) as conn:
        conn.execute(f'ALTER TABLE "{old}" RENAME TO "{new}"')


def _source_keys_updated_before(source: Path, last: date) -> list[tuple[str, int]]:
    end = production_day(last, TZ).end.strftime("%Y-%m-%d %H:%M:%S")
    with sqlite3.connect(source) as conn:
        rows = conn.execute(
            "SELECT lot_id, step_seq FROM lot_history "
            "WHERE substr(updated_at, 1, 19) < ?",
            (end,),
        ).fetchall()
    return sorted((str(lot), int(seq)) for lot, seq in rows)


def _source_count(sources: Path, table: str) -> int:
    with sqlite3.connect(sources / "plant_a.sqlite") as conn:
        return int(conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])


def _peak_concurrency(spans: list[tuple[datetime, datetime]]) -> int:
    """The most task instances running at one instant."""
    events = sorted(
        [(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans],
        key=lambda event: (event[0], event[1]),
    )
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak
