"""One demo tenant-day through a live Airflow: scheduler, dag-processor,
triggerer, api-server and the LocalExecutor (the harness of tests/live), from
trigger to success, in each DAG shape in the same run.

`MOZART_BENCH_LIVE_SHAPES` (default `tables,stages`) names the shapes to run,
in order; each gets a fresh deployment, a fresh lake and the same demo source.
Per shape: seconds from trigger to success, the number of task instances, and
per stage the summed task seconds and the time tasks waited between being
scheduled and starting (what a task start costs here). Figures go to
docs/performance.md by hand.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

log = logging.getLogger("bench")

ROOT = Path(__file__).resolve().parents[1]
SHAPES_VAR = "MOZART_BENCH_LIVE_SHAPES"


def _stage(task_id: str) -> str:
    """`lot_history.extract` → extract; `dbt_staging…` → dbt_staging."""
    if task_id.startswith("dbt_"):
        return task_id.split(".")[0]
    if "." in task_id:
        return task_id.rsplit(".", 1)[1]
    return task_id


def run_shape(shape: str) -> dict[str, Any]:
    from mozart_etl.config.loader import load_tenant
    from mozart_etl.demo.generate import DEMO_DAY, generate_demo_source
    from tests.live.harness import AirflowServices

    home = Path(tempfile.mkdtemp(prefix=f"mozart-bench-live-{shape}-"))
    os.environ["MOZART_HOME"] = str(home)
    os.environ["MOZART_DAG_SHAPE"] = shape
    tenant = load_tenant(ROOT / "tenants" / "demo")
    generate_demo_source(Path(tenant.source.database))
    pools = {tenant.dbt.pool or "": 1, f"mozart_{tenant.tenant_id}": 8}
    pools.pop("", None)
    env = {
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "MOZART_DAG_SHAPE": shape,
    }
    with AirflowServices(
        tenants_dir=ROOT / "tenants", mozart_home=home, pools=pools, env=env
    ) as airflow:
        airflow.wait_for_dags(["demo"])
        airflow.set_paused("demo", False)
        run_id = f"bench_{shape}"
        started = time.monotonic()
        airflow.trigger("demo", run_id, conf={"production_day": DEMO_DAY.isoformat()})
        airflow.wait_for_run("demo", run_id, "success", timeout=1800)
        seconds = time.monotonic() - started
        rows = airflow.sql(
            "SELECT task_id, extract(epoch FROM end_date - start_date),"
            " extract(epoch FROM start_date - scheduled_dttm)"
            " FROM task_instance WHERE dag_id = 'demo' AND run_id = %s",
            (run_id,),
        )
    stages: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    for task_id, ran, waited in rows:
        figures = stages[_stage(task_id)]
        figures[0] += 1
        figures[1] += float(ran or 0)
        figures[2] += float(waited or 0)
    return {"shape": shape, "seconds": seconds, "tasks": len(rows), "stages": stages}


def main() -> None:
    shapes = os.environ.get(SHAPES_VAR, "tables,stages").split(",")
    results = [run_shape(shape) for shape in shapes]
    log.info("live demo tenant-day, LocalExecutor, trigger → success")
    for result in results:
        log.info(
            "  shape %-7s %6.1f s  %3d tasks",
            result["shape"],
            result["seconds"],
            result["tasks"],
        )
        for stage, (count, ran, waited) in sorted(
            result["stages"].items(), key=lambda item: -item[1][1]
        ):
            log.info(
                "    %-24s %3d task(s)  ran %6.1f s  waited %6.1f s",
                stage,
                count,
                ran,
                waited,
            )
    if len(results) > 1:
        base = results[-1]["seconds"]
        for result in results[:-1]:
            log.info(
                "  %s ÷ %s: %.2f",
                result["shape"],
                results[-1]["shape"],
                result["seconds"] / base,
            )
