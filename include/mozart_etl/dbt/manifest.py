"""Build each tenant's dbt manifest (`dbt deps` + `dbt parse`) ahead of parse time.

Cosmos renders task groups from this file (LoadMode.DBT_MANIFEST), so the
scheduler never runs `dbt ls` while parsing DAGs.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from mozart_etl.config.models import TenantConfig
from mozart_etl.dbt.project import DBT_MANIFEST_FILE, manifest_path, tenant_dbt_dir
from mozart_etl.dbt.runner import PLACEHOLDER_VARS, invoke_dbt

log = logging.getLogger(__name__)


def build_manifest(tenant_folder: Path, tenant: TenantConfig) -> Path:
    invoke_dbt(tenant_folder, tenant, ["deps", "--quiet"])
    invoke_dbt(tenant_folder, tenant, ["parse", "--quiet", "--vars", PLACEHOLDER_VARS])
    path = manifest_path(tenant_folder)
    write_render_manifest(tenant_dbt_dir(tenant_folder) / DBT_MANIFEST_FILE, path)
    log.info("tenant %s: dbt manifest at %s", tenant.tenant_id, path)
    return path


# The parts of a manifest Cosmos uses to render task groups.
RENDER_KEYS = ("metadata", "nodes", "sources", "exposures", "selectors")


def write_render_manifest(dbt_manifest: Path, target: Path) -> None:
    manifest = json.loads(dbt_manifest.read_text(encoding="utf-8"))
    trimmed = {key: manifest[key] for key in RENDER_KEYS if key in manifest}
    temp = target.with_suffix(".tmp")
    temp.write_text(json.dumps(trimmed), encoding="utf-8")
    temp.replace(target)
