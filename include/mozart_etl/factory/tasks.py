"""Task callables: thin wrappers that load the tenant and call one stage.

Heavy stage modules are imported inside each function (Airflow's parse-path
rule); results go to XCom as plain dicts without secrets.
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import get_current_context
from airflow.sdk.exceptions import AirflowFailException

from mozart_etl.calendar import ProductionDay, production_day, production_day_of
from mozart_etl.config.loader import load_tenant
from mozart_etl.config.models import TenantConfig
from mozart_etl.errors import MozartError

if TYPE_CHECKING:
    from mozart_etl.extract.connectors import Credentials

log = logging.getLogger(__name__)


def _fail_or_retry(exc: MozartError) -> None:
    """Terminal errors (bad data, bad config) fail at once; others may retry."""
    if exc.terminal:
        raise AirflowFailException(str(exc)) from exc
    raise exc


def resolve_production_day(tenant_folder: str) -> dict[str, str]:
    """The production day of this run: the `production_day` param, or the interval's."""
    tenant = load_tenant(Path(tenant_folder))
    context = get_current_context()
    schedule = tenant.schedule
    requested = (context.get("params") or {}).get("production_day")
    if requested:
        day = date.fromisoformat(str(requested))
    else:
        start = context.get("data_interval_start") or context["logical_date"]
        day = production_day_of(start, schedule.timezone, schedule.day_start_hour)
    window = production_day(day, schedule.timezone, schedule.day_start_hour)
    _ensure_local_dirs(tenant)
    log.info(
        "tenant %s: production day %s = [%s, %s) UTC",
        tenant.tenant_id,
        day,
        window.start.isoformat(),
        window.end.isoformat(),
    )
    return window.as_vars()


def _ensure_local_dirs(tenant: TenantConfig) -> None:
    """DuckDB and the SQL catalog create files, not their folders."""
    folders = [tenant.iceberg.catalog.warehouse]
    if tenant.dbt.duckdb_path:
        folders.append(str(Path(tenant.dbt.duckdb_path).parent))
    for folder in folders:
        if "://" not in folder:
            Path(folder).mkdir(parents=True, exist_ok=True)


def _day(tenant: TenantConfig, day_vars: dict[str, str]) -> ProductionDay:
    schedule = tenant.schedule
    day = date.fromisoformat(day_vars["production_day"])
    return production_day(day, schedule.timezone, schedule.day_start_hour)


def run_extract(
    tenant_folder: str, table_name: str, day_vars: dict[str, str]
) -> dict[str, Any]:
    from mozart_etl.extract.connectors import connector_for
    from mozart_etl.extract.extractor import extract_table
    from mozart_etl.load.catalog import open_catalog
    from mozart_etl.load.iceberg import raw_table_exists

    tenant = load_tenant(Path(tenant_folder))
    table = tenant.table(table_name)
    credentials = _credentials(tenant)
    connector = connector_for(tenant.source.type, credentials)
    initial = not raw_table_exists(open_catalog(tenant), tenant, table)
    try:
        manifest = extract_table(
            tenant, table, _day(tenant, day_vars), connector, initial=initial
        )
    except MozartError as exc:
        _fail_or_retry(exc)
    return manifest.model_dump(mode="json")


def _credentials(tenant: TenantConfig) -> Credentials:
    """From tenant.yaml, or from an Airflow connection so secrets stay in Airflow."""
    from mozart_etl.extract.connectors import Credentials

    if tenant.source.conn_id is None:
        return Credentials.from_source(tenant.source)
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(tenant.source.conn_id)
    return Credentials(
        host=conn.host,
        port=conn.port,
        database=conn.schema or tenant.source.database,
        user=conn.login,
        password=conn.password,
        options=tenant.source.options,
    )


def run_validate(
    tenant_folder: str, table_name: str, manifest: dict[str, Any]
) -> dict[str, Any]:
    from mozart_etl.lake import ExtractManifest
    from mozart_etl.validate.validator import validate_extract

    tenant = load_tenant(Path(tenant_folder))
    table = tenant.table(table_name)
    try:
        report = validate_extract(
            tenant, table, ExtractManifest.model_validate(manifest)
        )
    except MozartError as exc:
        _fail_or_retry(exc)
    return report.model_dump(mode="json")


def run_load(
    tenant_folder: str,
    table_name: str,
    manifest: dict[str, Any],
    report: dict[str, Any],
) -> dict[str, Any]:
    from mozart_etl.lake import ExtractManifest, Lake
    from mozart_etl.load.catalog import open_catalog
    from mozart_etl.load.iceberg import load_partition
    from mozart_etl.validate.validator import ValidationReport, read_accepted

    tenant = load_tenant(Path(tenant_folder))
    table = tenant.table(table_name)
    validation = ValidationReport.model_validate(report)
    rows = read_accepted(Lake(tenant), validation)
    run_id = str(get_current_context()["run_id"])
    try:
        result = load_partition(
            open_catalog(tenant),
            tenant,
            table,
            ExtractManifest.model_validate(manifest),
            rows,
            run_id=run_id,
        )
    except MozartError as exc:
        _fail_or_retry(exc)
    return result.model_dump(mode="json")
