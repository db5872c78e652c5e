"""Extract: our PostgreSQL extractor against the COPY floor and pandas.

`python -m bench extract` builds a lot_history-like table (13 columns: text,
int, bigint, numeric(10,2), timestamptz, date, bool) of 1M and 5M rows in a
scratch PostgreSQL database, then times, each in a fresh process:

- floor: psycopg binary `COPY (SELECT …) TO STDOUT` drained to nothing;
- ours: `extract_table` (COPY fast path → zstd Parquet lake + manifest);
- pandas: `pandas.read_sql` + `to_parquet` (what SqlToS3Operator does), at 5M
  only when MOZART_BENCH_PANDAS_5M=1 (it needs ~7 GB and ~90 s).

Each contender is timed three ways in its process: whole (with its imports:
ours imports pydantic, SQLAlchemy, pyarrow and psycopg, 0.4-0.7 s on 2 cores;
the floor only psycopg, ~0.1 s); as an Airflow task pays it (`as_task_s`: from
the point where it has loaded what a task process has loaded before the task's
callable runs, having parsed the DAG file: SQLAlchemy with its PostgreSQL
dialect, pydantic, our config; ratio to the floor's whole process); and from
the end of all its imports (`after_imports_s`). Contenders alternate, five
times each; the table shows the fastest run of each (`x_floor`: best over best)
and the ratio of the medians (`x_floor_median`, the issue's yardstick), peak
RSS is the highest of the runs. The database is dropped afterwards.

Settings: MOZART_BENCH_PG (libpq conninfo, default `host=127.0.0.1 port=5432
user=postgres`), MOZART_BENCH_SIZES (default `1000000,5000000`),
MOZART_BENCH_REPEATS (default 5).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import shutil
import tempfile
import uuid
from collections.abc import Callable
from datetime import date
from pathlib import Path
from statistics import median
from typing import Any

from bench.common import _child, fastest, imports_done, report, task_starts

log = logging.getLogger("bench")

CONNINFO = os.environ.get("MOZART_BENCH_PG", "host=127.0.0.1 port=5432 user=postgres")
SIZES = [
    int(n) for n in os.environ.get("MOZART_BENCH_SIZES", "1000000,5000000").split(",")
]
REPEATS = int(os.environ.get("MOZART_BENCH_REPEATS", "5"))

DDL = """
CREATE TABLE lot_history (
    id bigint PRIMARY KEY, lot_id text, plant text, line_no integer,
    step_no integer, equipment text, operator text, qty_in bigint,
    qty_out bigint, unit_price numeric(10, 2), started_at timestamptz,
    work_date date, is_rework boolean
)"""
FILL = """
INSERT INTO lot_history
SELECT g, 'LOT-' || lpad(g::text, 9, '0'), 'P' || (g %% 7), g %% 40, g %% 250,
    'EQ-' || (g %% 997), '작업자-' || (g %% 131), g * 3,
    CASE WHEN g %% 17 = 0 THEN NULL ELSE g * 3 - (g %% 5) END,
    ((g %% 100000) / 100.0)::numeric(10, 2),
    timestamptz '2026-01-01 00:00:00+00' + g * interval '17 seconds',
    date '2026-01-01' + (g %% 300), g %% 11 = 0
