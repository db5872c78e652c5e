"""DAG integrity: every tenant folder gives one DAG, wired as the factory promises."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from airflow.models.dagbag import DagBag
from airflow.serialization.serialized_objects import DagSerialization

from mozart_etl.config.loader import load_tenant, tenant_folders
from mozart_etl.factory.assets import mart_asset, raw_asset
from mozart_etl.factory.dag_factory import (
    CONFIG_ERROR_TAG,
    SHAPE_VAR,
    STAGES_SHAPE,
    TABLES_SHAPE,
)

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "tenants" / "demo"
EXAMPLE_CONSUMER = "demo_marts_consumer"  # dags/examples/: scheduled on demo's marts
HEAVY_MODULES = ["duckdb", "pyarrow", "pyiceberg", "psycopg", "pymysql", "dbt.cli.main"]


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    """The DAG folder in the default shape (`tables`)."""
    return DagBag(dag_folder=str(ROOT / "dags"))


@pytest.fixture(scope="module")
def stages_dagbag() -> DagBag:
    """The DAG folder in the `stages` shape (read when the DAGs are built)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SHAPE_VAR, STAGES_SHAPE)
        return DagBag(dag_folder=str(ROOT / "dags"))


@pytest.fixture(params=[TABLES_SHAPE, STAGES_SHAPE])
def any_dagbag(request: pytest.FixtureRequest) -> DagBag:
    """Each shape's DAG folder in turn."""
    name = "dagbag" if request.param == TABLES_SHAPE else "stages_dagbag"
    return request.getfixturevalue(name)


def _marts(folder: Path = DEMO) -> list[str]:
    return sorted(p.stem for p in (folder / "dbt" / "models" / "marts").glob("*.sql"))


def test_the_default_shape_is_tables(dagbag: DagBag, stages_dagbag: DagBag) -> None:
    assert SHAPE_VAR not in os.environ  # tests/conftest.py: the default unless asked
    assert "sync.lot_history" in dagbag.dags["demo"].task_ids
    assert "lot_history.extract" not in dagbag.dags["demo"].task_ids
    assert "lot_history.extract" in stages_dagbag.dags["demo"].task_ids


def test_no_import_errors_and_one_dag_per_tenant(any_dagbag: DagBag) -> None:
    assert any_dagbag.import_errors == {}
    tenants = {folder.name for folder in tenant_folders(ROOT / "tenants")}
    maintenance = {f"{tenant}.maintenance" for tenant in tenants}  # dags/maintenance.py
    assert set(any_dagbag.dag_ids) == tenants | maintenance | {EXAMPLE_CONSUMER}
    broken = {d for d, dag in any_dagbag.dags.items() if CONFIG_ERROR_TAG in dag.tags}
    assert broken == set()


def test_every_dag_serializes(any_dagbag: DagBag) -> None:
    """The dag-processor stores serialized DAGs; a DAG that cannot be is not shown."""
    for dag in any_dagbag.dags.values():
        restored = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
        assert set(restored.task_ids) == set(dag.task_ids)


def test_demo_dag_settings(any_dagbag: DagBag) -> None:
    dag = any_dagbag.dags["demo"]
    tenant = load_tenant(DEMO)
    assert dag.max_active_runs == 1
    assert dag.catchup is False
    assert dag.default_args["retries"] == tenant.schedule.retries
    assert {"mozart", "tenant:demo", "source:sqlite"} <= set(dag.tags)
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"
    assert "lot_history" in (dag.doc_md or "")


