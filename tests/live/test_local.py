"""Backfill, reprocessing, clear-and-rerun and twenty tenants at once, on a live
scheduler with the LocalExecutor.

The deployment creates no scheduled runs here (`use_job_schedule` off): every
run is one the test asks for, so results can be compared exactly. Scheduled
runs are tested under Celery (test_celery.py).
"""

from __future__ import annotations

import itertools
import shutil
import sqlite3
import time
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from mozart_etl.calendar import production_day
from mozart_etl.demo.generate import SourceSummary
from tests.live.content import fingerprints, live_raw_rows
from tests.live.harness import TIMINGS, AirflowServices
from tests.live.tenants import FULL, RAW, copy_tenant, sync_sources, tenant_pools

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
    pools = (
        tenant_pools(FULL_TENANTS, dbt=True)
        | tenant_pools((*POOLED, DOWN), dbt=False)
        | SOURCE_POOLS
    )
    services = AirflowServices(
        tenants_dir=tenants_dir,
        mozart_home=mozart_home_dir,
        pools=pools,
        env={"AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False"},
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
    assert states["lot_history.extract"] == "failed"
    for task_id in (
        "lot_history.validate",
        "lot_history.load",
        "lot_history.reconcile",
        "dbt_staging.stg_lot_history.run",
        "dbt_marts.mart_cycle_time.run",
    ):
        assert states[task_id] == "upstream_failed", task_id
    for task_id in ("production_day", "equipment.extract", "equipment.load"):
        assert states[task_id] == "success", task_id

    _rename_table(source, "lot_history_moved", "lot_history")
    airflow.airflow("dags", "clear", "clr", "--run-id", "day", "--only-failed", "--yes")
    airflow.wait_for_run("clr", "day", timeout=400)
    airflow.wait_for_run("clr_ref", "day", timeout=400)

    tries = airflow.sql(
        "SELECT task_id, try_number FROM task_instance "
        "WHERE dag_id = 'clr' AND run_id = 'day'"
    )
    tries_of = dict(tries)
    assert tries_of["lot_history.extract"] == 2  # cleared and rerun
    assert tries_of["equipment.extract"] == 1  # succeeded once, left alone
    assert fingerprints(folders["clr"], FULL.tables, FULL.marts) == fingerprints(
        folders["clr_ref"], FULL.tables, FULL.marts
    )


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
        "WHERE run_id = 'together' AND task_id = 'equipment.extract'"
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
        (DOWN, "equipment.extract"),
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