FROM generate_series(1, %s) AS g"""
COLUMNS: list[dict[str, Any]] = [
    {"name": "id", "type": "bigint", "nullable": False},
    {"name": "lot_id", "type": "string"},
    {"name": "plant", "type": "string"},
    {"name": "line_no", "type": "int"},
    {"name": "step_no", "type": "int"},
    {"name": "equipment", "type": "string"},
    {"name": "operator", "type": "string"},
    {"name": "qty_in", "type": "bigint"},
    {"name": "qty_out", "type": "bigint"},
    {"name": "unit_price", "type": "decimal", "precision": 10, "scale": 2},
    {"name": "started_at", "type": "timestamptz"},
    {"name": "work_date", "type": "date"},
    {"name": "is_rework", "type": "boolean"},
]
SELECT = f"SELECT {', '.join(c['name'] for c in COLUMNS)} FROM {{table}}"


def _psycopg(database: str) -> Any:
    import psycopg

    return psycopg.connect(f"{CONNINFO} dbname={database}", autocommit=True)


def create_tables(database: str, sizes: list[int]) -> None:
    with _psycopg("postgres") as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    with _psycopg(database) as conn:
        for rows in sizes:
            conn.execute(DDL.replace("lot_history", f"lot_history_{rows}"))
            fill = FILL.replace("lot_history", f"lot_history_{rows}")
            conn.execute(fill, (rows,))
            conn.execute(f"VACUUM ANALYZE lot_history_{rows}")


def drop_database(database: str) -> None:
    with _psycopg("postgres") as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def floor(database: str, table: str) -> int:
    """Binary COPY of the same columns, drained to nothing."""
    import psycopg  # noqa: F401 (imported before the clock's second mark)

    imports_done()
    with _psycopg(database) as conn, conn.cursor() as cursor:
        statement = f"COPY ({SELECT.format(table=table)}) TO STDOUT (FORMAT binary)"
        with cursor.copy(statement) as copy:
            return sum(len(data) for data in copy)


def ours(database: str, table: str, workdir: str) -> int:
    # What an Airflow task process has loaded when the extract task's callable
    # starts, having parsed the DAG file (tests/factory/test_task_process.py);
    # pyarrow, numpy and psycopg are not among them: the task imports them.
    import sqlalchemy.dialects.postgresql  # noqa: F401

    from mozart_etl.config.models import TenantConfig

    task_starts()
    from mozart_etl.core.calendar import production_day
    from mozart_etl.extract.connectors import Credentials, connector_for
    from mozart_etl.extract.extractor import extract_table

    imports_done()
    settings = dict(part.split("=", 1) for part in CONNINFO.split())
    tenant = TenantConfig.model_validate(
        {
            "tenant_id": "bench",
            "source": {
                "type": "postgresql",
                "host": settings.get("host", "127.0.0.1"),
                "port": int(settings.get("port", 5432)),
                "user": settings.get("user", "postgres"),
                "database": database,
            },
            "storage": {"lake_root": f"{workdir}/lake"},
            "iceberg": {"catalog": {"warehouse": f"{workdir}/iceberg"}},
            "dbt": {"duckdb_path": f"{workdir}/warehouse.duckdb"},
            "schedule": {"start_date": "2026-01-01"},
            "tables": [
                {
                    "name": "lot_history",
                    "source": {"table": table},
                    "primary_key": ["id"],
                    "columns": COLUMNS,
                }
            ],
        }
    )
    connector = connector_for(
        tenant.source.type, Credentials.from_settings(tenant.source)
    )
    day = production_day(date(2026, 1, 1), "UTC")
    manifest = extract_table(
        tenant, tenant.table("lot_history"), day, connector, window=None
    )
    return sum(f.bytes for f in manifest.files)


def pandas(database: str, table: str, workdir: str) -> int:
    import pandas as pd
    import sqlalchemy as sa

    imports_done()
    settings = dict(part.split("=", 1) for part in CONNINFO.split())
    url = sa.URL.create(
        "postgresql+psycopg",
        username=settings.get("user"),
        host=settings.get("host"),
        port=int(settings.get("port", 5432)),
        database=database,
    )
    engine = sa.create_engine(url)
    frame = pd.read_sql(SELECT.format(table=table), engine)
    path = Path(workdir) / "pandas.parquet"
    frame.to_parquet(path, compression="zstd")
    engine.dispose()
    return path.stat().st_size


def main() -> None:
    database = f"mozart_bench_{uuid.uuid4().hex[:8]}"
    workdir = tempfile.mkdtemp(prefix="mozart-bench-extract-")
    log.info("bench extract: building %s in %s", SIZES, database)
    rows_out: list[dict[str, Any]] = []
    try:
        create_tables(database, SIZES)
        for size in SIZES:
            rows_out += _one_size(database, size, workdir)
    finally:
        drop_database(database)
        shutil.rmtree(workdir, ignore_errors=True)
    report("extract", rows_out)


def measure(fn: Callable[..., Any], *args: Any) -> dict[str, Any]:
    """bench.common.measure, but a child that dies without reporting (killed by
    a neighbour, a crash) is retried once instead of blocking forever."""
    for attempt in (1, 2):
        ctx = mp.get_context("spawn")
        results: mp.Queue = ctx.Queue()
        process = ctx.Process(target=_child, args=(fn, args, results))
        process.start()
        while True:
            try:
                outcome = results.get(timeout=1)
                break
            except queue.Empty:
                if not process.is_alive():
                    outcome = None
                    break
        process.join()
        if outcome is not None and process.exitcode == 0:
            log.info(
                "  %s: %.3f s, %.0f MB",
                fn.__name__,
                outcome["seconds"],
                outcome["peak_rss_mb"],
            )
            return outcome
        log.warning(
            "%s child exited %s (attempt %d)", fn.__name__, process.exitcode, attempt
        )
    raise RuntimeError(f"benchmark child for {fn.__name__} failed twice")


FLOOR, OURS = "floor: binary COPY → /dev/null", "ours: extract_table → Parquet"


def _one_size(database: str, size: int, workdir: str) -> list[dict[str, Any]]:
    table = f"lot_history_{size}"
    runs: dict[str, list[dict[str, Any]]] = {FLOOR: [], OURS: []}
    # Interleaved repeats: the machine's noise hits every contender alike.
    for _ in range(REPEATS):
        runs[FLOOR].append(measure(floor, database, table))
        runs[OURS].append(measure(ours, database, table, workdir))
    pandas_name = "pandas.read_sql + to_parquet"
    if size <= 1_000_000 or os.environ.get("MOZART_BENCH_PANDAS_5M") == "1":
        runs[pandas_name] = [measure(pandas, database, table, workdir)]
    floor_best = fastest(runs[FLOOR])
    floor_median = median(run["seconds"] for run in runs[FLOOR])
    out = []
    for name, measured in runs.items():
        best = fastest(measured)
        out.append(
            {
                "rows": size,
                "contender": name,
                "seconds": best["seconds"],
                "rows_per_s": round(size / best["seconds"]),
                "peak_rss_mb": round(max(run["peak_rss_mb"] for run in measured)),
                "x_floor": round(best["seconds"] / floor_best["seconds"], 2),
                "x_floor_median": round(
                    median(run["seconds"] for run in measured) / floor_median, 2
                ),
                "after_imports_s": round(best["work_seconds"], 3),
                "x_floor_after_imports": round(
                    best["work_seconds"] / floor_best["work_seconds"], 2
                ),
                "as_task_s": round(best["task_seconds"], 3),
                "x_floor_as_task": round(
                    best["task_seconds"] / floor_best["seconds"], 2
                ),
                "x_floor_as_task_median": round(
                    median(run["task_seconds"] for run in measured) / floor_median, 2
                ),
                "runs_s": [round(run["seconds"], 3) for run in measured],
            }
        )
    if pandas_name not in runs:
        out.append(
            {
                "rows": size,
                "contender": pandas_name,
                "seconds": "skipped",
                "rows_per_s": "",
                "peak_rss_mb": "",
                "x_floor": "",
                "runs_s": "skipped for memory: 6.8 GB and 86 s at 5M (FACTS.md); "
                "MOZART_BENCH_PANDAS_5M=1 runs it",
            }
        )
    return out
