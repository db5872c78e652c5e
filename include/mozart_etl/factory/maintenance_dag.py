"""One maintenance DAG per tenant, `<tenant>.maintenance`: compact raw, expire
snapshots, compact the run ledger, sweep orphans, write the report.

Per tenant rather than one DAG over all of them:

- it runs at the tenant's quiet hour in the tenant's own zone (a few hours
  after its production day's boundary, when its daily loads are done), which
  no single schedule gives plants in Seoul and New York;
- its tasks run in the tenant's pool, so maintaining one plant never takes
  another's slots, and a broken tenant fails only its own maintenance run;
- it carries the tenant's owner, tags and alerts, so whoever may see and run
  the tenant's DAG sees and runs its maintenance (per-tenant access control
  applies to it as to the tenant's DAG).

A tenant id never holds a dot, so `<tenant>.maintenance` cannot be another
tenant's DAG id. Parsing stays light: this module imports Airflow and the
config only; every step imports PyIceberg and pyarrow inside its callable.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, CronTriggerTimetable, get_parsing_context
from airflow.sdk.exceptions import AirflowFailException

from mozart_etl.config.isolation import tenant_pool
from mozart_etl.config.models import TenantConfig
from mozart_etl.config.registry import load_all
from mozart_etl.factory.access import access_control, access_control_warning_silenced
from mozart_etl.factory.alerts import failure_notifiers
from mozart_etl.maintenance.settings import maintenance_cron

log = logging.getLogger(__name__)

SUFFIX = ".maintenance"
STEPS = ("compact_raw", "expire_snapshots", "compact_ledger", "sweep_orphans")
REPORT_TASK = "report"


def maintenance_dag_id(tenant_id: str) -> str:
    return f"{tenant_id}{SUFFIX}"


def build_maintenance_dags(root: Path | None = None) -> dict[str, DAG]:
    """A maintenance DAG for every valid tenant (`config/registry.py`). An
    invalid tenant gets none: its tenant DAG already stands in with the error,
    and maintaining the tables of a config that does not load (or names
    another tenant's namespace) could touch the wrong ones."""
    only = get_parsing_context().dag_id  # a task's process needs its DAG only
    dags: dict[str, DAG] = {}
    for entry in load_all(root):
        dag_id = maintenance_dag_id(entry.tenant_id)
        if only is not None and only != dag_id:
            continue
        if entry.error is not None or entry.config is None:
            log.error("tenant %s: no maintenance DAG: %s", entry.tenant_id, entry.error)
            continue
        try:
            dags[dag_id] = build_maintenance_dag(entry.folder, entry.config)
        except Exception as exc:  # one tenant's error must not hide the others
            log.exception("tenant %s: maintenance DAG not built", entry.tenant_id)
            dags[dag_id] = _error_dag(dag_id, exc)
    log.info("built %d maintenance DAG(s)", len(dags))
    return dags


@access_control_warning_silenced()
def build_maintenance_dag(folder: Path, tenant: TenantConfig) -> DAG:
    schedule = tenant.schedule
    zone = pendulum.timezone(schedule.timezone)
    cron = maintenance_cron(schedule.day_start_hour)
    with DAG(
        dag_id=maintenance_dag_id(tenant.tenant_id),
        description=f"Iceberg maintenance of tenant {tenant.tenant_id}'s raw tables",
        schedule=CronTriggerTimetable(cron, timezone=zone),
        start_date=pendulum.datetime(*schedule.start_date.timetuple()[:3], tz=zone),
        catchup=False,
        max_active_runs=1,
        auto_register=False,
        on_failure_callback=failure_notifiers(tenant) or None,
        default_args={
            "owner": tenant.owner,
            "pool": tenant_pool(tenant),
            "retries": schedule.retries,
            "retry_delay": timedelta(minutes=schedule.retry_delay_minutes),
        },
        tags=["mozart", "maintenance", f"tenant:{tenant.tenant_id}"],
        doc_md=_doc_md(tenant, cron),
        access_control=access_control(tenant),  # as the tenant's DAG
    ) as dag:
        previous = None
        for step in STEPS:
            task = PythonOperator(
                task_id=step,
                python_callable=run_step,
                op_kwargs={"folder": str(folder), "step": step},
            )
            if previous is not None:
                previous >> task
            previous = task
        report = PythonOperator(
            task_id=REPORT_TASK,
            python_callable=write_step_report,
            op_kwargs={"folder": str(folder)},
        )
        assert previous is not None
        previous >> report
    return dag


def run_step(folder: str, step: str) -> dict[str, Any]:
    """One maintenance step over the tenant; its result to XCom. The heavy
    modules are imported here, in the task's process."""
    from mozart_etl.core.errors import MozartError
    from mozart_etl.factory.tasks import load_task_tenant
    from mozart_etl.maintenance import run
    from mozart_etl.maintenance.settings import MaintenanceSettings

    tenant = load_task_tenant(Path(folder))
    settings = MaintenanceSettings.from_env()
    try:
        result: Any
        if step == "compact_raw":
            result = run.compact_tenant(tenant, settings)
        elif step == "expire_snapshots":
            result = run.expire_tenant(tenant, settings)
        elif step == "compact_ledger":
            result = run.compact_tenant_ledger(tenant)
        elif step == "sweep_orphans":
            result = run.sweep_orphans(tenant, settings)
        else:
            raise AirflowFailException(f"unknown maintenance step {step!r}")
    except MozartError as exc:
        if exc.terminal:
            raise AirflowFailException(str(exc)) from exc
        raise
    if isinstance(result, list):
        return {"tables": [item.model_dump(mode="json") for item in result]}
    return result.model_dump(mode="json")


def write_step_report(folder: str, ti: Any, dag_run: Any) -> dict[str, Any]:
    """The steps' results (their XComs) as one report in the tenant's lake."""
    from datetime import UTC, datetime

    from mozart_etl.factory.tasks import load_task_tenant
    from mozart_etl.maintenance import run
    from mozart_etl.maintenance.settings import MaintenanceSettings

    tenant = load_task_tenant(Path(folder))
    steps = {step: ti.xcom_pull(task_ids=step) for step in STEPS}
    report = run.MaintenanceReport(
        tenant_id=tenant.tenant_id,
        started_at=dag_run.start_date or datetime.now(UTC),
        finished_at=datetime.now(UTC),
        settings=MaintenanceSettings.from_env(),
        compaction=steps["compact_raw"]["tables"],
        expiry=steps["expire_snapshots"]["tables"],
        ledger=steps["compact_ledger"],
        sweep=steps["sweep_orphans"],
    )
    path = run.write_report(tenant, report)
    return {"path": path, **report.model_dump(mode="json")}


def _doc_md(tenant: TenantConfig, cron: str) -> str:
    return (
        f"## Maintenance of tenant `{tenant.tenant_id}`\n\n"
        f"Daily at `{cron}` ({tenant.schedule.timezone}): compacts the small files "
        f"of every raw table in `{tenant.raw_namespace}` (same rows, fewer files), "
        "expires snapshots past the retention (`MOZART_SNAPSHOT_RETENTION_DAYS`, "
        "never one superseded less than `MOZART_SNAPSHOT_MIN_AGE_MINUTES` ago), "
        "compacts the run ledger and sweeps orphaned files "
        "(`MOZART_SWEEP_GRACE_HOURS`). Safe beside running loads. The report: "
        "the `report` task's XCom and `_maintenance/` in the tenant's lake.\n"
    )


def _error_dag(dag_id: str, error: Exception) -> DAG:
    """A stand-in that names the problem in the UI and fails if triggered."""
    message = str(error)
    with DAG(
        dag_id=dag_id,
        description=f"CONFIG ERROR: {message.splitlines()[0][:200]}",
        schedule=None,
        tags=["mozart", "maintenance", "config-error"],
        auto_register=False,
    ) as dag:

        def _raise() -> None:
            raise AirflowFailException(message)

        PythonOperator(task_id="config_error", python_callable=_raise)
    return dag
