"""Load: a 1M-row `lot_history` partition into raw Iceberg, in each write mode.

Contenders, each in a fresh process, on the same rows:
- `extract`: SQLite source → Parquet lake (extract_table, all history): the
  issue's yardstick, "loading takes no longer than extracting".
- `floor`: `pyarrow.parquet.write_table` of the same Arrow table to local disk.
- ours: `load_partition` in `full_refresh`, `incremental` and `merge` mode, the
  first load (new table) and a rerun of the same day (the table already holds
  every row: the expensive case of replace and upsert).
- `alternative`: `pandas.DataFrame.to_sql(if_exists="replace")` into PostgreSQL,
  the DROP + CREATE + INSERT full rewrite the Dagster original did.

Timed: the write only (each child first reads the same accepted Parquet file,
reported apart as `read_s`), except `extract`, timed whole.
`python -m bench load` (MOZART_BENCH_SCALE=1000 by default: ~1M rows).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import best_of, measure, report

log = logging.getLogger("bench")

ROOT = Path(__file__).resolve().parents[1]
TABLE = "lot_history"
POSTGRES_DSN = os.environ.get(
    "MOZART_TEST_POSTGRES", "host=127.0.0.1 port=5432 user=postgres"
)


def _tenant(home: Path, mode: str) -> Any:
    """The demo tenant with only lot_history, in `mode`, its files under `home`."""
    from mozart_etl.config.loader import load_tenant
    from mozart_etl.config.models import TenantConfig

    os.environ["MOZART_HOME"] = str(home)
    demo = load_tenant(ROOT / "tenants" / "demo")
    data = demo.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["tables"] = [
        {**table, "mode": mode} for table in data["tables"] if table["name"] == TABLE
    ]
    data["iceberg"]["catalog"] = {"warehouse": str(home / f"iceberg-{mode}")}
    for secret in ("storage",):
        data[secret].pop("s3", None)
    return TenantConfig.model_validate(data, context={"base_dir": ROOT})


def _extract(tenant: Any) -> dict[str, Any]:
    from mozart_etl.core.calendar import production_day
    from mozart_etl.demo.generate import DEMO_DAY
    from mozart_etl.extract.connectors import Credentials, connector_for
    from mozart_etl.extract.extractor import extract_table

    schedule = tenant.schedule
    day = production_day(DEMO_DAY, schedule.timezone, schedule.day_start_hour)
    connector = connector_for(
        tenant.source.type, Credentials.from_settings(tenant.source)
    )
    manifest = extract_table(tenant, tenant.table(TABLE), day, connector, window=None)
    return manifest.model_dump(mode="json")


def _read(manifest: dict[str, Any]) -> tuple[Any, float]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    started = time.perf_counter()
    rows = pa.concat_tables(pq.read_table(f["path"]) for f in manifest["files"])
    return rows, time.perf_counter() - started


def _floor(manifest: dict[str, Any], target: str) -> dict[str, float]:
    import pyarrow.parquet as pq

    rows, read = _read(manifest)
    started = time.perf_counter()
    pq.write_table(rows, target, compression="zstd")
    return {"write_s": time.perf_counter() - started, "read_s": read}


def _ours(tenant: Any, manifest: dict[str, Any]) -> dict[str, float]:
    from mozart_etl.core.lake import ExtractManifest
    from mozart_etl.load.catalog import open_catalog
    from mozart_etl.load.iceberg import load_partition

    rows, read = _read(manifest)
    catalog = open_catalog(tenant)
    started = time.perf_counter()
    result = load_partition(
        catalog,
        tenant,
        tenant.table(TABLE),
        ExtractManifest.model_validate(manifest),
        rows,
        run_id="bench",
    )
    assert result.rows_in_table == rows.num_rows, result
    return {"write_s": time.perf_counter() - started, "read_s": read}


def _pandas_to_sql(manifest: dict[str, Any], database: str) -> dict[str, float]:
    import sqlalchemy as sa

    rows, read = _read(manifest)
    started = time.perf_counter()
    frame = rows.to_pandas()
    engine = sa.create_engine(
        f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}"
    )
    frame.to_sql(TABLE, engine, if_exists="replace", index=False, chunksize=50_000)
    engine.dispose()
    return {"write_s": time.perf_counter() - started, "read_s": read}


def _row(name: str, run: dict[str, Any], base: float, rows: int) -> dict[str, Any]:
    result = run["result"]
    seconds = result.get("write_s", run["seconds"])
    return {
        "contender": name,
        "rows": rows,
        "seconds": round(seconds, 3),
        "vs_extract": round(seconds / base, 2),
        "read_s": round(result.get("read_s", 0.0), 3),
        "peak_rss_mb": round(run["peak_rss_mb"]),
        "runs_s": run.get("all_seconds", [round(run["seconds"], 3)]),
    }


def main() -> None:
    import psycopg

    from mozart_etl.demo.generate import generate_demo_source

    scale = float(os.environ.get("MOZART_BENCH_SCALE", "1000"))
    repeats = int(os.environ.get("MOZART_BENCH_REPEATS", "3"))
    home = Path(tempfile.mkdtemp(prefix="mozart-bench-load-"))
    modes = ("full_refresh", "incremental", "merge")
    tenants = {mode: _tenant(home, mode) for mode in modes}
    started = time.perf_counter()
    generate_demo_source(Path(tenants["merge"].source.database), scale=scale)
    log.info("demo source at scale %s in %.1f s", scale, time.perf_counter() - started)

    extract = best_of(repeats, _extract, tenants["merge"])
    manifest = extract["result"]
    rows, base = manifest["rows"], extract["seconds"]
    results = [_row("extract (SQLite → Parquet)", extract, base, rows)]
    floor = best_of(repeats, _floor, manifest, str(home / "floor.parquet"))
    results.append(_row("floor: pq.write_table", floor, base, rows))
    for mode in modes:
        first = measure(_ours, tenants[mode], manifest)
        results.append(_row(f"ours {mode}, first load", first, base, rows))
        rerun = best_of(repeats, _ours, tenants[mode], manifest)
        results.append(_row(f"ours {mode}, rerun", rerun, base, rows))

    database = f"mozart_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{POSTGRES_DSN} dbname=postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    try:
        alternative = measure(_pandas_to_sql, manifest, database)
        results.append(_row("alternative: pandas.to_sql", alternative, base, rows))
    finally:
        with psycopg.connect(
            f"{POSTGRES_DSN} dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    report("load", results)
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main()
