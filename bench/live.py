"""One demo tenant-day through a live Airflow: scheduler, dag-processor,
triggerer, api-server and the LocalExecutor (the harness of tests/live), from
trigger to success, in each DAG shape in the same run.

`MOZART_BENCH_LIVE_SHAPES` (default `tables,stages`) names the shapes to run,
in order; `MOZART_BENCH_LIVE_SCALES` (default `demo,1M`) the sources: the
demo's SQLite file (~1 000 `lot_history` rows), and the demo generator at
~1M `lot_history` rows copied into a scratch PostgreSQL database reached
through an Airflow connection (bench/e2e.py's source; the first load reads
the whole history). Each shape and scale gets a fresh deployment and lake.

Per run: seconds from trigger to success, the number of task instances, and
per stage the summed task seconds and the time tasks waited between being
scheduled and starting. Figures go to docs/performance.md by hand.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger("bench")

ROOT = Path(__file__).resolve().parents[1]
SHAPES_VAR = "MOZART_BENCH_LIVE_SHAPES"
SCALES_VAR = "MOZART_BENCH_LIVE_SCALES"


def _stage(task_id: str) -> str:
    """`sync.lot_history` → sync; `lot_history.extract` → extract;
    `dbt_staging.stg_x.run` → dbt_staging."""
    head, _, rest = task_id.partition(".")
    if head.startswith("dbt_") or head == "sync":
        return head
    return rest.rsplit(".", 1)[-1] if rest else head


@contextmanager
def _source(scale: str, home: Path) -> Iterator[dict[str, str]]:
    """The demo tenant's source at `scale`; yields the deployment's extra env."""
    from mozart_etl.config.loader import load_tenant
    from mozart_etl.demo.generate import generate_demo_source

    if scale == "demo":
        tenant = load_tenant(ROOT / "tenants" / "demo")
        generate_demo_source(Path(tenant.source.database))
        yield {}
        return
    from bench import e2e

    database = f"mozart_bench_live_{uuid.uuid4().hex[:8]}"
    try:
        e2e.make_source(database, home)
        yield {
            "MOZART_DEMO_SOURCE_TYPE": "postgresql",
            "MOZART_DEMO_SOURCE_CONN_ID": e2e.CONN_ID,
            f"AIRFLOW_CONN_{e2e.CONN_ID.upper()}": e2e.conn_uri(database),
        }
    finally:
        e2e.clean_up(database, home)


def run_shape(shape: str, scale: str) -> dict[str, Any]:
    from mozart_etl.config.loader import load_tenant
    from mozart_etl.demo.generate import DEMO_DAY
    from tests.live.harness import AirflowServices

    home = Path(tempfile.mkdtemp(prefix=f"mozart-bench-live-{shape}-"))
    os.environ["MOZART_HOME"] = str(home)
    os.environ["MOZART_DAG_SHAPE"] = shape
    tenant = load_tenant(ROOT / "tenants" / "demo")
    pools = {tenant.dbt.pool or "": 1, f"mozart_{tenant.tenant_id}": 8}
    pools.pop("", None)
    env = {
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "MOZART_DAG_SHAPE": shape,
    }
    with (
        _source(scale, home) as source_env,
        AirflowServices(
            tenants_dir=ROOT / "tenants",
            mozart_home=home,
            pools=pools,
            env={**env, **source_env},
        ) as airflow,
    ):
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
    return {
        "shape": shape,
        "scale": scale,
        "seconds": seconds,
        "tasks": len(rows),
        "stages": stages,
    }


def main() -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    shapes = os.environ.get(SHAPES_VAR, "tables,stages").split(",")
    scales = os.environ.get(SCALES_VAR, "demo,1M").split(",")
    results = [run_shape(shape, scale) for scale in scales for shape in shapes]
    log.info("live demo tenant-day, LocalExecutor, trigger → success")
    for result in results:
        log.info(
            "  %-5s shape %-7s %6.1f s  %3d tasks",
            result["scale"],
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
    for scale in scales:
        runs = [r for r in results if r["scale"] == scale]
        for result in runs[:-1]:
            log.info(
                "  %s: %s ÷ %s = %.2f",
                scale,
                result["shape"],
                runs[-1]["shape"],
                result["seconds"] / runs[-1]["seconds"],
            )
