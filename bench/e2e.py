"""End to end: a 1M-row `lot_history` tenant through the whole DAG, in Airflow.

`python -m bench e2e` generates the demo source at a scale of ~1M
`lot_history` rows (its other tables in proportion: ~1M `process_result`),
copies it into a scratch PostgreSQL database, and runs the demo tenant's DAG
for one production day with `dag.test` (every task in one fresh process: the
first load reads the whole history). The tenant reaches PostgreSQL through an
Airflow connection, exactly as the stack does.

Printed: wall time and peak RSS per stage (sync, dbt staging, dbt marts, …;
in the `stages` DAG shape, MOZART_DAG_SHAPE=stages, extract, validate,
transform, load and reconcile apart) from the task instances' start/end and
an RSS sampler in the run's process, the run's total, and next to them the
floors over the same data (each in a fresh process): binary COPY of every
table to nothing, one zstd Parquet write of the extracted rows, one Iceberg
append of them, one DuckDB aggregate over raw `lot_history`. Targets: total
≤ 15 s, peak RSS ≤ 800 MB. Then the same day once more, from an empty lake,
in a process that first imported what a deployment's worker preloads
(`factory/workers.py`) and built the execution API that `dag.test` serves
in-process (a deployment's api-server is up before any run): what a task
pays in production, without the cold start of a fresh process.

The tenant is deployed first as an image is built (Dockerfile): its folder
copied, `mozart manifests` run in the bench's environment (timed apart and
reported), Cosmos's cache in the bench's folder. So the day's dbt tasks find
the partial-parse state a deployment has, not whatever another run on this
machine left.

Settings: MOZART_BENCH_PG (libpq conninfo, default `host=127.0.0.1 port=5432
user=postgres`), MOZART_BENCH_E2E_ROWS (default 1000000), MOZART_BENCH_E2E_KEEP=1
keeps the scratch folder and database (to profile a stage by hand).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.common import measure, report

log = logging.getLogger("bench")

CONNINFO = os.environ.get("MOZART_BENCH_PG", "host=127.0.0.1 port=5432 user=postgres")
ROWS = int(os.environ.get("MOZART_BENCH_E2E_ROWS", "1000000"))
ROWS_PER_SCALE = 1024.5
"""lot_history rows per unit of the demo generator's scale (5 days of history)."""
ROOT = Path(__file__).resolve().parents[1]
TENANT = "demo"
CONN_ID = "mozart_bench_source"


# --- the run, in a fresh process --------------------------------------------


class _RssSampler(threading.Thread):
    """This process's resident set every 20 ms, to attribute peaks to stages."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[tuple[float, int]] = []
        self.cpu: list[tuple[float, float]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        with open("/proc/self/statm", "rb") as statm:
            while not self._stop_event.is_set():
                statm.seek(0)
                resident = int(statm.read().split()[1]) * page
                self.samples.append((time.time(), resident))
                self.cpu.append((time.time(), self.cpu_seconds()))
                self._stop_event.wait(0.02)

    @staticmethod
    def cpu_seconds() -> float:
        """This process's user + system CPU so far (robust to a busy machine)."""
        usage = os.times()
        return usage.user + usage.system

    def stop(self) -> None:
        self._stop_event.set()
        self.join()

    def cpu_between(self, start: float, end: float) -> float:
        """CPU seconds the process used between two instants (sampled)."""
        before = [c for t, c in self.cpu if t <= start]
        after = [c for t, c in self.cpu if t >= end]
        if not before or not after:
            return 0.0
        return after[0] - before[-1]

    def rss_mb_at(self, instant: float) -> float:
        before = [rss for t, rss in self.samples if t <= instant]
        return (before[-1] if before else 0) / 2**20

    def peak_mb(self, start: float, end: float) -> float:
        within = [rss for t, rss in self.samples if start - 0.02 <= t <= end + 0.02]
        return max(within, default=0) / 2**20


def _stage(task_id: str) -> str:
    """The stage a task's time counts under. Default shape: `sync.lot_history`
    → sync (extract … reconcile in one task); `dbt_staging`, `dbt_marts` as
    they are. `stages` shape: `lot_history.extract` → extract;
    `dbt_marts.mart_wip.run` → dbt_marts."""
    head, _, rest = task_id.partition(".")
    if head.startswith("dbt_"):
        return head
    if head == "sync" and rest and "." not in rest:
        return head
    return rest.rsplit(".", 1)[-1] if rest else head


