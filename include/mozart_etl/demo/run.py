"""`make demo`: generate the demo source, run the demo DAG for one day, summarise.

Runs the real DAG through Airflow (`dag.test`: every task in this process,
against Airflow's metadata database), then reads back what it wrote. The day
runs through `ops.run_days`, as `mozart run` runs any tenant's days: one code
path, one failure message.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from mozart_etl.config.loader import load_tenant, tenants_dir
from mozart_etl.core.calendar import production_day
from mozart_etl.core.environ import scoped_environ
from mozart_etl.demo.generate import DEMO_DAY, generate_demo_source
from mozart_etl.demo.summary import RunSummary, summarise_run
from mozart_etl.ops.run_days import RunFailed, run_days

if TYPE_CHECKING:
    from airflow.models.dagrun import DagRun

log = logging.getLogger("mozart.demo")


def run_tenant_day(
    tenant_id: str,
    day: date,
    *,
    conf: dict[str, object] | None = None,
    mark_success_pattern: str | None = None,
) -> DagRun:
    """Run one tenant's DAG for production day `day` in this process (`dag.test`).

    `conf` adds run parameters (e.g. `plan_ver`); tasks matching
    `mark_success_pattern` are marked successful instead of run.
    """
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.definitions.context import _AIRFLOW_PARSING_CONTEXT_DAG_ID

    from mozart_etl.config.loader import project_root

    tenant = load_tenant(tenants_dir() / tenant_id)
    schedule = tenant.schedule
    window = production_day(day, schedule.timezone, schedule.day_start_hour)
    # The DAG files build only this tenant's DAG, as in a task's process (the
    # parsing context): `dag.test` parses the whole DAG folder again to store
    # it, and every other tenant's DAG and maintenance DAG cost each run their
    # build and serialization. A tenant's DAG triggers no other DAG.
    with scoped_environ({_AIRFLOW_PARSING_CONTEXT_DAG_ID: tenant_id}):
        bag = DagBag(dag_folder=str(project_root() / "dags"))
        if tenant_id not in bag.dags:
            raise SystemExit(
                f"no DAG {tenant_id!r}; import errors: {bag.import_errors}"
            )
        # Logical date = the day's end, so the run's data interval is the day.
        return bag.dags[tenant_id].test(
            logical_date=window.end,
            run_conf={"production_day": day.isoformat(), **(conf or {})},
            mark_success_pattern=mark_success_pattern,
        )


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--day", type=date.fromisoformat, default=DEMO_DAY, help="production day"
    )
    parser.add_argument("--tenant", default="demo", help="a SQLite-source tenant")
    args = parser.parse_args(argv)
    tenant = load_tenant(tenants_dir() / args.tenant)
    source = Path(tenant.source.database)
    summary = generate_demo_source(source)
    log.info("demo source: %s %s", source, summary.rows)
    try:
        state = run_days(tenant, [args.day])[0].state
    except RunFailed as exc:
        log.error("%s", exc)
        state = "failed"
    report: RunSummary = summarise_run(tenant, args.day, state)
    # The summary is this command's output; Airflow has taken over logging by now.
    sys.stdout.write(report.render() + "\n")
    return 0 if state == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
