"""The environment the shared dbt profile reads, derived from tenant.yaml.

Only non-secret settings go here: these variables are visible in Airflow's
rendered-template view. Secrets come from Airflow connections named here by
id (the lake's AWS connection, the REST catalog's), resolved at run time,
or from the worker's own environment (a Trino password without a connection).
"""

from __future__ import annotations

import hashlib
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
        "MOZART_ICEBERG_WAREHOUSE": warehouse,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        # Where tenants find the shared package, wherever their folder lives.
        "MOZART_DBT_CORE": str(shared_dbt_dir() / "mozart_core"),
    }
    if catalog.uri is not None:
        env["MOZART_ICEBERG_URI"] = catalog.uri
    env.update(_connection_env(tenant))
    if tenant.dbt.duckdb_path:
        env["MOZART_DUCKDB_PATH"] = tenant.dbt.duckdb_path
    if tenant.dbt.trino is not None:
        env["MOZART_TRINO_HOST"] = tenant.dbt.trino.host
        env["MOZART_TRINO_PORT"] = str(tenant.dbt.trino.port)
        env["MOZART_TRINO_USER"] = tenant.dbt.trino.user
        env["MOZART_TRINO_CATALOG"] = tenant.dbt.trino.catalog
        env["MOZART_TRINO_HTTP_SCHEME"] = tenant.dbt.trino.http_scheme
    return env


def _connection_env(tenant: TenantConfig) -> dict[str, str]:
    """Where the dbt-duckdb reader of raw (dbt/iceberg_source.py) finds the
    catalog and the lake's object store: connection ids, endpoint and region,
    never keys. The plugin resolves the connections in the dbt task's own
    process, as the load task does (factory/connections.py)."""
    env: dict[str, str] = {}
    if tenant.iceberg.catalog.conn_id:
        env["MOZART_ICEBERG_CONN_ID"] = tenant.iceberg.catalog.conn_id
    s3 = tenant.storage.s3
    if s3 is not None:
        env["MOZART_ICEBERG_S3_REGION"] = s3.region
        if s3.endpoint_url:
            env["MOZART_ICEBERG_S3_ENDPOINT"] = s3.endpoint_url
        if s3.aws_conn_id:
            env["MOZART_ICEBERG_AWS_CONN_ID"] = s3.aws_conn_id
    return env


def profile_digest(tenant: TenantConfig) -> str:
    """A short digest of what the tenant's dbt profile resolves to.

    dbt reuses its partial-parse state only under the profile it was parsed
    with (the warehouse path, schema and target are hashed into the state), so
    that state is kept per digest: two lakes of one tenant on one machine (a
    test's, a benchmark's, a second deployment's) no longer overwrite each
    other's state and force a full parse (~2 s) on every run that follows."""
    settings = "\n".join(f"{k}={v}" for k, v in sorted(dbt_env(tenant).items()))
    return hashlib.sha256(settings.encode()).hexdigest()[:12]
