"""Transform: a table's Python function over 1M (and 3M) accepted rows.

The function is the demo's `normalise_equipment_id` (trim + upper-case one
string column, Arrow compute), over an `equipment_event`-shaped table of eight
columns. Contenders, each in a fresh process, reading the same Parquet file of accepted
rows (row groups of 100k rows) and writing zstd Parquet:

- ours: `run_transform` — record batches in, the tenant's function, schema
  check, the rolling writer, manifest. Peak memory should not grow with rows.
- `floor`: pyarrow alone, the same batches read and written, no Python
  function and no checks (what streaming Parquet → Parquet costs).
- `naive_iter`: the floor with `ParquetFile.iter_batches()` over the whole file
  (the obvious streaming code): its peak memory grows with the file.
- `pandas`: the usual alternative — the whole table into a DataFrame,
  `.str.strip().str.upper()`, `to_parquet`.

`python -m bench transform` (MOZART_BENCH_ROWS=1000000 by default;
MOZART_BENCH_REPEATS=3, best of).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from bench.common import best_of, report

log = logging.getLogger("bench")

ROOT = Path(__file__).resolve().parents[1]
ROWS = int(os.environ.get("MOZART_BENCH_ROWS", "1000000"))
REPEATS = int(os.environ.get("MOZART_BENCH_REPEATS", "3"))
DAY = date(2026, 11, 19)
COLUMNS: list[dict[str, Any]] = [
    {"name": "event_id", "type": "bigint", "nullable": False},
    {"name": "equipment_id", "type": "string", "nullable": False},
    {"name": "event_type", "type": "string", "nullable": False},
    {"name": "started_at", "type": "timestamptz", "nullable": False},
    {"name": "ended_at", "type": "timestamptz"},
    {"name": "updated_at", "type": "timestamptz", "nullable": False},
    {"name": "qty", "type": "bigint"},
    {"name": "remark", "type": "string"},
]


def _write_input(path: Path, rows: int, copies: int = 1) -> None:
    """`rows * copies` accepted rows in row groups of 100k."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    rng = np.random.default_rng(20261119)
    groups = np.array(["cmp", "CMP", " dep", "cln ", "Etc"])
    base = np.datetime64("2026-11-18T15:00:00", "us").astype("int64")
    writer = None
    for start in range(0, rows * copies, 100_000):
        n = min(100_000, rows * copies - start)
        ids = np.arange(start, start + n, dtype=np.int64)
        equipment = pc.binary_join_element_wise(
            pa.array(groups[ids % len(groups)]),
            pc.cast(pa.array(ids % 40), pa.string()),
            "-",
        )
        started = base + rng.integers(0, 86_400_000_000, n)
        ts = pa.timestamp("us", tz="UTC")
        batch = pa.RecordBatch.from_arrays(
            [
                pa.array(ids),
                equipment,
                pa.array(np.array(["RUN", "IDLE", "DOWN", "PM"])[ids % 4]),
                pa.array(started, ts),
                pa.array(started + 600_000_000, ts),
                pa.array(started + 700_000_000, ts),
                pa.array(rng.integers(0, 500, n)),
                pa.array(np.where(ids % 7 == 0, "checked by operator", None)),
            ],
            names=[c["name"] for c in COLUMNS],
        )
        if writer is None:
            writer = pq.ParquetWriter(path, batch.schema, compression="zstd")
        writer.write_batch(batch)
    assert writer is not None
    writer.close()


def _tenant(home: Path) -> tuple[Any, Path]:
    """Tenant `bench` with table `equipment_event` and the demo's transform."""
    from mozart_etl.config.models import TenantConfig

    folder = home / "tenants" / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "tenants" / "demo" / "transforms.py", folder)
    data = {
        "tenant_id": "bench",
        "source": {"type": "sqlite", "database": str(home / "source.sqlite")},
        "storage": {"lake_root": str(home / "lake")},
        "iceberg": {"catalog": {"warehouse": str(home / "iceberg")}},
        "dbt": {"duckdb_path": str(home / "warehouse.duckdb")},
        "schedule": {"timezone": "Asia/Seoul", "start_date": "2026-11-01"},
        "tables": [
            {
                "name": "equipment_event",
                "source": {"table": "equipment_event"},
                "primary_key": ["event_id"],
                "mode": "merge",
                "cursor": "updated_at",
                "columns": COLUMNS,
                "transform": "transforms:normalise_equipment_id",
            }
        ],
    }
    return TenantConfig.model_validate(data), folder


