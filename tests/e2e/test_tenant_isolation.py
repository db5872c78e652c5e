"""One tenant's broken dbt model breaks only that tenant, and within it only
what depends on the broken one: in the default shape the models and tests of
its layer that read it (one `dbt build` per layer; the next layer waits for the
whole layer); in the `stages` shape the models downstream of it across layers
(fine-grained task dependencies from the manifest)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from airflow.models.dagbag import DagBag

from mozart_etl.config.loader import load_tenant
from mozart_etl.demo.generate import DEMO_DAY, generate_demo_source
from mozart_etl.demo.run import run_tenant_day
from mozart_etl.factory.dag_factory import (
    CONFIG_ERROR_TAG,
    SHAPE_VAR,
    STAGES_SHAPE,
    TABLES_SHAPE,
)
from mozart_etl.ops.cli import main
from tests.cli import run_mozart
from tests.live.tenants import Template, build_template

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "tenants" / "demo"
READS_BROKEN = {"mart_equipment_utilization", "mart_line_balance"}
ISOLATION = Template(
    "plant_bad",
    ("equipment", "equipment_event", "lot_history"),
    (
        "stg_equipment",
        "stg_equipment_event",
        "stg_lot_history",
        *READS_BROKEN,
        "mart_wip",
        "mart_cycle_time",
    ),
    (*READS_BROKEN, "mart_wip", "mart_cycle_time"),
)

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


@pytest.mark.parametrize("shape", [TABLES_SHAPE, STAGES_SHAPE])
def test_a_failing_model_fails_only_what_depends_on_it(
    tmp_path: Path,
    mozart_home: Path,
    airflow_db: Path,
    monkeypatch: pytest.MonkeyPatch,
    shape: str,
) -> None:
    monkeypatch.setenv(SHAPE_VAR, shape)
    # The demo's plant cut to what tells dependents from the rest: equipment
    # (the broken model's table), its events and lot history; marts reading
    # the broken model and marts that do not. (The whole demo in the `stages`
    # shape was 75 tasks; the behaviour is the graph's, not its size.)
    broken = build_template(tmp_path, ISOLATION)
    model = broken / "dbt" / "models" / "staging" / "stg_equipment.sql"
    model.write_text(
        "select equipment_id, no_such_column from {{ source('raw', 'equipment') }}\n"
    )
    monkeypatch.setenv("MOZART_TENANTS_DIR", str(broken.parent))
    generate_demo_source(Path(load_tenant(broken).source.database))

    run = run_tenant_day("plant_bad", DEMO_DAY)

    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert str(run.state) == "failed"
    if shape == STAGES_SHAPE:
        _assert_only_dependents_failed_stages(states)
        return
    # Every table still synced (extract … reconcile).
    tenant = load_tenant(broken)
    for table in tenant.tables:
        assert states[f"sync.{table.name}"] == "success", table.name
    assert states["dbt_staging"] == "failed"
    # In the layer: the model failed, its tests were skipped, every other
    # staging model was built and tested.
    ti = run.get_task_instance("dbt_staging")
    outcomes = ti.xcom_pull(task_ids="dbt_staging", key="models")
    nodes = {o["name"]: o for o in outcomes}
    assert nodes["stg_equipment"]["status"] == "error"
    assert "no_such_column" in nodes["stg_equipment"]["message"]
    staging = {p.stem for p in (broken / "dbt" / "models" / "staging").glob("*.sql")}
    assert {n for n, o in nodes.items() if o["resource_type"] == "model"} == staging
    # Its tests, by the tenant's dbt manifest: those reading the model.
    manifest = json.loads((broken / "dbt" / "target" / "manifest.json").read_text())
    own_tests = {
        node["name"]
        for node in manifest["nodes"].values()
        if node["resource_type"] == "test"
        and "model.plant_bad.stg_equipment" in node["depends_on"]["nodes"]
    }
    assert own_tests and own_tests <= set(nodes)
    for name, outcome in nodes.items():
        if name == "stg_equipment":
            continue
        if name in own_tests:
            assert outcome["status"] == "skipped", name
        else:
            assert outcome["status"] in ("success", "pass"), name
    # The marts layer waits for the whole staging layer: none is built.
    assert states["dbt_marts"] == "upstream_failed"


def _assert_only_dependents_failed_stages(states: dict[str, str]) -> None:
    """The `stages` shape: a task per model; only what reads the model stops."""
    assert states["dbt_staging.stg_equipment.run"] == "failed"
    # Every table still loaded, every other staging model built and tested.
    for task_id, state in states.items():
        if task_id.endswith((".extract", ".validate", ".load")):
            assert state == "success", task_id
        if task_id.startswith("dbt_staging.") and "stg_equipment" not in task_id:
            assert state == "success", task_id
    # Marts that read stg_equipment stop; the others are built.
    for mart in READS_BROKEN:
        assert states[f"dbt_marts.{mart}.run"] == "upstream_failed", mart
    for mart in set(ISOLATION.marts) - READS_BROKEN:
        assert states[f"dbt_marts.{mart}.run"] == "success", mart
