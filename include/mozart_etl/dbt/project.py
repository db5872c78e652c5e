"""Where a tenant's dbt project and its artefacts live (light: on the parse path)."""

from __future__ import annotations

from pathlib import Path

from mozart_etl.config.loader import project_root

SOURCES_FILE = Path("models") / "staging" / "_sources.yml"
DBT_MANIFEST_FILE = Path("target") / "manifest.json"
# What Cosmos reads at parse time: dbt's manifest without macros and docs
# (about 80 % of the file), so 200 tenants parse in seconds.
MANIFEST_FILE = Path("target") / "cosmos_manifest.json"


def shared_dbt_dir() -> Path:
    """The top-level `dbt/`: the shared profile and the `mozart_core` package."""
    return project_root() / "dbt"


def tenant_dbt_dir(tenant_folder: Path) -> Path:
    return tenant_folder / "dbt"


def manifest_path(tenant_folder: Path) -> Path:
    return tenant_dbt_dir(tenant_folder) / MANIFEST_FILE


def profiles_dir() -> Path:
    return shared_dbt_dir()