def _ours(home: str, accepted: str, rows: int) -> dict[str, Any]:
    from mozart_etl.transform.stage import run_transform
    from mozart_etl.validate.validator import ValidationReport

    tenant, folder = _tenant(Path(home))
    report_ = ValidationReport(
        tenant_id="bench",
        table="equipment_event",
        production_day=DAY,
        extract_id="bench",
        rows=rows,
        accepted=rows,
        quarantined=0,
        rules=[],
        accepted_path=accepted,
        accepted_files=[accepted],
        quarantine_path=accepted,
    )
    started = time.perf_counter()
    manifest = run_transform(
        tenant, tenant.table("equipment_event"), folder, report_, run_id="bench"
    )
    return {"work_s": time.perf_counter() - started, "rows": manifest.rows}


def _floor(accepted: str, out: str) -> dict[str, Any]:
    """pyarrow alone: the same batches read (row group by row group, as ours)
    and written, nothing applied, no checks, no background thread."""
    import pyarrow.parquet as pq

    started = time.perf_counter()
    source = pq.ParquetFile(accepted)
    rows = 0
    with pq.ParquetWriter(out, source.schema_arrow, compression="zstd") as writer:
        for group in range(source.num_row_groups):
            for batch in source.iter_batches(batch_size=100_000, row_groups=[group]):
                writer.write_batch(batch)
                rows += batch.num_rows
    return {"work_s": time.perf_counter() - started, "rows": rows}


def _naive(accepted: str, out: str) -> dict[str, Any]:
    """The floor with `iter_batches` over the whole file: memory grows with it."""
    import pyarrow.parquet as pq

    started = time.perf_counter()
    source = pq.ParquetFile(accepted)
    rows = 0
    with pq.ParquetWriter(out, source.schema_arrow, compression="zstd") as writer:
        for batch in source.iter_batches(batch_size=100_000):
            writer.write_batch(batch)
            rows += batch.num_rows
    return {"work_s": time.perf_counter() - started, "rows": rows}


def _pandas(accepted: str, out: str) -> dict[str, Any]:
    """The usual alternative: a whole DataFrame, string methods, to_parquet."""
    import pandas as pd

    started = time.perf_counter()
    frame = pd.read_parquet(accepted)
    frame["equipment_id"] = frame["equipment_id"].str.strip().str.upper()
    frame.to_parquet(out, compression="zstd", index=False)
    return {"work_s": time.perf_counter() - started, "rows": len(frame)}


def _row(name: str, rows: int, run: dict[str, Any]) -> dict[str, Any]:
    return {
        "contender": name,
        "rows": rows,
        "seconds": round(run["seconds"], 3),
        "work_s": round(run["result"]["work_s"], 3),
        "peak_rss_mb": round(run["peak_rss_mb"]),
        "all_seconds": run.get("all_seconds", ""),
    }


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="mozart-bench-transform-") as tmp:
        home = Path(tmp)
        results: list[dict[str, Any]] = []
        for copies in (1, 3):
            rows = ROWS * copies
            accepted = str(home / f"accepted-{copies}x.parquet")
            _write_input(Path(accepted), ROWS, copies)
            contenders = [
                ("ours", _ours, (str(home / f"ours-{copies}x"), accepted, rows)),
                ("floor", _floor, (accepted, str(home / "floor.parquet"))),
                ("naive_iter", _naive, (accepted, str(home / "naive.parquet"))),
                ("pandas", _pandas, (accepted, str(home / "pandas.parquet"))),
            ]
            for name, fn, args in contenders:
                run = best_of(REPEATS, fn, *args)
                assert run["result"]["rows"] == rows, (name, run["result"])
                results.append(_row(name, rows, run))
        report("transform", results)
        _ratios(results)


def _ratios(results: list[dict[str, Any]]) -> None:
    by = {(r["contender"], r["rows"]): r for r in results}
    small, large = ROWS, 3 * ROWS
    for rows in (small, large):
        ours, floor, pandas = (by[(n, rows)] for n in ("ours", "floor", "pandas"))
        log.info(
            "%d rows: ours/floor %.2fx time, pandas/ours %.2fx time, "
            "peak RSS ours %d MB, floor %d MB, pandas %d MB",
            rows,
            ours["work_s"] / floor["work_s"],
            pandas["work_s"] / ours["work_s"],
            ours["peak_rss_mb"],
            floor["peak_rss_mb"],
            pandas["peak_rss_mb"],
        )
    for name in ("ours", "floor", "naive_iter", "pandas"):
        log.info(
            "%s: peak RSS at 3x rows / at 1x = %.2f",
            name,
            by[(name, large)]["peak_rss_mb"] / by[(name, small)]["peak_rss_mb"],
        )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main()
