"""The default DAG shape's wiring for tenants with and without dbt models."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mozart_etl.config.loader import load_tenant
from mozart_etl.factory.dag_factory import build_tenant_dag

ROOT = Path(__file__).resolve().parents[2]


def _demo_without(tmp_path: Path, layers: tuple[str, ...]) -> Path:
    """The demo tenant whose layer manifests for `layers` hold no nodes (as
    `mozart manifests` writes them for a tenant without such models)."""
    folder = tmp_path / "demo"
    shutil.copytree(ROOT / "tenants" / "demo", folder, symlinks=True)
    for layer in layers:
        path = folder / "dbt" / "target" / f"cosmos_manifest_{layer}.json"
        manifest = json.loads(path.read_text())
        manifest["nodes"] = {}
        path.write_text(json.dumps(manifest))
    return folder


@pytest.mark.parametrize(
    ("empty", "dbt_tasks"),
    [
        ((), ["dbt_staging", "dbt_marts"]),
        (("marts",), ["dbt_staging"]),
        (("staging", "marts"), []),
    ],
)
def test_a_layer_without_models_gets_no_task(
    tmp_path: Path, mozart_home: Path, empty: tuple[str, ...], dbt_tasks: list[str]
) -> None:
    folder = _demo_without(tmp_path, empty)
    tenant = load_tenant(folder)
    dag = build_tenant_dag(folder, tenant)
    syncs = {f"sync.{table.name}" for table in tenant.tables}
    assert set(dag.task_ids) == {"production_day", *syncs, *dbt_tasks}
    # Each dbt task waits for every sync (or the layer before it).
    upstream = syncs
    for task_id in dbt_tasks:
        assert dag.task_dict[task_id].upstream_task_ids == upstream
        upstream = {task_id}
    # The marts task, when there is one, declares every mart's Asset.
    if "dbt_marts" in dbt_tasks:
        outlets = {asset.name for asset in dag.task_dict["dbt_marts"].outlets}
        assert "demo.mart_wip" in outlets and len(outlets) == 9