def test_demo_dag_tasks_and_dependencies(dagbag: DagBag) -> None:
    """The `tables` shape: a sync task per table, one dbt build task per layer."""
    dag = dagbag.dags["demo"]
    tenant = load_tenant(DEMO)
    tables = [table.name for table in tenant.tables]
    marts = _marts()
    assert len(tables) == 9 and len(marts) == 9
    syncs = {f"sync.{t}" for t in tables}
    assert set(dag.task_ids) == {"production_day", *syncs, "dbt_staging", "dbt_marts"}

    day = dag.get_task("production_day")
    assert day.upstream_task_ids == set()
    # Each sync reads the production day; dbt reads raw once every table synced.
    assert day.downstream_task_ids == syncs
    for table in tables:
        sync = dag.get_task(f"sync.{table}")
        assert sync.upstream_task_ids == {"production_day"}
        assert sync.downstream_task_ids == {"dbt_staging"}
        assert [a.uri for a in sync.outlets] == [raw_asset(tenant, table).uri]
        assert sync.op_kwargs["table_name"] == table
    staging, mart_task = dag.get_task("dbt_staging"), dag.get_task("dbt_marts")
    assert staging.upstream_task_ids == syncs
    assert staging.downstream_task_ids == {"dbt_marts"}
    assert mart_task.upstream_task_ids == {"dbt_staging"}
    assert mart_task.downstream_task_ids == set()
    # Each layer builds its own models folder; the marts task updates every
    # mart's Asset (the staging task none).
    assert staging.select == ["path:models/staging"]
    assert mart_task.select == ["path:models/marts"]
    assert staging.outlets == []
    assert [a.uri for a in mart_task.outlets] == [
        mart_asset(tenant, m).uri for m in marts
    ]


def test_demo_dag_tasks_and_dependencies_stages_shape(stages_dagbag: DagBag) -> None:
    """The `stages` shape: a task per table stage, Cosmos tasks per dbt model."""
    dag = stages_dagbag.dags["demo"]
    tenant = load_tenant(DEMO)
    tables = [table.name for table in tenant.tables]
    staging = sorted((DEMO / "dbt" / "models" / "staging").glob("stg_*.sql"))
    marts = sorted((DEMO / "dbt" / "models" / "marts").glob("mart_*.sql"))
    expected = {"production_day"}
    expected |= {
        f"{t}.{step}"
        for t in tables
        for step in ("extract", "validate", "load", "reconcile")
    }
    # A table with a Python transform runs it between validate and load.
    transformed = {table.name for table in tenant.tables if table.transform}
    assert transformed == {"equipment_event"}
    expected |= {f"{t}.transform" for t in transformed}
    expected |= {f"dbt_staging.{m.stem}.{s}" for m in staging for s in ("run", "test")}
    expected |= {f"dbt_marts.{m.stem}.{s}" for m in marts for s in ("run", "test")}
    # Tests that read two marts (relationships) run detached, after both.
    detached = {t for t in dag.task_ids if t.startswith("dbt_marts.relationships_")}
    assert len(detached) == 1
    (relationship,) = detached
    assert dag.get_task(relationship).upstream_task_ids == {
        "dbt_marts.mart_line_balance.test",
        "dbt_marts.mart_equipment_utilization.test",
    }
    assert set(dag.task_ids) == expected | detached

    for table in tables:
        assert f"{table}.extract" in dag.get_task("production_day").downstream_task_ids
        # load and reconcile also read the extract's manifest (its window).
        assert dag.get_task(f"{table}.extract").downstream_task_ids == {
            f"{table}.validate",
            f"{table}.load",
            f"{table}.reconcile",
        }
        # load also reads validate's report (the quarantined count).
        then = {f"{table}.transform"} if table in transformed else set()
        after_validate = dag.get_task(f"{table}.validate").downstream_task_ids
        assert after_validate == {f"{table}.load", f"{table}.reconcile"} | then
        if then:
            assert dag.get_task(f"{table}.transform").downstream_task_ids == {
                f"{table}.load"
            }
        load_downstream = dag.get_task(f"{table}.load").downstream_task_ids
        assert load_downstream == {f"{table}.reconcile"}
        # dbt reads a table once its load is reconciled with the source.
        reconciled = dag.get_task(f"{table}.reconcile").downstream_task_ids
        assert reconciled == {f"dbt_staging.stg_{table}.run"}
    for model in staging:
        run = dag.get_task(f"dbt_staging.{model.stem}.run")
        assert run.downstream_task_ids == {f"dbt_staging.{model.stem}.test"}
    # Each mart waits for exactly the staging models it reads (from the manifest).
    manifest = json.loads((DEMO / "dbt" / "target" / "manifest.json").read_text())
    for model in marts:
        node = manifest["nodes"][f"model.demo.{model.stem}"]
        reads = {dep.split(".")[-1] for dep in node["depends_on"]["nodes"]}
        assert reads, model.stem
        assert dag.get_task(f"dbt_marts.{model.stem}.run").upstream_task_ids == {
            f"dbt_staging.{name}.test" for name in reads
        }


