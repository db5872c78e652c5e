"""1. SIGKILL of the extract after N Parquet files, then Airflow's retry.

The child process runs the real extract task (PostgreSQL COPY into rolling
Parquet files of 5,000 rows) and is killed once N files exist. Its folder has
no manifest, so no later stage can read it; the retry extracts, validates,
loads and reconciles the whole table.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest

from mozart_etl.core.lake import MANIFEST, Lake, latest_manifest
from mozart_etl.load.catalog import open_catalog
from mozart_etl.ops.sweep import sweep_tenant
from tests.helpers import postgres_source, table_dict, tenant_dict
from tests.reliability.chaos import Recorder, lake_orphans, raw_figures
from tests.reliability.pipeline import child_command, run_table, tenant_of, write_tenant

DAY = date(2026, 11, 15)
ROWS = 80_000
COLUMNS = [
    {"name": "id", "type": "bigint", "nullable": False},
    {"name": "note", "type": "string"},
    {"name": "at", "type": "timestamptz"},
]
# The task's extract, with small files, each finished 50 ms late, so the kill
# lands between files (80k rows in 16 files took 0.23 s unslowed: a fast run
# could write its manifest before the test saw the N-th file).
SMALL_FILES = """
import runpy, sys, time
from mozart_etl.core import parquet
from mozart_etl.extract import extractor
full = extractor.extract_table
extractor.extract_table = lambda *a, **k: full(*a, **{**k, "rows_per_file": 5_000})
finish = parquet.RollingParquetWriter._finish_file
def slow_finish(self):
    finish(self)
    time.sleep(0.05)
parquet.RollingParquetWriter._finish_file = slow_finish
runpy.run_module("tests.reliability.pipeline", run_name="__main__")
"""


def _source(database: str) -> None:
    conninfo = f"host=127.0.0.1 port=5432 user=postgres dbname={database}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("CREATE TABLE big (id bigint, note text, at timestamptz)")
        conn.execute(
            "INSERT INTO big SELECT g, 'note ' || g, now() "
            f"FROM generate_series(1, {ROWS}) AS g"
        )


@pytest.mark.parametrize("files", [1, 6])
def test_killed_extract_leaves_nothing_visible_and_the_retry_loads_once(
    tmp_path: Path, postgres_db: str, files: int, chaos: Recorder
) -> None:
    chaos.name(f"1. extract SIGKILL after {files} Parquet file(s), retry")
    _source(postgres_db)
    data = tenant_dict(
        tmp_path, [table_dict("big", COLUMNS)], source=postgres_source(postgres_db)
    )
    folder = write_tenant(tmp_path / "tenants", data)
    tenant = tenant_of(folder)
    day_folder = Path(Lake(tenant).day_folder("big", DAY))

    command = child_command(folder, "big", DAY, "run-1", ("extract",))
    child = subprocess.Popen(
        [sys.executable, "-c", SMALL_FILES, *command[3:]], cwd=Path.cwd()
    )
    try:
        deadline = time.monotonic() + 120
        while len(list(day_folder.glob("extract=*/part-*.parquet"))) < files:
            assert child.poll() is None, "the extract ended before it was killed"
            assert time.monotonic() < deadline
            time.sleep(0.005)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()

    assert child.returncode == -signal.SIGKILL
    (dead,) = day_folder.glob("extract=*")
    assert len(list(dead.glob("part-*.parquet"))) >= files
    assert not (dead / MANIFEST).exists()
    with pytest.raises(FileNotFoundError):
        latest_manifest(Lake(tenant), "big", DAY)

    out = run_table(folder, "big", DAY, "run-1")  # the retry: all stages

    assert out["reconcile"]["source_rows"] == ROWS
    assert out["reconcile"]["raw_rows"] == ROWS
    assert (
        latest_manifest(Lake(tenant), "big", DAY).extract_id
        == (out["extract"]["extract_id"])
    )
    lost, dups = raw_figures(
        open_catalog(tenant),
        ("acme_raw", "big"),
        ["id"],
        [(i,) for i in range(1, ROWS + 1)],
    )
    left = lake_orphans(day_folder)
    assert left >= files  # the dead attempt's parts, unread

    # `mozart sweep` removes the dead folder and nothing a reader uses.
    current = latest_manifest(Lake(tenant), "big", DAY)
    swept = sweep_tenant(tenant, grace=timedelta(0))
    assert swept.lake_folders == [str(dead)] and swept.lake_files == left
    assert not dead.exists() and lake_orphans(day_folder) == 0
    assert latest_manifest(Lake(tenant), "big", DAY) == current
    assert raw_figures(
        open_catalog(tenant),
        ("acme_raw", "big"),
        ["id"],
        [(i,) for i in range(1, ROWS + 1)],
    ) == (0, 0)
    chaos.record(
        lost=lost, dups=dups, orphans=0, cause=f"{left} dead files swept by sweep"
    )
    assert (lost, dups) == (0, 0)
