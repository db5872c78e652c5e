"""The demo tenant's dbt stage wall time per Cosmos execution mode, in one run.

Runs the whole demo DAG (`dag.test`) once per mode in a fresh process and a
fresh MOZART_HOME, and measures the dbt stage: from the first dbt task's start
to the last one's end. Modes: LOCAL with dbt's in-process runner (one task per
model and per model's tests) and WATCHER (one `dbt build` per task group,
a sensor per model).

Run: `make bench BENCH=dbt_modes`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import measure, report

ROOT = Path(__file__).resolve().parents[1]
# WATCHER cannot be measured with `dag.test` (it runs one task at a time, so a
# model's sensor blocks before the group's producer runs) and its executor
# mode failed in this harness; it needs the live-scheduler harness. Add it here
# with MOZART_BENCH_DBT_MODES=local,watcher once that exists.
MODES = tuple(os.environ.get("MOZART_BENCH_DBT_MODES", "local").split(","))


def run_demo(mode: str, home: str) -> dict:
    """In a fresh process: migrate a metadata DB, run the demo DAG for DEMO_DAY."""
    os.environ.update(
        {
            "MOZART_COSMOS_EXECUTION_MODE": mode,
            "MOZART_HOME": home,
            "AIRFLOW_HOME": f"{home}/airflow",
        }
    )
    airflow = Path(sys.executable).parent / "airflow"
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True)

    from mozart_etl.config.loader import load_tenant, tenants_dir
    from mozart_etl.core.calendar import production_day
    from mozart_etl.core.run_vars import RunVars
    from mozart_etl.demo.generate import DEMO_DAY, generate_demo_source
    from mozart_etl.demo.run import run_tenant_day

    tenant = load_tenant(tenants_dir() / "demo")
    generate_demo_source(Path(tenant.source.database))
    window = production_day(DEMO_DAY, tenant.schedule.timezone)
    run = run_tenant_day("demo", DEMO_DAY)
    instances = run.get_task_instances()
    dbt = [ti for ti in instances if ti.task_id.startswith("dbt_")]
    loads = [ti for ti in instances if not ti.task_id.startswith("dbt_")]
    start = min(ti.start_date for ti in dbt)
    end = max(ti.end_date for ti in dbt)
    producer_seconds = _one_build_per_layer(
        tenant, run_vars=RunVars.of(window, "bench").to_xcom()
    )
    return {
        "state": str(run.state),
        "one_dbt_build_per_layer_seconds": producer_seconds,
        "dbt_tasks": len(dbt),
        "dbt_stage_seconds": (end - start).total_seconds(),
        "dbt_seconds_per_task": (end - start).total_seconds() / len(dbt),
        "extract_validate_load_seconds": (
            max(ti.end_date for ti in loads) - min(ti.start_date for ti in loads)
        ).total_seconds(),
    }


def _one_build_per_layer(tenant, run_vars: dict[str, str]) -> float:
    """What WATCHER's producer tasks do: one `dbt build` per layer, in-process,
    on the raw tables the run just loaded (sensor overhead not included)."""
    import json

    from mozart_etl.config.loader import tenants_dir
    from mozart_etl.dbt.runner import invoke_dbt

    folder = tenants_dir() / tenant.tenant_id
    dbt_vars = json.dumps(
        {"tenant_id": tenant.tenant_id, **tenant.dbt.vars, **run_vars}
    )
    started = time.perf_counter()
    for layer in ("staging", "marts"):
        args = [
            "build",
            "--quiet",
            "--select",
            f"path:models/{layer}",
            "--vars",
            dbt_vars,
        ]
        invoke_dbt(folder, tenant, args)
    return time.perf_counter() - started


def main() -> None:
    rows = []
    for mode in MODES:
        with tempfile.TemporaryDirectory(prefix=f"mozart-bench-{mode}-") as home:
            outcome = measure(run_demo, mode, home)
        rows.append(
            {
                "mode": mode,
                **outcome["result"],
                "whole_run_seconds": outcome["seconds"],
                "peak_rss_mb": outcome["peak_rss_mb"],
            }
        )
    local = rows[0]["dbt_stage_seconds"]
    for row in rows:
        row["ratio_vs_local"] = row["dbt_stage_seconds"] / local
    report("dbt_modes", rows)


if __name__ == "__main__":
    main()
