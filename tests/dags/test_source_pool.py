"""`source.pool`: tenants sharing a source database share one pool for the
tasks that read it (bounding its connections); every other task stays in the
tenant's. The task that reads the source is a table's sync in the default
shape (`sync.<table>`: extract … reconcile), its extract in the `stages` shape."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from mozart_etl.config.isolation import tenant_pool
from mozart_etl.config.loader import load_tenant, project_root
from mozart_etl.core.errors import ConfigError
from mozart_etl.factory.dag_factory import (
    SHAPE_VAR,
    STAGES_SHAPE,
    TABLES_SHAPE,
    build_tenant_dags,
)

SHAPES = [TABLES_SHAPE, STAGES_SHAPE]


def _demo_with_source(tmp_path: Path, **source: object) -> Path:
    folder = tmp_path / "tenants" / "demo"
    shutil.copytree(project_root() / "tenants" / "demo", folder, symlinks=True)
    config = yaml.safe_load((folder / "tenant.yaml").read_text(encoding="utf-8"))
    config["source"].update(source)
    (folder / "tenant.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return folder


def _reads_source(task_id: str, shape: str) -> bool:
    if shape == TABLES_SHAPE:
        return task_id.startswith("sync.")
    return task_id.endswith(".extract")


@pytest.mark.parametrize("shape", SHAPES)
def test_extracts_run_in_the_source_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shape: str
) -> None:
    monkeypatch.setenv(SHAPE_VAR, shape)
    folder = _demo_with_source(tmp_path, pool="source_plant_a")
    dag = build_tenant_dags(folder.parent)["demo"]
    pools = {task.task_id: task.pool for task in dag.tasks}
    extracts = {t for t in pools if _reads_source(t, shape)}
    tenant = load_tenant(folder)
    assert len(extracts) == len(tenant.tables)
    assert {pools[t] for t in extracts} == {"source_plant_a"}
    others = {pools[t] for t in pools if t not in extracts and "dbt_" not in t}
    assert others == {tenant_pool(tenant)}


@pytest.mark.parametrize("shape", SHAPES)
def test_without_a_source_pool_extracts_stay_in_the_tenant_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shape: str
) -> None:
    monkeypatch.setenv(SHAPE_VAR, shape)
    folder = _demo_with_source(tmp_path, pool="")  # blank = unset
    dag = build_tenant_dags(folder.parent)["demo"]
    tenant = load_tenant(folder)
    extracts = [t for t in dag.tasks if _reads_source(t.task_id, shape)]
    assert len(extracts) == len(tenant.tables)
    assert {t.pool for t in extracts} == {tenant_pool(tenant)}


def test_a_pool_name_with_spaces_is_refused(tmp_path: Path) -> None:
    folder = _demo_with_source(tmp_path, pool="plant a; drop")
    with pytest.raises(ConfigError, match=r"source\.pool"):
        load_tenant(folder)
