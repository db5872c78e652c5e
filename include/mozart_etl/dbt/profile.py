"""The environment the shared dbt profile reads, derived from tenant.yaml.

Only non-secret settings go here: these variables are visible in Airflow's
rendered-template view. Secrets (a Trino password) come from the worker's
own environment.
"""

from __future__ import annotations

from pathlib import Path

from mozart_etl.config.models import TenantConfig
from mozart_etl.dbt.project import shared_dbt_dir


def dbt_env(tenant: TenantConfig) -> dict[str, str]:
    catalog = tenant.iceberg.catalog
    warehouse = catalog.warehouse
    if "://" not in warehouse:
        warehouse = Path(warehouse).as_uri()
    env = {
        "MOZART_DBT_TARGET": str(tenant.dbt.target),
        "MOZART_DBT_SCHEMA": tenant.namespace,
        "MOZART_ICEBERG_CATALOG": catalog.name,
        "MOZART_ICEBERG_TYPE": str(catalog.type),
        "MOZART_ICEBERG_URI": str(catalog.uri),
        "MOZART_ICEBERG_WAREHOUSE": warehouse,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        # Where tenants find the shared package, wherever their folder lives.
        "MOZART_DBT_CORE": str(shared_dbt_dir() / "mozart_core"),
    }
    if tenant.dbt.duckdb_path:
        env["MOZART_DUCKDB_PATH"] = tenant.dbt.duckdb_path
    if tenant.dbt.trino is not None:
        env["MOZART_TRINO_HOST"] = tenant.dbt.trino.host
        env["MOZART_TRINO_PORT"] = str(tenant.dbt.trino.port)
        env["MOZART_TRINO_USER"] = tenant.dbt.trino.user
        env["MOZART_TRINO_CATALOG"] = tenant.dbt.trino.catalog
        env["MOZART_TRINO_HTTP_SCHEME"] = tenant.dbt.trino.http_scheme
    return env
