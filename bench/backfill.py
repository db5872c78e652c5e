"""Backfills get cheap: a 30-day backfill syncs the history once.

`python -m bench backfill` generates the demo MES with 30 production days of
history at ~1M `lot_history` rows (MOZART_BENCH_BACKFILL_ROWS), then, through
the real stages (`mozart_etl.pipeline.stages.sync_table`, every table the
daily marts read), each in one process:

- **backfill**: the 30 days run one after the other against the source as it
  stands after an outage (the end of the history): the first run syncs the
  whole history, every later run reads only what changed since raw's mark;
- **single runs**: the same day run on a fresh deployment, 3 times (what each
  of 30 runs would cost if every run read the day's history again, the way a
  run that extracts "its" day from scratch must when raw has no versions);
- **scheduled days**: 5 consecutive days, each run 15 minutes after its end
  against the source as it stood then; rows each run read beside the rows
  that changed in the source since the previous run (from the generator);
- **key scan**: what `deletes: key_scan` adds to a run on `lot_history`
  (every source key read, compared with raw's live keys) beside reading the
  whole table.

`MOZART_BENCH_BACKFILL_PARTS=backfill,key_scan` runs only those parts.

dbt is left out: it computes one day from raw whatever the sync read, and
costs the same in every shape (`bench/e2e.py` measures it).
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

log = logging.getLogger("bench")

ROWS = int(os.environ.get("MOZART_BENCH_BACKFILL_ROWS", "1000000"))
DAYS = 30
ROWS_PER_SCALE_DAY = 1024.5 / 5
"""lot_history rows per unit of the generator's scale and day of history."""
TABLES = [
    "equipment",
    "product_route",
    "lot_history",
    "equipment_event",
    "plan_production",
]
SINGLE_RUNS = 3
SCHEDULED_DAYS = 5
ROOT = Path(__file__).resolve().parents[1]


def _scale() -> float:
    return ROWS / (ROWS_PER_SCALE_DAY * DAYS)


def _deployment(home: Path) -> tuple[Any, Any, Any]:
    os.environ["MOZART_HOME"] = str(home)
    from mozart_etl.config.loader import load_tenant
    from mozart_etl.factory.connections import source_connector
    from mozart_etl.factory.tasks import prepare_local_stores
    from mozart_etl.load.catalog import open_catalog

    tenant = load_tenant(ROOT / "tenants" / "demo")
    prepare_local_stores(tenant)
    return tenant, open_catalog(tenant), source_connector(tenant)


def _run(home: Path, day: Any, at: datetime, run_id: str) -> dict[str, int]:
    """One run's sync of every table; rows each table's extract read."""
    from mozart_etl.core.calendar import production_day
    from mozart_etl.core.lake import Lake, latest_manifest
    from mozart_etl.pipeline import stages

    tenant, catalog, connector = _deployment(home)
    window = production_day(day, tenant.schedule.timezone)
    stages.sync_run(
        ROOT / "tenants" / "demo",
        tenant,
        window,
        connector,
        catalog,
        run_id=run_id,
        captured_at=at,
        tables=TABLES,
    )
    read = {name: latest_manifest(Lake(tenant), name, day).rows for name in TABLES}
    return read


def _history_days() -> list[Any]:
    from mozart_etl.demo.generate import DEMO_DAY

    return [DEMO_DAY - timedelta(days=back) for back in range(DAYS)][::-1]


def _end(day: Any) -> datetime:
    from mozart_etl.core.calendar import production_day
    from mozart_etl.demo.generate import TENANT_TZ

    return production_day(day, TENANT_TZ).end


def _write_source(home: Path, as_of: datetime) -> dict[str, int]:
    from mozart_etl.demo.generate import generate_demo_source

    summary = generate_demo_source(
        home / "demo" / "source.sqlite", scale=_scale(), days=DAYS, as_of=as_of
    )
    return summary.rows


def backfill(home: str) -> dict[str, Any]:
    days = _history_days()
    rows = _write_source(Path(home), _end(days[-1]))
    now = _end(days[-1]) + timedelta(hours=2)
    runs = []
    for number, day in enumerate(days):
        started = time.perf_counter()
        read = _run(Path(home), day, now + timedelta(minutes=number), f"bf{number}")
        runs.append(
            {"seconds": time.perf_counter() - started, "rows": sum(read.values())}
        )
    return {"source_rows": rows, "runs": runs}


def single(home: str) -> dict[str, Any]:
    days = _history_days()
    _write_source(Path(home), _end(days[-1]))
    seconds, rows = [], []
    for number in range(SINGLE_RUNS):
        fresh = Path(home) / f"fresh{number}"
        shutil.copytree(Path(home) / "demo", fresh / "demo")
        started = time.perf_counter()
        read = _run(fresh, days[-1], _end(days[-1]) + timedelta(hours=2), "single")
        seconds.append(time.perf_counter() - started)
        rows.append(sum(read.values()))
        shutil.rmtree(fresh)
    return {"seconds": seconds, "rows": rows}


def scheduled(home: str) -> dict[str, Any]:
    days = _history_days()[-SCHEDULED_DAYS - 1 :]
    source = Path(home) / "demo" / "source.sqlite"
    before = Path(home) / "previous.sqlite"
    runs = []
    for number, day in enumerate(days):
        at = _end(day) + timedelta(minutes=15)
        if source.exists():
            shutil.copy(source, before)
        _write_source(Path(home), at)
        started = time.perf_counter()
        read = _run(Path(home), day, at, f"day{number}")
        seconds = time.perf_counter() - started
        if number:  # the first run syncs the history
            changed = _changed(source, before)
            runs.append({"seconds": seconds, "read": read, "changed": changed})
    return {"runs": runs}


