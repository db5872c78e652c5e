"""Generate each tenant's dbt sources from tenant.yaml (`mozart sync`).

The raw Iceberg tables are the only sources a tenant's models may read; the
file is generated so it can never drift from the tables the DAG loads.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from mozart_etl.config.models import TenantConfig
from mozart_etl.dbt.contracts import MARTS_FILE, render_mart_contracts
from mozart_etl.dbt.mapping import generated_models, mart_models
from mozart_etl.dbt.project import SOURCES_FILE, tenant_dbt_dir

HEADER = "# Generated from tenant.yaml by `mozart sync`: do not edit by hand.\n"


def render_sources(tenant: TenantConfig) -> str:
    source = {
        "name": "raw",
        "description": f"Validated raw tables of tenant {tenant.tenant_id} (Iceberg).",
        "schema": tenant.raw_namespace,
        # dbt-duckdb reads each table through PyIceberg; Trino ignores this.
        "meta": {"plugin": "iceberg"},
        "tables": [
            {
                "name": table.name,
                "description": f"{table.mode}; key {', '.join(table.primary_key)}",
                "columns": [{"name": column.name} for column in table.columns],
            }
            for table in tenant.tables
        ],
    }
    body = yaml.safe_dump(
        {"version": 2, "sources": [source]}, sort_keys=False, allow_unicode=True
    )
    return HEADER + body


def sources_path(tenant_folder: Path) -> Path:
    return tenant_dbt_dir(tenant_folder) / SOURCES_FILE


def generated_files(tenant_folder: Path, tenant: TenantConfig) -> dict[Path, str]:
    """Every file `mozart sync` owns in a tenant's dbt project, with its content:
    sources, mart contracts, and the models generated from column mappings."""
    project = tenant_dbt_dir(tenant_folder)
    models = generated_models(tenant_folder, tenant)
    present = mart_models(tenant_folder, models)
    return {
        sources_path(tenant_folder): render_sources(tenant),
        project / MARTS_FILE: render_mart_contracts(tenant, present),
        **models,
    }


def sync_file(path: Path, wanted: str, *, check: bool) -> bool:
    """Write (or, with `check`, only compare) one generated file; True if up to date."""
    current = path.read_text(encoding="utf-8") if path.exists() else None
    if current == wanted:
        return True
    if not check:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(wanted, encoding="utf-8")
    return False
