"""Onboarding: a tenant made by `mozart new-tenant` validates and its DAG loads."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from airflow.models.dagbag import DagBag

from mozart_etl.config.loader import load_tenant
from mozart_etl.factory.assets import mart_asset
from mozart_etl.factory.dag_factory import CONFIG_ERROR_TAG, SHAPE_VAR, STAGES_SHAPE
from mozart_etl.ops.cli import main
from tests.cli import run_mozart

ROOT = Path(__file__).resolve().parents[2]


def test_new_tenant_validates_and_its_dag_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenants = tmp_path / "tenants"
    shutil.copytree(ROOT / "tenants" / "_template", tenants / "_template")

    assert (
        run_mozart("--tenants-dir", str(tenants), "new-tenant", "plant_x").returncode
        == 0
    )
    assert main(["--tenants-dir", str(tenants), "validate"]) == 0
    assert main(["--tenants-dir", str(tenants), "sync", "--check"]) == 0
    text = (tenants / "plant_x" / "tenant.yaml").read_text()
    assert "__TENANT_ID__" not in text and "tenant_id: plant_x" in text
    # The connection variable as Airflow reads it: the id in upper case.
    assert "AIRFLOW_CONN_PLANT_X_SOURCE" in text and "conn_id: plant_x_source" in text

    monkeypatch.setenv("MOZART_TENANTS_DIR", str(tenants))
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    # the template itself is no tenant; plant_x's maintenance: dags/maintenance.py
    assert set(bag.dag_ids) == {"plant_x", "plant_x.maintenance"}
    dag = bag.dags["plant_x"]
    assert CONFIG_ERROR_TAG not in dag.tags
    assert "sync.lot_history" in dag.task_ids
    assert "dbt_marts" in dag.task_ids
    tenant = load_tenant(tenants / "plant_x")
    marts = {asset.uri for asset in dag.get_task("dbt_marts").outlets}
    assert mart_asset(tenant, "mart_wip").uri in marts

    # The `stages` shape renders the scaffold's manifests with Cosmos too.
    monkeypatch.setenv(SHAPE_VAR, STAGES_SHAPE)
    stages = DagBag(dag_folder=str(ROOT / "dags")).dags["plant_x"]
    assert CONFIG_ERROR_TAG not in stages.tags
    assert "lot_history.load" in stages.task_ids
    assert "dbt_marts.mart_wip.run" in stages.task_ids


def test_new_tenant_refuses_a_bad_id_or_an_existing_folder(tmp_path: Path) -> None:
    tenants = tmp_path / "tenants"
    shutil.copytree(ROOT / "tenants" / "_template", tenants / "_template")
    assert main(["--tenants-dir", str(tenants), "new-tenant", "Plant-X"]) == 1
    assert not (tenants / "Plant-X").exists()
    (tenants / "plant_y").mkdir()
    assert main(["--tenants-dir", str(tenants), "new-tenant", "plant_y"]) == 1
