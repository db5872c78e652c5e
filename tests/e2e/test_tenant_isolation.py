"""One tenant's broken dbt model breaks only that tenant, and within it only the
models downstream of the broken one (fine-grained dependencies from the manifest)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from airflow.models.dagbag import DagBag

from mozart_etl.cli import main
from mozart_etl.config.loader import load_tenant
from mozart_etl.demo.generate import DEMO_DAY, generate_demo_source
from mozart_etl.demo.run import run_tenant_day
from mozart_etl.factory.dag_factory import CONFIG_ERROR_TAG
from tests.cli import run_mozart

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "tenants" / "demo"

pytestmark = pytest.mark.e2e


def _copy_demo(tenants: Path, tenant_id: str) -> Path:
    target = tenants / tenant_id
    shutil.copytree(
        DEMO, target, ignore=shutil.ignore_patterns("target", "dbt_packages", "logs")
    )
    config = yaml.safe_load((target / "tenant.yaml").read_text())
    config["tenant_id"] = tenant_id
    config["schedule"]["retries"] = 0  # fail fast in tests
    config["dbt"]["duckdb_path"] = f"${{MOZART_HOME}}/warehouse/{tenant_id}.duckdb"
    config["dbt"]["pool"] = f"mozart_duckdb_{tenant_id}"
    config["source"]["database"] = f"${{MOZART_HOME}}/{tenant_id}/source.sqlite"
    (target / "tenant.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    project = target / "dbt" / "dbt_project.yml"
    text = project.read_text().replace("name: demo", f"name: {tenant_id}")
    project.write_text(text.replace("\n  demo:\n", f"\n  {tenant_id}:\n"))
    return target


def test_a_broken_dbt_project_leaves_the_other_tenants_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenants = tmp_path / "tenants"
    _copy_demo(tenants, "plant_ok")
    broken = _copy_demo(tenants, "plant_bad")
    model = broken / "dbt" / "models" / "staging" / "stg_equipment.sql"
    model.write_text("select * from {{ ref('no_such_model') }}\n")
    assert main(["--tenants-dir", str(tenants), "sync"]) == 0

    result = run_mozart("--tenants-dir", str(tenants), "manifests")
    assert result.returncode == 1
    assert "tenant=plant_bad" in result.stderr
    target = tenants / "plant_ok" / "dbt" / "target"
    assert (target / "cosmos_manifest_staging.json").exists()

    monkeypatch.setenv("MOZART_TENANTS_DIR", str(tenants))
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert CONFIG_ERROR_TAG not in bag.dags["plant_ok"].tags
    assert CONFIG_ERROR_TAG in bag.dags["plant_bad"].tags
    assert "manifest" in (bag.dags["plant_bad"].doc_md or "")


def test_a_failing_model_fails_only_what_depends_on_it(
    tmp_path: Path, mozart_home: Path, airflow_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenants = tmp_path / "tenants"
    broken = _copy_demo(tenants, "plant_bad")
    model = broken / "dbt" / "models" / "staging" / "stg_equipment.sql"
    model.write_text(
        "select equipment_id, no_such_column from {{ source('raw', 'equipment') }}\n"
    )
    assert main(["--tenants-dir", str(tenants), "sync"]) == 0
    assert run_mozart("--tenants-dir", str(tenants), "manifests").returncode == 0
    monkeypatch.setenv("MOZART_TENANTS_DIR", str(tenants))
    generate_demo_source(Path(load_tenant(broken).source.database))

    run = run_tenant_day("plant_bad", DEMO_DAY)

    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert str(run.state) == "failed"
    assert states["dbt_staging.stg_equipment.run"] == "failed"
    # Every table still loaded, every other staging model built and tested.
    for task_id, state in states.items():
        if task_id.endswith((".extract", ".validate", ".load")):
            assert state == "success", task_id
        if task_id.startswith("dbt_staging.") and "stg_equipment" not in task_id:
            assert state == "success", task_id
    # Marts that read stg_equipment stop; the others are built.
    for mart in ("mart_equipment_utilization", "mart_line_balance"):
        assert states[f"dbt_marts.{mart}.run"] == "upstream_failed", mart
    for mart in (
        "mart_wip",
        "mart_cycle_time",
        "mart_lead_time",
        "mart_plan_vs_actual",
    ):
        assert states[f"dbt_marts.{mart}.run"] == "success", mart
