"""Build each tenant's dbt manifest (`dbt deps` + `dbt parse`) ahead of parse time.

Cosmos renders task groups from this file (LoadMode.DBT_MANIFEST), so the
scheduler never runs `dbt ls` while parsing DAGs.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from mozart_etl.config.models import TenantConfig
from mozart_etl.dbt.project import (
    DBT_LAYERS,
    DBT_MANIFEST_FILE,
    PROFILE_NAME,
    manifest_path,
    tenant_dbt_dir,
)
from mozart_etl.dbt.runner import invoke_dbt, tenant_vars

log = logging.getLogger(__name__)


def build_manifest(tenant_folder: Path, tenant: TenantConfig) -> Path:
    """The manifest, parsed as the DAG's dbt tasks run: the same vars, profile
    and target, so the partial-parse state it leaves (target/) spares the
    first task on this deployment a full parse (dbt keeps a state only for the
    vars, profile, target and resolved connection it was parsed with)."""
    invoke_dbt(tenant_folder, tenant, ["deps", "--quiet"])
    invoke_dbt(
        tenant_folder,
        tenant,
        [
            "parse",
            "--quiet",
            "--vars",
            tenant_vars(tenant),
            "--profile",
            PROFILE_NAME,
            "--target",
            str(tenant.dbt.target),
        ],
    )
    dbt_manifest = tenant_dbt_dir(tenant_folder) / DBT_MANIFEST_FILE
    write_layer_manifests(dbt_manifest, tenant_folder)
    log.info("tenant %s: dbt manifest at %s", tenant.tenant_id, dbt_manifest)
    return dbt_manifest


# The parts of a manifest Cosmos uses to render task groups.
RENDER_KEYS = ("metadata", "exposures", "selectors")


def write_layer_manifests(dbt_manifest: Path, tenant_folder: Path) -> None:
    """One trimmed manifest per layer: its models, their tests, and (for the first
    layer) the sources. A test reading models of two layers goes with the later."""
    manifest = json.loads(dbt_manifest.read_text(encoding="utf-8"))
    layer_of = {
        node_id: _layer(node)
        for node_id, node in manifest["nodes"].items()
        if node["resource_type"] != "test"
    }
    for index, layer in enumerate(DBT_LAYERS):
        nodes = {
            node_id: node
            for node_id, node in manifest["nodes"].items()
            if _node_layer(node, layer_of) == layer
        }
        trimmed = {key: manifest[key] for key in RENDER_KEYS if key in manifest}
        trimmed["nodes"] = nodes
        trimmed["sources"] = manifest.get("sources", {}) if index == 0 else {}
        _write_atomically(manifest_path(tenant_folder, layer), json.dumps(trimmed))


def _layer(node: dict[str, Any]) -> str | None:
    parts = Path(node.get("original_file_path", "")).parts
    return parts[1] if len(parts) > 2 and parts[0] == "models" else None


def _node_layer(node: dict[str, Any], layer_of: dict[str, str | None]) -> str | None:
    if node["resource_type"] != "test":
        return _layer(node)
    layers = [layer_of.get(dep) for dep in node["depends_on"]["nodes"]]
    ranked = [DBT_LAYERS.index(layer) for layer in layers if layer in DBT_LAYERS]
    return DBT_LAYERS[max(ranked)] if ranked else None


def _write_atomically(target: Path, text: str) -> None:
    temp = target.with_suffix(".tmp")
    temp.write_text(text, encoding="utf-8")
    temp.replace(target)
