"""Run dbt in-process for one tenant, with the shared profile's environment set."""

from __future__ import annotations

import json
from pathlib import Path

from dbt.cli.main import dbtRunner, dbtRunnerResult

from mozart_etl.config.models import TenantConfig
from mozart_etl.core.environ import scoped_environ
from mozart_etl.core.errors import ConfigError
from mozart_etl.dbt.duckdb_env import forget_dbt_duckdb_environment
from mozart_etl.dbt.flag_source import name_flag_sources_cheaply
from mozart_etl.dbt.profile import dbt_env
from mozart_etl.dbt.project import profiles_dir, tenant_dbt_dir

# Offline rendering (compile) needs stand-ins for the run's values (never used
# to build anything); parsing does not (mozart_core's `run_var`).
PLACEHOLDER_DAY_VARS = {
    "production_day": "1970-01-01",
    "window_start": "1970-01-01T00:00:00+00:00",
    "window_end": "1970-01-02T00:00:00+00:00",
    "plan_ver": "placeholder",
}


def tenant_vars(tenant: TenantConfig) -> str:
    """`--vars` as the DAG's dbt tasks pass them (the run's own values go
    through the environment): a parse with these leaves a partial-parse state
    the tasks can reuse."""
    return json.dumps(tenant.dbt_vars())


def placeholder_vars(tenant: TenantConfig) -> str:
    """`--vars` for parse/compile: the tenant's own vars plus a stand-in day."""
    return json.dumps({**tenant.dbt_vars(), **PLACEHOLDER_DAY_VARS})


def invoke_dbt(
    tenant_folder: Path,
    tenant: TenantConfig,
    args: list[str],
    *,
    env: dict[str, str] | None = None,
) -> dbtRunnerResult:
    """`dbt <args>` on the tenant's project; raise ConfigError naming the tenant.

    dbt-duckdb keeps its environment (the warehouse connection, the raw
    reader's catalog) for the process: one left by another tenant's dbt run
    would read that tenant's catalog, so it is dropped before and after."""
    project_dir = tenant_dbt_dir(tenant_folder)
    common = ["--project-dir", str(project_dir), "--profiles-dir", str(profiles_dir())]
    forget_dbt_duckdb_environment()
    name_flag_sources_cheaply()
    try:
        with scoped_environ({**dbt_env(tenant), **(env or {})}):
            result = dbtRunner().invoke([*args, *common])
    finally:
        forget_dbt_duckdb_environment()
    if not result.success:
        raise ConfigError(
            f"`dbt {args[0]}` failed in {project_dir}: {result.exception or 'see log'}",
            tenant=tenant.tenant_id,
        )
    return result
