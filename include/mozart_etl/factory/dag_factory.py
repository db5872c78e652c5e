"""One DAG per tenant: each table's sync (extract → validate → load →
reconcile), then dbt staging → marts, then publish.

A tenant whose config or dbt project is broken gets a stand-in DAG that shows
its error (in the DAG's docs and when run); the other tenants load as usual.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import (
    DAG,
    BaseOperator,
    CronDataIntervalTimetable,
    Param,
    TaskGroup,
    XComArg,
    get_parsing_context,
)
from airflow.sdk.exceptions import AirflowFailException
from cosmos import DbtTaskGroup
from cosmos.constants import PRODUCER_WATCHER_TASK_ID

from mozart_etl.config.isolation import tenant_pool
from mozart_etl.config.models import TableConfig, TenantConfig
from mozart_etl.config.registry import TenantEntry, load_all
from mozart_etl.core.run_vars import DAY_TASK_ID
from mozart_etl.dbt.project import DBT_LAYERS
from mozart_etl.factory import tasks
from mozart_etl.factory.access import access_control, access_control_warning_silenced
from mozart_etl.factory.alerts import failure_notifiers, retry_notifiers
from mozart_etl.factory.assets import mart_asset, raw_asset
from mozart_etl.factory.dbt_groups import (
    dbt_layer_task,
    dbt_task_group,
    layer_models,
)
from mozart_etl.factory.docs import stage_doc_md, tenant_doc_md
from mozart_etl.factory.lineage import StageOperator

log = logging.getLogger(__name__)

CONFIG_ERROR_TAG = "config-error"
SHAPE_VAR = "MOZART_DAG_SHAPE"
TABLES_SHAPE = "tables"
STAGES_SHAPE = "stages"
SYNC_GROUP = "sync"


def build_tenant_dags(root: Path | None = None) -> dict[str, DAG]:
    """Every tenant under `tenants/`, each built in isolation from the others.

    Which tenants are valid is the registry's answer (`config/registry.py`,
    the same as `mozart validate`'s): an invalid one gets a stand-in DAG
    naming its error.
    """
    dags: dict[str, DAG] = {}
    # A task's process needs only its own DAG: building every tenant's would
    # cost each task the whole parse (seconds with hundreds of tenants). The
    # registry still loads them all: isolation is checked across tenants.
    only = get_parsing_context().dag_id
    with _quiet_cosmos_rendering():
        for entry in load_all(root):
            if only is not None and entry.tenant_id != only:
                continue
            dag = _tenant_or_error_dag(entry)
            dags[dag.dag_id] = dag
    log.info("built %d tenant DAG(s)", len(dags))
    return dags


def _tenant_or_error_dag(entry: TenantEntry) -> DAG:
    """The tenant's DAG, or its stand-in naming why it is not built (its
    registry error, or what failed while building it)."""
    if entry.error is not None:
        log.error("tenant %s: DAG not built: %s", entry.tenant_id, entry.error)
        return build_error_dag(entry.tenant_id, entry.error)
    try:
        return build_tenant_dag(entry.folder, entry.valid_config())
    except Exception as exc:  # one tenant's error must not hide the others
        log.exception("tenant %s: DAG not built", entry.tenant_id)
        return build_error_dag(entry.tenant_id, exc)


@contextmanager
def _quiet_cosmos_rendering() -> Iterator[None]:
    """Cosmos logs ~8 INFO lines per task group while rendering: over hundreds of
    tenants that is thousands of lines and a measurable share of parse time.
    Warnings and errors still show."""
    cosmos_log = logging.getLogger("cosmos")
    level = cosmos_log.level
    cosmos_log.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        cosmos_log.setLevel(level)


@access_control_warning_silenced()
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
        # A tenant failing run after run pauses itself (0: never); alerts go out
        # through Airflow notifiers.
        max_consecutive_failed_dag_runs=tenant.alerting.max_consecutive_failed_runs,
        on_failure_callback=failure_notifiers(tenant) or None,
        # Registered only when fully built (returned to the DAG file's globals):
        # a tenant that fails half-way must not shadow its stand-in error DAG.
        auto_register=False,
        default_args={
            "owner": tenant.owner,
            "pool": tenant_pool(tenant),  # one tenant cannot starve the others
            "retries": schedule.retries,
            "retry_delay": timedelta(minutes=schedule.retry_delay_minutes),
            "on_retry_callback": retry_notifiers(tenant) or None,
        },
        tags=[
            "mozart",
            f"tenant:{tenant.tenant_id}",
            f"source:{tenant.source.type}",
            f"env:{os.environ.get('MOZART_ENV', 'local')}",
        ],
        doc_md=tenant_doc_md(tenant),
        # Who sees and runs it (tenant.yaml `access`; FAB auth manager only).
        access_control=access_control(tenant),
        params={
            "production_day": Param(
                None,
                type=["null", "string"],
                format="date",
                description="Process this production day instead of the interval's.",
            ),
            "plan_ver": plan_ver_param(tenant),
        },
    ) as dag:
        day = PythonOperator(
            task_id=DAY_TASK_ID,
            python_callable=tasks.resolve_production_day,
            op_kwargs={"tenant_folder": str(folder)},
        )
        if dag_shape() == STAGES_SHAPE:
            last: BaseOperator | TaskGroup = _stage_tasks(folder, tenant, day.output)
        else:
            last = _table_and_layer_tasks(folder, tenant, day.output)
        if tenant.publish is not None:
            publish = PythonOperator(
                task_id="publish",
                python_callable=tasks.run_publish,
                op_kwargs={"tenant_folder": str(folder), "day_vars": day.output},
            )
            last >> publish  # after every mart model (and its tests)
    return dag


def dag_shape() -> str:
    """`tables` (the default): a task per table's sync and one `dbt build`
    task per layer. `stages`: a task per table stage and per dbt model and
    test, the earlier shape, kept to compare the two (bench/live.py)."""
    shape = os.environ.get(SHAPE_VAR, TABLES_SHAPE)
    if shape not in (TABLES_SHAPE, STAGES_SHAPE):
        raise ValueError(
            f"{SHAPE_VAR}={shape!r}: expected {TABLES_SHAPE!r} or {STAGES_SHAPE!r}"
        )
    return shape


def _table_and_layer_tasks(
    folder: Path, tenant: TenantConfig, day_vars: XComArg
) -> BaseOperator | TaskGroup:
    """`sync.<table>` for each table, then `dbt_staging`, then `dbt_marts`
    (the last of them returned; a layer without models gets no task). A task
    start costs seconds here (docs/performance.md): the stages of a table and
    the models of a layer run in one task each, and every step still logs and
    returns what its own task would have."""
    with TaskGroup(
        group_id=SYNC_GROUP,
        tooltip="each table: extract → validate → load → reconcile",
    ) as sync:
        for table in tenant.tables:
            StageOperator(
                stage="sync",
                doc_md=stage_doc_md(tenant, table, "sync"),
                task_id=table.name,
                python_callable=tasks.run_sync,
                op_kwargs={
                    "tenant_folder": str(folder),
                    "table_name": table.name,
                    "day_vars": day_vars,
                },
                outlets=[raw_asset(tenant, table.name)],
                # Every stage's result is in XCom and each stage logs its own
                # one-line summary: the whole dict in the log is noise.
                show_return_value_in_logs=False,
                # The extract reads the source: the source's pool, if any.
                pool=tenant.source.pool or tenant_pool(tenant),
            )
    last: BaseOperator | TaskGroup = sync
    for layer in DBT_LAYERS:
        models = layer_models(folder, tenant, layer)
        if not models:  # a tenant without models of this layer: no dbt task
            continue
        task = dbt_layer_task(folder, tenant, layer)
        if layer == DBT_LAYERS[-1]:
            task.outlets = [mart_asset(tenant, model) for model in models]
        last >> task
        last = task
    return last


def _stage_tasks(folder: Path, tenant: TenantConfig, day_vars: XComArg) -> TaskGroup:
    """The `stages` shape: a task group per table, a Cosmos task group per
    dbt layer; returns the marts group."""
    loads = {
        table.name: _table_group(folder, tenant, table, day_vars)
        for table in tenant.tables
    }
    groups = [dbt_task_group(folder, tenant, layer) for layer in DBT_LAYERS]
    wire_dbt_dependencies(groups, loads)
    declare_mart_outlets(groups[-1], tenant)
    return groups[-1]


def plan_ver_param(tenant: TenantConfig) -> Param:
    """The plan version of the master marts, checked against the tenant's
    pattern when the run is triggered (form, CLI `--conf`, REST API)."""
    plan = tenant.plan_version
    return Param(
        None,
        type=["null", "string"],
        pattern=plan.pattern,
        maxLength=64,
        title="Plan version (plan_ver)",
        description=f"Master marts are prepared for this plan version; must match "
        f"{plan.pattern}. Empty: derived from the production day ({plan.default}).",
    )


def _table_group(
    folder: Path, tenant: TenantConfig, table: TableConfig, day_vars: XComArg
) -> BaseOperator:
    """extract → validate [→ transform] → load → reconcile of one table; returns
    the reconcile task (what dbt waits for).

    PythonOperators (StageOperator: with OpenLineage inputs/outputs) wired by
    XComArgs: the TaskFlow decorator inspects signatures on every call, which
    costs seconds over hundreds of tenants. The load updates the raw table's Asset.
    """
    common = {"tenant_folder": str(folder), "table_name": table.name}
    with TaskGroup(group_id=table.name, tooltip=f"{table.mode} load of {table.name}"):
        extract = StageOperator(
            stage="extract",
            doc_md=stage_doc_md(tenant, table, "extract"),
            task_id="extract",
            python_callable=tasks.run_extract,
            op_kwargs={**common, "day_vars": day_vars},
            pool=tenant.source.pool or tenant_pool(tenant),
        )
        validate = StageOperator(
            stage="validate",
            doc_md=stage_doc_md(tenant, table, "validate"),
            task_id="validate",
            python_callable=tasks.run_validate,
            op_kwargs={**common, "manifest": extract.output},
        )
        loaded: dict[str, XComArg] = {}
        if table.transform is not None:  # the load then writes the transform's rows
            loaded["transformed"] = StageOperator(
                stage="transform",
                doc_md=stage_doc_md(tenant, table, "transform"),
                task_id="transform",
                python_callable=tasks.run_transform,
                op_kwargs={**common, "report": validate.output},
            ).output
        load = StageOperator(
            stage="load",
            doc_md=stage_doc_md(tenant, table, "load"),
            task_id="load",
            outlets=[raw_asset(tenant, table.name)],
            python_callable=tasks.run_load,
            op_kwargs={
                **common,
                "manifest": extract.output,
                "report": validate.output,
                **loaded,
            },
        )
        # Source figures over the window against raw's; dbt waits for it.
        reconcile = PythonOperator(
            task_id="reconcile",
            python_callable=tasks.run_reconcile,
            op_kwargs={
                **common,
                "manifest": extract.output,
                "report": validate.output,
                "loaded": load.output,
            },
        )
    return reconcile


def wire_dbt_dependencies(
    groups: list[DbtTaskGroup], loads: dict[str, BaseOperator]
) -> None:
    """Each dbt model waits only for what it reads (known from the manifest).

    A source `raw.<table>` is produced by that table's load task; a model by its
    task group in an earlier layer. So a failing table blocks only the models
    downstream of it, not the whole tenant.
    """
    producers: dict[str, BaseOperator | TaskGroup] = {}
    for group in groups:
        # In watcher mode one producer task builds the whole group: it waits for
        # everything any of the group's models reads.
        watcher = group.tasks_map.get(PRODUCER_WATCHER_TASK_ID)
        for node_id, node in group.dbt_graph.filtered_nodes.items():
            if node_id not in group.tasks_map:
                continue
            consumer = watcher or group.tasks_map[node_id]
            for upstream_id in node.depends_on:
                upstream = producers.get(upstream_id) or _source_load(
                    upstream_id, loads
                )
                if upstream is not None:
                    upstream >> consumer
        producers.update(group.tasks_map)


def declare_mart_outlets(marts: DbtTaskGroup, tenant: TenantConfig) -> None:
    """Each mart model's task that builds it updates that mart's Asset
    (downstream DAGs schedule on them; the row count is attached after it ran):
    the `run` task of the model's group, or its `build` task (test behaviour
    `build`)."""
    for node_id, node in marts.dbt_graph.filtered_nodes.items():
        builder = marts.tasks_map.get(node_id)
        if isinstance(builder, TaskGroup):
            builder = builder.children.get(f"{builder.group_id}.run")
        if isinstance(builder, BaseOperator) and node.resource_type.value == "model":
            builder.outlets = [mart_asset(tenant, node.name)]


def _source_load(node_id: str, loads: dict[str, BaseOperator]) -> BaseOperator | None:
    """`source.<project>.raw.<table>` → the load task of `<table>`."""
    kind, *_, source_name, table = node_id.split(".")
    if kind != "source" or source_name != "raw":
        return None
    return loads.get(table)


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
        f"Fix `tenants/{name}/` (check with `mozart validate`, `mozart manifests`).",
    ) as dag:

        def _raise() -> None:
            raise AirflowFailException(message)

        PythonOperator(task_id="config_error", python_callable=_raise)
    return dag
