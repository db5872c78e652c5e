"""Task callables: thin wrappers that load the tenant and call one stage.

Heavy stage modules are imported inside each function (Airflow's parse-path
rule); results go to XCom as plain dicts without secrets.
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.sdk import get_current_context
from airflow.sdk.exceptions import AirflowFailException

from mozart_etl.config.constants import CatalogType
from mozart_etl.config.loader import load_tenant
from mozart_etl.config.models import TenantConfig
from mozart_etl.core.calendar import ProductionDay, production_day, production_day_of
from mozart_etl.core.credentials import secret_forms
from mozart_etl.core.errors import MozartError
from mozart_etl.core.run_vars import RunVars
from mozart_etl.dbt.duckdb_env import forget_dbt_duckdb_environment
from mozart_etl.factory.asset_events import raw_event_extra, record_raw_event
from mozart_etl.factory.connections import (
    mask_secrets,
    source_connector,
    with_connection,
)

if TYPE_CHECKING:
    from mozart_etl.publish.postgres import PostgresTarget

log = logging.getLogger(__name__)


def _fail_or_retry(exc: MozartError) -> NoReturn:
    """Terminal errors (bad data, bad config) fail at once; others may retry."""
    if exc.terminal:
        raise AirflowFailException(str(exc)) from exc
    raise exc


def load_task_tenant(folder: Path) -> TenantConfig:
    """The tenant's config, its lake's S3 secret key (every form) registered with
    Airflow's log masker: pyarrow and PyIceberg get it, and their errors may
    echo the request that carried it."""
    tenant = load_tenant(folder)
    s3 = tenant.storage.s3
    if s3 is not None and s3.secret_access_key is not None:
        secret = s3.secret_access_key.get_secret_value()
        mask_secrets(secret_forms(secret, user=s3.access_key_id))
    return tenant


def release_arrow_memory() -> None:
    """After a table stage: hand the memory Arrow's allocator kept back to the
    system. A task process that runs more than one task (`dag.test`, a reused
    worker) otherwise carries each stage's peak into the next (the 1M-row run
    in bench/e2e.py)."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def resolve_production_day(tenant_folder: str) -> dict[str, str]:
    """The production day of this run: the `production_day` param, or the interval's."""
    tenant = load_task_tenant(Path(tenant_folder))
    context = get_current_context()
    schedule = tenant.schedule
    requested = (context.get("params") or {}).get("production_day")
    if requested:
        day = date.fromisoformat(str(requested))
    else:
        start = context.get("data_interval_start") or context["logical_date"]
        day = production_day_of(start, schedule.timezone, schedule.day_start_hour)
    window = production_day(day, schedule.timezone, schedule.day_start_hour)
    plan_ver = _plan_ver(tenant, context.get("params") or {}, day)
    prepare_local_stores(tenant)
    log.info(
        "tenant %s: production day %s = [%s, %s) UTC, plan_ver %s",
        tenant.tenant_id,
        day,
        window.start.isoformat(),
        window.end.isoformat(),
        plan_ver,
    )
    return RunVars.of(window, plan_ver).to_xcom()


def _plan_ver(tenant: TenantConfig, params: dict[str, Any], day: date) -> str:
    """The `plan_ver` param, or the tenant's default for the production day."""
    requested = params.get("plan_ver")
    try:
        return tenant.plan_version.resolve(str(requested) if requested else None, day)
    except ValueError as exc:  # the trigger's check was bypassed: never build it
        raise AirflowFailException(f"tenant {tenant.tenant_id}: {exc}") from exc


def prepare_local_stores(tenant: TenantConfig) -> None:
    """Before the run's table tasks: the folder DuckDB creates its file in, and
    the SQL catalog with its own tables (`open_catalog` makes a local warehouse
    folder). Every task opening a new SQLite catalog at once raced to create
    them ("table iceberg_tables already exists", seen once in a live run; the
    task's retry passed)."""
    from mozart_etl.load.catalog import open_catalog

    if tenant.dbt.duckdb_path and "://" not in tenant.dbt.duckdb_path:
        Path(tenant.dbt.duckdb_path).parent.mkdir(parents=True, exist_ok=True)
    if tenant.iceberg.catalog.type == CatalogType.SQL:
        open_catalog(tenant)


