"""Airflow Assets: every raw table and every mart, so other DAGs can wait for them.

URIs are stable across machines and environments (no file paths, no hosts):

- raw table  `iceberg://<catalog>/<tid>_raw/<table>` (PyIceberg's catalog name),
- mart       `iceberg://<trino catalog>/<tid>/<mart>` on the Trino target, or
             `duckdb://<warehouse file name>/<tid>/<mart>` on the DuckDB one.

Asset names are `<namespace>.<table>`, so a consumer can also say
`Asset.ref(name="demo.mart_wip")`. The task that writes the table declares it
as an outlet and attaches what it wrote (rows, snapshot, partition) as the
event's `extra`. Cosmos's own dataset emission stays off (`emit_datasets`):
it would add a second, path-based URI for the same mart at run time.
"""

from __future__ import annotations

from pathlib import PurePath

from airflow.sdk import Asset

from mozart_etl.config.constants import DbtTarget
from mozart_etl.config.models import TenantConfig

ASSET_GROUP = "mozart"


def raw_asset(tenant: TenantConfig, table_name: str) -> Asset:
    catalog = tenant.iceberg.catalog.name
    namespace = tenant.raw_namespace
    return Asset(
        name=f"{namespace}.{table_name}",
        uri=f"iceberg://{catalog}/{namespace}/{table_name}",
        group=ASSET_GROUP,
        extra={"tenant_id": tenant.tenant_id, "layer": "raw"},
    )


def mart_asset(tenant: TenantConfig, model: str) -> Asset:
    namespace = tenant.namespace
    dbt = tenant.dbt
    if dbt.target == DbtTarget.TRINO and dbt.trino is not None:
        uri = f"iceberg://{dbt.trino.catalog}/{namespace}/{model}"
    else:
        warehouse = PurePath(dbt.duckdb_path or f"{tenant.tenant_id}.duckdb").name
        uri = f"duckdb://{warehouse}/{namespace}/{model}"
    return Asset(
        name=f"{namespace}.{model}",
        uri=uri,
        group=ASSET_GROUP,
        extra={"tenant_id": tenant.tenant_id, "layer": "marts"},
    )
