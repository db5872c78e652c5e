"""One DAG per tenant: per table extract → validate → load, then dbt staging → marts.

A tenant whose config or dbt project is broken gets a stand-in DAG that shows
its error (in the DAG's docs and when run); the other tenants load as usual.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, CronDataIntervalTimetable, Param, TaskGroup, task
from airflow.sdk.exceptions import AirflowFailException

from mozart_etl.config.loader import load_tenant, tenant_folders
from mozart_etl.config.models import TableConfig, TenantConfig
from mozart_etl.factory import tasks
from mozart_etl.factory.dbt_groups import DAY_TASK_ID, DBT_LAYERS, dbt_task_group
from mozart_etl.factory.docs import tenant_doc_md

log = logging.getLogger(__name__)

CONFIG_ERROR_TAG = "config-error"


def build_tenant_dags(root: Path | None = None) -> dict[str, DAG]:
    """Every tenant under `tenants/`, each built in isolation from the others."""
    dags: dict[str, DAG] = {}
    for folder in tenant_folders(root):
        try:
            dag = build_tenant_dag(folder, load_tenant(folder))
        except Exception as exc:  # one tenant's error must not hide the others
            log.exception("tenant %s: DAG not built", folder.name)
            dag = build_error_dag(folder.name, exc)
        dags[dag.dag_id] = dag
    return dags


def build_tenant_dag(folder: Path, tenant: TenantConfig) -> DAG:
    schedule = tenant.schedule
    zone = pendulum.timezone(
        schedule.timezone
    )  # Airflow serializes pendulum zones only
    with DAG(
        dag_id=tenant.tenant_id,
        description=tenant.description or f"Mozart ETL for tenant {tenant.tenant_id}",
        schedule=CronDataIntervalTimetable(schedule.effective_cron, timezone=zone),
        start_date=pendulum.datetime(*schedule.start_date.timetuple()[:3], tz=zone),
        catchup=schedule.catchup,
        max_active_runs=1,
        # Registered only when fully built (returned to the DAG file's globals):
        # a tenant that fails half-way must not shadow its stand-in error DAG.
        auto_register=False,
        default_args={
            "owner": tenant.owner,
            "retries": schedule.retries,
            "retry_delay": timedelta(minutes=schedule.retry_delay_minutes),
        },
        tags=[
            "mozart",
            f"tenant:{tenant.tenant_id}",
            f"source:{tenant.source.type}",
            f"env:{os.environ.get('MOZART_ENV', 'local')}",
        ],
        doc_md=tenant_doc_md(tenant),
        params={
            "production_day": Param(
                None,
                type=["null", "string"],
                format="date",
                description="Process this production day instead of the interval's.",
            )
        },
    ) as dag:
        day = PythonOperator(
            task_id=DAY_TASK_ID,
            python_callable=tasks.resolve_production_day,
            op_kwargs={"tenant_folder": str(folder)},
        )
        table_groups = [
            _table_group(folder, table, day.output) for table in tenant.tables
        ]
        staging, marts = (dbt_task_group(folder, tenant, layer) for layer in DBT_LAYERS)
        day >> table_groups
        table_groups >> staging >> marts
    return dag


def _table_group(folder: Path, table: TableConfig, day_vars: object) -> TaskGroup:
    common = {"tenant_folder": str(folder), "table_name": table.name}
    with TaskGroup(
        group_id=table.name, tooltip=f"{table.mode} load of {table.name}"
    ) as group:
        manifest = task(tasks.run_extract, task_id="extract")(
            **common, day_vars=day_vars
        )
        report = task(tasks.run_validate, task_id="validate")(
            **common, manifest=manifest
        )
        task(tasks.run_load, task_id="load")(**common, manifest=manifest, report=report)
    return group


def build_error_dag(name: str, error: Exception) -> DAG:
    """A stand-in that names the problem in the UI and fails if triggered."""
    message = str(error)
    dag_id = name if name.replace("_", "").isalnum() else "invalid_tenant_folder"
    with DAG(
        dag_id=dag_id,
        description=f"CONFIG ERROR: {message.splitlines()[0][:200]}",
        schedule=None,
        tags=["mozart", CONFIG_ERROR_TAG],
        doc_md=f"## Tenant `{name}` is not loaded\n\n```\n{message}\n```\n"
        "Fix `tenants/{name}/tenant.yaml` (check with `mozart validate`).",
    ) as dag:

        def _raise() -> None:
            raise AirflowFailException(message)

        PythonOperator(task_id="config_error", python_callable=_raise)
    return dag