def _day(day_vars: dict[str, str]) -> ProductionDay:
    """The production day as the run's first task resolved it."""
    return RunVars.from_xcom(day_vars).window


def run_extract(
    tenant_folder: str, table_name: str, day_vars: dict[str, str]
) -> dict[str, Any]:
    """Sync's first stage: what raw lacks, from its high-water mark to now."""
    from mozart_etl.load.catalog import open_catalog
    from mozart_etl.pipeline import stages

    tenant = load_task_tenant(Path(tenant_folder))
    table = tenant.table(table_name)
    try:
        manifest = stages.extract(
            tenant,
            table,
            _day(day_vars),
            source_connector(tenant),
            open_catalog(tenant),
        )
    except MozartError as exc:
        _fail_or_retry(exc)
    return manifest.model_dump(mode="json")


def run_sync(
    tenant_folder: str, table_name: str, day_vars: dict[str, str]
) -> dict[str, Any]:
    """A table's whole sync in one task: extract → validate [→ transform] →
    load → reconcile, each stage as in its own task (same functions, same
    ledger records, same errors), without four more task starts. A retry
    after a complete extract resumes from it (pipeline/resume.py)."""
    from mozart_etl.core.lake import Lake
    from mozart_etl.load.catalog import open_catalog
    from mozart_etl.pipeline import stages
    from mozart_etl.pipeline.resume import RunMarkers

    folder = Path(tenant_folder)
    tenant = load_task_tenant(folder)
    table = tenant.table(table_name)
    context = get_current_context()
    run_id = str(context["run_id"])
    markers = RunMarkers(Lake(tenant), run_id)
    try:
        synced = stages.sync_table(
            folder,
            tenant,
            table,
            _day(day_vars),
            source_connector(tenant),
            open_catalog(tenant),
            run_id=run_id,
            markers=markers,
        )
    except MozartError as exc:
        if not _retry_left(context):
            # The retries are spent: whoever clears the task next reads anew.
            markers.forget(RunMarkers.extract_name(table.name))
        _fail_or_retry(exc)
    # (StageOperator releases Arrow's memory after the task, as for every stage.)
    record_raw_event(context, tenant, table.name, raw_event_extra(synced.load))
    return {
        "extract": synced.extract.model_dump(mode="json"),
        "validate": synced.validate.model_dump(mode="json"),
        "transform": synced.transform.model_dump(mode="json")
        if synced.transform
        else None,
        "load": {
            **synced.load.model_dump(mode="json"),
            "ledger": synced.ledger.model_dump(mode="json"),
        },
        "reconcile": synced.reconcile.model_dump(mode="json"),
        "resumed": synced.resumed,
    }


def _retry_left(context: Any) -> bool:
    """Whether Airflow will run this task again after a retryable failure."""
    ti = context["ti"]
    return int(ti.try_number) <= int(ti.max_tries)


def run_validate(
    tenant_folder: str, table_name: str, manifest: dict[str, Any]
) -> dict[str, Any]:
    from mozart_etl.core.lake import ExtractManifest
    from mozart_etl.load.catalog import open_catalog
    from mozart_etl.pipeline import stages

    tenant = load_task_tenant(Path(tenant_folder))
    table = tenant.table(table_name)
    extract = ExtractManifest.model_validate(manifest)
    run_id = str(get_current_context()["run_id"])
    try:
        report = stages.validate(
            tenant, table, extract, open_catalog(tenant), run_id=run_id
        )
    except MozartError as exc:
        _fail_or_retry(exc)
    return report.model_dump(mode="json")


def run_transform(
    tenant_folder: str, table_name: str, report: dict[str, Any]
) -> dict[str, Any]:
    """The table's Python transform over the accepted rows (its own Parquet stage)."""
    from mozart_etl.pipeline import stages
    from mozart_etl.validate.validator import ValidationReport

    folder = Path(tenant_folder)
    tenant = load_task_tenant(folder)
    table = tenant.table(table_name)
    run_id = str(get_current_context()["run_id"])
    validation = ValidationReport.model_validate(report)
    try:
        manifest = stages.transform(tenant, table, folder, validation, run_id=run_id)
    except MozartError as exc:
        _fail_or_retry(exc)
    return manifest.model_dump(mode="json")