def key_scan(home: str) -> dict[str, Any]:
    """What `deletes: key_scan` costs a run on `lot_history`: reading every
    source key (key columns only), and comparing them with raw's live keys;
    beside it, the whole-table read a full refresh would pay instead."""
    from mozart_etl.extract.extractor import read_source
    from mozart_etl.load.versions import closed_rows, live_rows

    days = _history_days()
    _write_source(Path(home), _end(days[-1]))
    _run(Path(home), days[-1], _end(days[-1]) + timedelta(hours=2), "first")
    tenant, catalog, connector = _deployment(Path(home))
    table = tenant.table("lot_history")
    keys = list(table.primary_key)
    started = time.perf_counter()
    present = read_source(tenant, table, connector, names=keys, window=None)
    scanned = time.perf_counter()
    raw = catalog.load_table((tenant.raw_namespace, table.name))
    live = live_rows(raw, table, columns=keys)
    gone = closed_rows(live, present, keys, _end(days[-1]))
    compared = time.perf_counter()
    whole = read_source(tenant, table, connector, names=table.column_names, window=None)
    read_all = time.perf_counter()
    return {
        "keys": present.num_rows,
        "gone": gone.num_rows,
        "scan_s": scanned - started,
        "compare_s": compared - scanned,
        "whole_table_s": read_all - compared,
        "whole_rows": whole.num_rows,
    }


def _changed(source: Path, before: Path) -> dict[str, int]:
    """Rows new or changed since the previous snapshot, and keys gone from it,
    per table (SQLite set differences: the generator's own record of change)."""
    keys = {
        "equipment": "equipment_id",
        "product_route": "product_id, step_seq",
        "lot_history": "lot_id, step_seq",
        "equipment_event": "event_id",
        "plan_production": "plan_run_id, line_no",
    }
    conn = sqlite3.connect(source)
    try:
        conn.execute("ATTACH DATABASE ? AS old", (str(before),))
        out = {}
        for table, key in keys.items():
            ((new,),) = conn.execute(
                f"SELECT count(*) FROM (SELECT * FROM main.{table} "
                f"EXCEPT SELECT * FROM old.{table})"
            ).fetchall()
            ((gone,),) = conn.execute(
                f"SELECT count(*) FROM (SELECT {key} FROM old.{table} "
                f"EXCEPT SELECT {key} FROM main.{table})"
            ).fetchall()
            out[table] = new + gone
        return out
    finally:
        conn.close()


def main() -> None:
    from bench.common import measure

    log.info(
        "backfill bench: %d lot_history rows over %d days (scale %.1f)",
        ROWS,
        DAYS,
        _scale(),
    )
    results: dict[str, Any] = {}
    wanted = os.environ.get("MOZART_BENCH_BACKFILL_PARTS", "")
    parts = (
        ("backfill", backfill),
        ("single", single),
        ("scheduled", scheduled),
        ("key_scan", key_scan),
    )
    for name, fn in parts:
        if wanted and name not in wanted.split(","):
            continue
        scratch = tempfile.mkdtemp(prefix=f"mozart-bench-{name}-")
        try:
            results[name] = measure(fn, scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    for name, outcome in results.items():
        REPORTS[name](outcome["result"])
        log.info("%s: peak RSS %.0f MB", name, outcome["peak_rss_mb"])


def _report_backfill(back: dict[str, Any]) -> None:
    first, rest = back["runs"][0], back["runs"][1:]
    total = sum(run["seconds"] for run in back["runs"])
    log.info("source: %s", back["source_rows"])
    log.info(
        "backfill of %d days: %.1f s in all; first run %.1f s reading %d rows; "
        "the %d after it %.2f s each on average, %d rows read in all",
        DAYS,
        total,
        first["seconds"],
        first["rows"],
        len(rest),
        sum(r["seconds"] for r in rest) / len(rest),
        sum(r["rows"] for r in rest),
    )


def _report_single(single_runs: dict[str, Any]) -> None:
    mean = sum(single_runs["seconds"]) / len(single_runs["seconds"])
    log.info(
        "a single run on a fresh deployment: %.1f s reading %d rows (x%d = %.0f s "
        "for %d days, each reading the history again)",
        mean,
        single_runs["rows"][0],
        DAYS,
        mean * DAYS,
        DAYS,
    )


def _report_scheduled(scheduled_runs: dict[str, Any]) -> None:
    for run in scheduled_runs["runs"]:
        log.info(
            "scheduled day: %.2f s, read %s (%d rows); changed in the source "
            "since the previous run: %s (%d rows)",
            run["seconds"],
            run["read"],
            sum(run["read"].values()),
            run["changed"],
            sum(run["changed"].values()),
        )


def _report_key_scan(scan: dict[str, Any]) -> None:
    log.info(
        "key scan of lot_history: %d keys read in %.2f s, compared with raw's "
        "live keys in %.2f s (%d gone); the whole table (%d rows) read in %.2f s",
        scan["keys"],
        scan["scan_s"],
        scan["compare_s"],
        scan["gone"],
        scan["whole_rows"],
        scan["whole_table_s"],
    )


REPORTS = {
    "backfill": _report_backfill,
    "single": _report_single,
    "scheduled": _report_scheduled,
    "key_scan": _report_key_scan,
}
