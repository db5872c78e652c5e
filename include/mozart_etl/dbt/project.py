"""Where a tenant's dbt project and its artefacts live (light: on the parse path)."""

from __future__ import annotations

from pathlib import Path

from mozart_etl.config.loader import project_root

SOURCES_FILE = Path("models") / "staging" / "_sources.yml"
DBT_MANIFEST_FILE = Path("target") / "manifest.json"
# The dbt layers, each rendered as its own Cosmos task group, in build order.
DBT_LAYERS = ("staging", "marts")
PROFILE_NAME = "mozart"
"""The one profile of the shared profiles.yml (every tenant's target is in it)."""
PROJECT_FILES = ("dbt_project.yml", "packages.yml")
"""The two files every tenant's dbt project needs and no one edits: its name
and profile, and the shared `mozart_core` package."""
TEMPLATE_TENANT = "_template"
TENANT_ID_PLACEHOLDER = "__TENANT_ID__"


def shared_dbt_dir() -> Path:
    """The top-level `dbt/`: the shared profile and the `mozart_core` package."""
    return project_root() / "dbt"


def tenant_dbt_dir(tenant_folder: Path) -> Path:
    return tenant_folder / "dbt"


def manifest_path(tenant_folder: Path, layer: str) -> Path:
    """What Cosmos reads at parse time for one layer: only that layer's nodes and
    tests, no macros or docs (a tenth of dbt's manifest), so that 200 tenants
    parse in seconds and no path selection runs while parsing."""
    return tenant_dbt_dir(tenant_folder) / "target" / f"cosmos_manifest_{layer}.json"


def project_files(tenant_folder: Path, tenant_id: str) -> dict[Path, str]:
    """The dbt project's fixed files, as the repository's template writes them
    for `tenant_id`: `mozart sync` adds those a tenant lacks, so a tenant can
    be written as tenant.yaml alone."""
    template = project_root() / "tenants" / TEMPLATE_TENANT / "dbt"
    return {
        tenant_dbt_dir(tenant_folder) / name: (template / name)
        .read_text(encoding="utf-8")
        .replace(TENANT_ID_PLACEHOLDER, tenant_id)
        for name in PROJECT_FILES
    }


def profiles_dir() -> Path:
    return shared_dbt_dir()