def run_dag(env: dict[str, str], preload: bool = False) -> dict[str, Any]:
    """One production day through `dag.test` in this (fresh) process. With
    `preload`, the modules a deployment's worker imports once before it forks
    task processes (`factory/workers.py`, the stack's forkserver) are imported
    before the clock starts, with the execution API `dag.test` uses in place
    of the api-server: the day as a worker runs it."""
    os.environ.update(env)
    from mozart_etl.demo.generate import DEMO_DAY
    from mozart_etl.demo.run import run_tenant_day

    if preload:
        import importlib

        from mozart_etl.factory.workers import FORKSERVER_PRELOAD

        for module in FORKSERVER_PRELOAD:
            importlib.import_module(module)
        # A deployment's tasks talk to the api-server, up before any run;
        # `dag.test` builds that API in-process when its first task starts and
        # Cadwyn generates its versioned routes on the first request (~3.5 s,
        # once per process), so one request is made here.
        import httpx
        from airflow.sdk.execution_time.supervisor import in_process_api_server

        api = httpx.Client(
            transport=in_process_api_server().transport, base_url="http://in-process"
        )
        api.get("/health").raise_for_status()

    sampler = _RssSampler()
    sampler.start()
    started, cpu = time.time(), sampler.cpu_seconds()
    run = run_tenant_day(TENANT, DEMO_DAY)
    total, cpu = time.time() - started, sampler.cpu_seconds() - cpu
    sampler.stop()
    stages: dict[str, dict[str, float]] = defaultdict(
        lambda: {"seconds": 0.0, "cpu_seconds": 0.0, "tasks": 0, "peak_rss_mb": 0.0}
    )
    tasks = []
    for ti in run.get_task_instances():
        if ti.start_date is None or ti.end_date is None:
            continue
        figures = stages[_stage(ti.task_id)]
        start, end = ti.start_date.timestamp(), ti.end_date.timestamp()
        tasks.append(
            {
                "task": ti.task_id,
                "seconds": round(end - start, 2),
                "rss_before_mb": round(sampler.rss_mb_at(start)),
                "peak_rss_mb": round(sampler.peak_mb(start, end)),
            }
        )
        figures["seconds"] += end - start
        figures["cpu_seconds"] += sampler.cpu_between(start, end)
        figures["tasks"] += 1
        figures["peak_rss_mb"] = max(
            figures["peak_rss_mb"], sampler.peak_mb(start, end)
        )
    return {
        "state": str(run.state),
        "total_seconds": total,
        "cpu_seconds": cpu,
        "peak_rss_mb": max(rss for _, rss in sampler.samples) / 2**20,
        "stages": dict(stages),
        "slowest_tasks": [
            {"task": t["task"], "seconds": t["seconds"]}
            for t in sorted(tasks, key=lambda t: -t["seconds"])[:12]
        ],
        # Where the resident set grows: a task's peak over what it started with.
        "memory_growth": sorted(
            tasks, key=lambda t: t["rss_before_mb"] - t["peak_rss_mb"]
        )[:10],
        "raw_folder": str(Path(env["MOZART_HOME"]) / "iceberg"),
    }


# --- floors -----------------------------------------------------------------


def copy_floor(conninfo: str, tables: list[str]) -> int:
    """Binary COPY of every source table, drained to nothing."""
    import psycopg

    size = 0
    with psycopg.connect(conninfo) as conn, conn.cursor() as cursor:
        for table in tables:
            with cursor.copy(f'COPY "{table}" TO STDOUT (FORMAT BINARY)') as copy:
                for block in copy:
                    size += len(block)
    return size


def _extracted(home: str) -> list[Any]:
    """The run's extracted rows per table (read outside the timed part)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    lake = Path(home) / "lake" / TENANT
    tables = []
    for folder in sorted(p for p in lake.iterdir() if p.is_dir()):
        files = sorted(folder.glob("**/extract=*/part-*.parquet"))
        if files:  # one file at a time: no partition columns from `key=value` paths
            parts = [pq.ParquetFile(path).read() for path in files]
            tables.append(pa.concat_tables(parts).combine_chunks())
    return tables


def parquet_floor(home: str, out: str) -> int:
    """One zstd Parquet write of every extracted table."""
    import pyarrow.parquet as pq

    tables = _extracted(home)
    started = time.perf_counter()
    for index, data in enumerate(tables):
        pq.write_table(data, f"{out}/floor-{index}.parquet", compression="zstd")
    return int((time.perf_counter() - started) * 1e6)


def iceberg_floor(home: str, out: str) -> int:
    """One Iceberg append of every extracted table into a fresh SQL catalog."""
    from pyiceberg.catalog.sql import SqlCatalog

    tables = _extracted(home)
    Path(out).mkdir(parents=True, exist_ok=True)
    catalog = SqlCatalog(
        "floor", uri=f"sqlite:///{out}/catalog.db", warehouse=f"file://{out}"
    )
    catalog.create_namespace("floor")
    started = time.perf_counter()
    for index, data in enumerate(tables):
        table = catalog.create_table(("floor", f"t{index}"), schema=data.schema)
        table.append(data)
    return int((time.perf_counter() - started) * 1e6)


def duckdb_floor(home: str) -> int:
    """One DuckDB aggregate over raw lot_history's data files."""
    import duckdb

    files = sorted(
        str(p)
        for p in (Path(home) / "iceberg").glob("**/lot_history/data/**/*.parquet")
    )
    started = time.perf_counter()
    with duckdb.connect() as con:
        con.execute(
            "SELECT product_id, step_id, count(*), sum(qty_in), max(updated_at) "
            "FROM read_parquet(?) GROUP BY ALL",
            [files],
        ).fetchall()
    return int((time.perf_counter() - started) * 1e6)


