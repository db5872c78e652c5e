"""What a task wrote, attached to its Asset event (`outlet_events[asset].extra`).

Consumers see it in the UI's asset page and in their triggering events
(`triggering_asset_events`): rows, the Iceberg snapshot, the partition.
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset

from mozart_etl.config.constants import DbtTarget
from mozart_etl.config.loader import load_tenant
from mozart_etl.core.run_vars import DAY_TASK_ID, RunVars
from mozart_etl.dbt.duckdb_env import forget_dbt_duckdb_environment
from mozart_etl.factory.assets import ASSET_GROUP, mart_asset, raw_asset

if TYPE_CHECKING:
    from mozart_etl.config.models import TenantConfig
    from mozart_etl.load.iceberg import LoadResult

log = logging.getLogger(__name__)


def raw_event_extra(result: LoadResult) -> dict[str, Any]:
    return {
        "tenant_id": result.tenant_id,
        "table": result.identifier,
        "mode": str(result.mode),
        "production_day": result.production_day.isoformat(),
        "partition": f"_mozart_partition={result.production_day.isoformat()}",
        "rows_loaded": result.rows_loaded,
        "rows_in_table": result.rows_in_table,
        "snapshot_id": result.snapshot_id,
    }


def record_raw_event(
    context: Any, tenant: TenantConfig, table_name: str, extra: dict[str, Any]
) -> None:
    context["outlet_events"][raw_asset(tenant, table_name)].extra = extra


def record_mart_event(tenant_folder: str, context: Any, result: Any = None) -> None:
    """A dbt task's post-execute hook (bound to its tenant with `partial`): the
    mart's rows for the production day. Only mart `run` tasks have outlets;
    every other dbt task passes."""
    # Only our mart Assets (Cosmos's own, when its emission is on, are not ours).
    marts = [
        outlet
        for outlet in context["task"].outlets
        if isinstance(outlet, Asset) and outlet.group == ASSET_GROUP
    ]
    if not marts:
        return
    tenant = load_tenant(Path(tenant_folder))
    run_vars = RunVars.from_xcom(context["ti"].xcom_pull(task_ids=DAY_TASK_ID))
    models = {asset.name.rsplit(".", 1)[-1]: asset for asset in marts}
    extras = mart_event_extras(tenant, list(models), run_vars)
    for model, asset in models.items():
        context["outlet_events"][mart_asset(tenant, model)].extra = extras[model]
        log.info("asset %s (%s): %s", asset.name, asset.uri, extras[model])


def mart_event_extras(
    tenant: TenantConfig, models: list[str], run_vars: RunVars
) -> dict[str, dict[str, Any]]:
    """Each mart's partition and its rows: the production day's when the product
    standard's grain starts with a date (daily marts), the run's value of the
    mart's `partition` column (e.g. `plan_ver` of master marts), else the whole
    mart. DuckDB only, read-only once dbt let go of the file (one connection for
    all: opening the file costs more than a count): Trino marts carry no count
    (no reader for them yet)."""
    day = run_vars.production_day.isoformat()
    extras: dict[str, dict[str, Any]] = {
        model: {
            "tenant_id": tenant.tenant_id,
            "model": model,
            "production_day": day,
            "target": str(tenant.dbt.target),
        }
        for model in models
    }
    if tenant.dbt.target != DbtTarget.DUCKDB:
        return extras
    from mozart_etl.dbt.contracts import product_standard
    from mozart_etl.publish.warehouse import MartReader

    standard = product_standard()
    forget_dbt_duckdb_environment(None)
    with MartReader(tenant) as reader:
        for model, extra in extras.items():
            spec = standard.get(model, {})
            first = (spec.get("grain") or [None])[0]
            column: str | None = None
            value: date | str | None = None
            if first is not None and spec["columns"][first]["type"] == "date":
                column, value = first, date.fromisoformat(day)
            elif spec.get("partition") in RunVars.model_fields:
                column = spec["partition"]
                value = run_vars.to_xcom()[column]
            extra["rows"] = reader.count(model, day_column=column, day=value)
            extra["partition"] = f"{column}={value}" if column else "all"
    return extras
