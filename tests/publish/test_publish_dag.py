"""The publish task: in the DAG only when the tenant has a `publish:` block,
after every mart (and its tests), in either DAG shape."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mozart_etl.config.loader import load_tenant
from mozart_etl.factory.dag_factory import (
    SHAPE_VAR,
    STAGES_SHAPE,
    TABLES_SHAPE,
    build_tenant_dag,
)

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "tenants" / "demo"

PUBLISH = """
publish:
  target: {conn_id: aps_db}
  schema: aps
  marts: [mart_wip, {mart: mart_cycle_time, mode: full}]
"""


@pytest.mark.parametrize("shape", [TABLES_SHAPE, STAGES_SHAPE])
def test_publish_runs_after_every_mart_and_only_when_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shape: str
) -> None:
    monkeypatch.setenv(SHAPE_VAR, shape)
    folder = tmp_path / "demo"
    shutil.copytree(DEMO, folder, symlinks=True, ignore=shutil.ignore_patterns("logs"))
    plain = build_tenant_dag(folder, load_tenant(folder))
    assert "publish" not in plain.task_ids

    (folder / "tenant.yaml").write_text((DEMO / "tenant.yaml").read_text() + PUBLISH)
    dag = build_tenant_dag(folder, load_tenant(folder))

    publish = dag.get_task("publish")
    assert set(dag.task_ids) == set(plain.task_ids) | {"publish"}
    if shape == TABLES_SHAPE:
        # One task builds (and tests) every mart: publish waits for it (and
        # reads the production day).
        marts = {"dbt_marts"}
        assert publish.upstream_task_ids == {"dbt_marts", "production_day"}
        assert dag.get_task("dbt_marts").downstream_task_ids == {"publish"}
    else:
        marts = {t for t in dag.task_ids if t.startswith("dbt_marts.")}
    leaves = {t for t in marts if not dag.get_task(t).downstream_task_ids - {"publish"}}
    assert leaves and publish.upstream_task_ids >= leaves
    assert publish.upstream_task_ids <= marts | {"production_day"}
    assert publish.downstream_task_ids == set()
    assert publish.op_kwargs["tenant_folder"] == str(folder)