# --- setup ------------------------------------------------------------------


def make_source(database: str, home: Path) -> dict[str, int]:
    """The demo source at ~ROWS `lot_history` rows in a new PostgreSQL
    database (also the live bench's 1M source); its row counts per table."""
    import psycopg

    from mozart_etl.config.loader import load_tenant, tenants_dir
    from mozart_etl.demo.generate import generate_demo_source
    from mozart_etl.demo.to_postgres import copy_to_postgres

    with psycopg.connect(f"{CONNINFO} dbname=postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    scale = ROWS / ROWS_PER_SCALE
    sqlite = home / "source.sqlite"
    started = time.perf_counter()
    generate_demo_source(sqlite, scale=scale)
    tenant = load_tenant(tenants_dir() / TENANT)
    counts = copy_to_postgres(sqlite, f"{CONNINFO} dbname={database}", tenant.tables)
    sqlite.unlink()
    log.info("source: %s in %.1f s", counts, time.perf_counter() - started)
    return counts


def _migrate(env: dict[str, str]) -> None:
    """The run's own Airflow metadata database (`dag.test` writes to it)."""
    airflow = Path(sys.executable).parent / "airflow"
    subprocess.run(
        [str(airflow), "db", "migrate"],
        check=True,
        capture_output=True,
        env={**os.environ, **env},
    )


def _deploy_tenant(env: dict[str, str]) -> None:
    """The tenant's folder copied and its dbt manifests built in the bench's
    environment, as the image's build does (`mozart manifests`)."""
    tenants = Path(env["MOZART_TENANTS_DIR"])
    tenants.mkdir(parents=True)
    shutil.copytree(ROOT / "tenants" / TENANT, tenants / TENANT)
    for shared in (ROOT / "tenants").glob("_*.yaml"):
        shutil.copy(shared, tenants / shared.name)
    mozart = Path(sys.executable).parent / "mozart"
    started = time.perf_counter()
    subprocess.run(
        [str(mozart), "manifests", TENANT],
        check=True,
        capture_output=True,
        env={**os.environ, **env},
    )
    log.info(
        "deploy: `mozart manifests %s` in %.1f s", TENANT, time.perf_counter() - started
    )


def main() -> None:
    database = f"mozart_bench_e2e_{uuid.uuid4().hex[:8]}"
    home = Path(tempfile.mkdtemp(prefix="mozart-bench-e2e-"))
    env = {
        "MOZART_HOME": str(home / "mozart"),
        "AIRFLOW_HOME": str(home / "airflow"),
        "MOZART_DEMO_SOURCE_TYPE": "postgresql",
        "MOZART_DEMO_SOURCE_CONN_ID": CONN_ID,
        f"AIRFLOW_CONN_{CONN_ID.upper()}": conn_uri(database),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        "MOZART_PROJECT_ROOT": str(ROOT),
        "MOZART_TENANTS_DIR": str(home / "tenants"),
        "AIRFLOW__COSMOS__CACHE_DIR": str(home / "cosmos"),
    }
    try:
        counts = make_source(database, home)
        _deploy_tenant(env)
        _migrate(env)
        tables = list(counts)
        load = os.getloadavg()
        run = measure(run_dag, env)
        outcome = run["result"]
        if outcome["state"] != "success":
            raise SystemExit(f"the DAG run ended {outcome['state']}")
        floors = {
            "copy": measure(copy_floor, f"{CONNINFO} dbname={database}", tables),
            "parquet_write": measure(parquet_floor, env["MOZART_HOME"], str(home)),
            "iceberg_commit": measure(
                iceberg_floor, env["MOZART_HOME"], str(home / "ice")
            ),
            "duckdb_query": measure(duckdb_floor, env["MOZART_HOME"]),
        }
        # The same day again, from an empty lake (the same deployment: its
        # paths, so its dbt profile), in a process that imported the worker's
        # modules first (as a deployment's forkserver has).
        shutil.rmtree(env["MOZART_HOME"])
        warm = measure(run_dag, env, True)
        _report(counts, outcome, run, floors, load)
        _report_warm(warm, floors, outcome["total_seconds"])
    finally:
        clean_up(database, home)


def clean_up(database: str, home: Path) -> None:
    import psycopg

    if os.environ.get("MOZART_BENCH_E2E_KEEP"):  # to profile a stage by hand
        log.info("kept %s and database %s", home, database)
        return
    with psycopg.connect(f"{CONNINFO} dbname=postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    shutil.rmtree(home, ignore_errors=True)


def conn_uri(database: str) -> str:
    settings = dict(part.split("=", 1) for part in CONNINFO.split())
    user = settings.get("user", "postgres")
    host, port = settings.get("host", "127.0.0.1"), settings.get("port", "5432")
    return f"postgresql://{user}@{host}:{port}/{database}"


def _floor_seconds(name: str, figures: dict[str, Any]) -> float:
    """COPY is timed whole (connect included); the others time only their work."""
    if name == "copy":
        return figures["seconds"]
    return figures["result"] / 1e6


def _report_warm(
    warm: dict[str, Any], floors: dict[str, dict[str, Any]], cold_seconds: float
) -> None:
    outcome = warm["result"]
    if outcome["state"] != "success":
        raise SystemExit(f"the preloaded DAG run ended {outcome['state']}")
    floor_sum = sum(_floor_seconds(name, f) for name, f in floors.items())
    in_tasks = {k: round(v["seconds"], 2) for k, v in outcome["stages"].items()}
    log.info(
        "e2e, worker modules preloaded: total %.1f s vs floor sum %.1f s: ratio "
        "%.1f; peak RSS %.0f MB; stages %s",
        outcome["total_seconds"],
        floor_sum,
        outcome["total_seconds"] / floor_sum,
        warm["peak_rss_mb"],
        in_tasks,
    )
    # What the cold day paid once per process and a deployment pays once at
    # its start: the worker's imports and the execution API's first request.
    log.info(
        "e2e: the cold day's one-time process start (cold - preloaded): %.1f s",
        cold_seconds - outcome["total_seconds"],
    )


def _report(
    counts: dict[str, int],
    outcome: dict[str, Any],
    run: dict[str, Any],
    floors: dict[str, dict[str, Any]],
    load: tuple[float, float, float],
) -> None:
    rows = [
        {
            "stage": stage,
            "tasks": int(figures["tasks"]),
            "seconds": round(figures["seconds"], 2),
            "cpu_seconds": round(figures["cpu_seconds"], 2),
            "peak_rss_mb": round(figures["peak_rss_mb"]),
        }
        for stage, figures in sorted(
            outcome["stages"].items(), key=lambda item: -item[1]["seconds"]
        )
    ]
    in_tasks = sum(f["seconds"] for f in outcome["stages"].values())
    rows.append(
        {
            "stage": "airflow (between tasks)",
            "tasks": 0,
            "seconds": round(outcome["total_seconds"] - in_tasks, 2),
            "peak_rss_mb": None,
        }
    )
    rows.append(
        {
            "stage": "TOTAL (dag.test)",
            "tasks": sum(int(f["tasks"]) for f in outcome["stages"].values()),
            "seconds": round(outcome["total_seconds"], 2),
            "cpu_seconds": round(outcome["cpu_seconds"], 2),
            "peak_rss_mb": round(outcome["peak_rss_mb"]),
        }
    )
    floor_rows = [
        {
            "floor": name,
            "seconds": round(_floor_seconds(name, figures), 2),
            "peak_rss_mb": round(figures["peak_rss_mb"]),
        }
        for name, figures in floors.items()
    ]
    floor_sum = sum(row["seconds"] for row in floor_rows)
    floor_rows.append(
        {"floor": "SUM", "seconds": round(floor_sum, 2), "peak_rss_mb": None}
    )
    log.info("source rows: %s", counts)
    log.info("load average before the run: %.2f %.2f %.2f", *load)
    report("e2e stages (1M lot_history, one production day)", rows)
    report("e2e floors", floor_rows)
    report("e2e slowest tasks", outcome["slowest_tasks"])
    report("e2e tasks that grow the resident set most", outcome["memory_growth"])
    log.info(
        "e2e: total %.1f s (process %.1f s) vs floor sum %.1f s: ratio %.1f; "
        "peak RSS %.0f MB (targets: <= 15 s, <= 800 MB)",
        outcome["total_seconds"],
        run["seconds"],
        floor_sum,
        outcome["total_seconds"] / floor_sum,
        run["peak_rss_mb"],
    )