@pytest.mark.parametrize("shape", [TABLES_SHAPE, STAGES_SHAPE])
def test_dag_file_stays_light(shape: str) -> None:
    """Parsing the DAG folder must not import the stage libraries."""
    probe = (
        "import runpy, sys; dags = runpy.run_path(sys.argv[1]); "
        f"print('HEAVY=' + ','.join(m for m in {HEAVY_MODULES!r} if m in sys.modules))"
        "; print('DEMO=' + ' '.join(sorted(dags['demo'].task_ids)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, str(ROOT / "dags" / "mozart_tenants.py")],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, SHAPE_VAR: shape},
    )
    (line,) = [x for x in result.stdout.splitlines() if x.startswith("HEAVY=")]
    assert line == "HEAVY="
    # The DAG was built in that shape (not a stand-in error DAG).
    (demo,) = [x for x in result.stdout.splitlines() if x.startswith("DEMO=")]
    parsed = demo.removeprefix("DEMO=").split()
    wanted = "sync.lot_history" if shape == TABLES_SHAPE else "lot_history.extract"
    assert wanted in parsed, parsed


def _copy_demo(tenants: Path, name: str = "demo") -> Path:
    target = tenants / name
    shutil.copytree(DEMO, target, symlinks=True, ignore=shutil.ignore_patterns("logs"))
    return target


def test_broken_tenant_only_breaks_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenants = tmp_path / "tenants"
    _copy_demo(tenants)
    broken = tenants / "plant_b"
    broken.mkdir(parents=True)
    config = yaml.safe_load((DEMO / "tenant.yaml").read_text())
    config["tenant_id"] = "plant_b"
    config["tables"][2]["primry_key"] = ["lot_id"]  # a typo: unknown key
    (broken / "tenant.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    monkeypatch.setenv("MOZART_TENANTS_DIR", str(tenants))

    bag = DagBag(dag_folder=str(ROOT / "dags"))

    assert bag.import_errors == {}
    # plant_b's broken config gets no maintenance DAG (dags/maintenance.py)
    assert set(bag.dag_ids) == {"demo", "demo.maintenance", "plant_b", EXAMPLE_CONSUMER}
    good = bag.dags["demo"]
    assert CONFIG_ERROR_TAG not in good.tags
    assert "sync.lot_history" in good.task_ids
    assert {"dbt_staging", "dbt_marts"} <= set(good.task_ids)
    stand_in = bag.dags["plant_b"]
    assert CONFIG_ERROR_TAG in stand_in.tags
    assert stand_in.task_ids == ["config_error"]
    message = stand_in.doc_md or ""
    assert "tenant=plant_b" in message
    assert "tables[lot_history].primry_key" in message
    assert "Extra inputs are not permitted" in message
    assert stand_in.description.startswith("CONFIG ERROR")


def test_missing_dbt_manifest_is_the_tenants_own_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenants = tmp_path / "tenants"
    _copy_demo(tenants)
    other = _copy_demo(tenants, "plant_c")
    text = (
        (other / "tenant.yaml")
        .read_text()
        .replace("tenant_id: demo", "tenant_id: plant_c")
        # its own pool and warehouse (isolation is checked before the manifest)
        .replace("mozart_duckdb_demo", "mozart_duckdb_plant_c")
        .replace("demo_marts.duckdb", "plant_c_marts.duckdb")
    )
    (other / "tenant.yaml").write_text(text)
    shutil.rmtree(other / "dbt" / "target")
    monkeypatch.setenv("MOZART_TENANTS_DIR", str(tenants))

    bag = DagBag(dag_folder=str(ROOT / "dags"))

    assert CONFIG_ERROR_TAG not in bag.dags["demo"].tags
    assert CONFIG_ERROR_TAG in bag.dags["plant_c"].tags
    assert "manifest" in (bag.dags["plant_c"].doc_md or "")
    assert "make manifests" in (bag.dags["plant_c"].doc_md or "")