def run_load(
    tenant_folder: str,
    table_name: str,
    manifest: dict[str, Any],
    report: dict[str, Any],
    transformed: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Accepted rows (or, with a transform, its output) into the raw table."""
    from mozart_etl.core.lake import ExtractManifest
    from mozart_etl.load.catalog import open_catalog
    from mozart_etl.pipeline import stages
    from mozart_etl.validate.validator import ValidationReport

    tenant = load_task_tenant(Path(tenant_folder))
    table = tenant.table(table_name)
    run_id = str(get_current_context()["run_id"])
    try:
        result, record = stages.load(
            tenant,
            table,
            ExtractManifest.model_validate(manifest),
            ValidationReport.model_validate(report),
            open_catalog(tenant),
            run_id=run_id,
            transformed_folder=transformed["folder"] if transformed else None,
        )
    except MozartError as exc:
        _fail_or_retry(exc)
    # The raw table's Asset event carries what was written; the XCom, the
    # ledger row (the UI's XCom tab shows both).
    record_raw_event(get_current_context(), tenant, table.name, raw_event_extra(result))
    return {**result.model_dump(mode="json"), "ledger": record.model_dump(mode="json")}


def run_reconcile(
    tenant_folder: str,
    table_name: str,
    manifest: dict[str, Any],
    report: dict[str, Any],
    loaded: dict[str, Any],
) -> dict[str, Any]:
    """Every source row the sync read is in raw (or quarantined), and raw holds
    no live row the source lost; the ledger records both sides."""
    from mozart_etl.core.lake import ExtractManifest
    from mozart_etl.load.catalog import open_catalog
    from mozart_etl.pipeline import stages
    from mozart_etl.validate.validator import ValidationReport

    tenant = load_task_tenant(Path(tenant_folder))
    table = tenant.table(table_name)
    try:
        result = stages.check(
            tenant,
            table,
            ExtractManifest.model_validate(manifest),
            ValidationReport.model_validate(report),
            source_connector(tenant),
            open_catalog(tenant),
            run_id=str(get_current_context()["run_id"]),
        )
    except MozartError as exc:
        _fail_or_retry(exc)
    finally:
        release_arrow_memory()
    return result.model_dump(mode="json")


def run_publish(tenant_folder: str, day_vars: dict[str, str]) -> dict[str, Any]:
    """Copy the production day's marts to the tenant's target PostgreSQL."""
    from mozart_etl.publish.postgres import publish_marts

    tenant = load_task_tenant(Path(tenant_folder))
    run = RunVars.from_xcom(day_vars)
    _skip_a_day_without_data(tenant, run)
    # A worker that just ran dbt-duckdb still holds its read-write connection to
    # the warehouse, which forbids the read-only one publish opens.
    forget_dbt_duckdb_environment(None)
    try:
        result = publish_marts(
            tenant, run.production_day, publish_target(tenant), run.plan_ver
        )
    except MozartError as exc:
        _fail_or_retry(exc)
    return result.model_dump(mode="json")


def _skip_a_day_without_data(tenant: TenantConfig, run: RunVars) -> None:
    """Publish nothing for a day the source has no data for yet (e.g. the
    first run after unpausing, on a source whose data ends earlier): its marts
    would replace the APS's rows with empty ones (pipeline/activity.py)."""
    from airflow.sdk.exceptions import AirflowSkipException

    from mozart_etl.load.catalog import open_catalog
    from mozart_etl.pipeline.activity import day_has_data

    if not day_has_data(open_catalog(tenant), tenant, run.window):
        raise AirflowSkipException(
            f"tenant {tenant.tenant_id}: production day {run.production_day}: "
            "the source has no row at or after the day's start, so nothing is "
            "published; run the day again once the source has its data"
        )


def publish_target(tenant: TenantConfig) -> PostgresTarget:
    from mozart_etl.publish.postgres import PostgresTarget

    assert tenant.publish is not None
    target = tenant.publish.target
    if target.conn_id is None:
        return PostgresTarget.from_config(target)
    return with_connection(
        PostgresTarget.from_settings(target), target.conn_id, tenant=tenant.tenant_id
    )
