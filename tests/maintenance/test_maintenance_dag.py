"""The maintenance DAGs: one per repository tenant, built light, and one run
through Airflow (`dag.test`) on a small tenant."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from airflow.models.dagbag import DagBag
from airflow.serialization.serialized_objects import DagSerialization

from mozart_etl.config.loader import tenant_folders
from mozart_etl.config.models import TenantConfig
from mozart_etl.factory.maintenance_dag import (
    REPORT_TASK,
    STEPS,
    build_maintenance_dag,
    build_maintenance_dags,
    maintenance_dag_id,
)
from mozart_etl.load.catalog import open_catalog
from mozart_etl.maintenance.run import REPORT_FOLDER
from mozart_etl.maintenance.settings import CRON_VAR
from tests.maintenance import history

ROOT = Path(__file__).resolve().parents[2]
HEAVY_MODULES = ["duckdb", "pyarrow", "pyiceberg", "psycopg", "pymysql", "dbt.cli.main"]
CONTEXT_DAG_ID = "_AIRFLOW_PARSING_CONTEXT_DAG_ID"
TASKS = {*STEPS, REPORT_TASK}


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return DagBag(dag_folder=str(ROOT / "dags"))


def test_every_tenant_has_its_maintenance_dag(dagbag: DagBag) -> None:
    assert dagbag.import_errors == {}
    tenants = [folder.name for folder in tenant_folders(ROOT / "tenants")]
    assert sorted(tenants) == ["acme", "demo"]
    for tenant in tenants:
        dag = dagbag.dags[maintenance_dag_id(tenant)]
        assert set(dag.task_ids) == TASKS
        # compact → expire → ledger → sweep → report, one after the other
        chain = [*STEPS, REPORT_TASK]
        for before, after in itertools.pairwise(chain):
            assert dag.get_task(before).downstream_task_ids == {after}
        assert dag.get_task(STEPS[0]).upstream_task_ids == set()
        assert dag.max_active_runs == 1 and dag.catchup is False
        assert {"mozart", "maintenance", f"tenant:{tenant}"} <= set(dag.tags)
        assert all(t.pool == f"mozart_{tenant}" for t in dag.tasks)
        restored = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
        assert set(restored.task_ids) == TASKS
    # The quiet hour: 3.5 h after the tenant's day boundary, in its own zone.
    demo = dagbag.dags["demo.maintenance"].timetable
    acme = dagbag.dags["acme.maintenance"].timetable
    assert (demo.expression, str(demo.timezone)) == ("30 3 * * *", "Asia/Seoul")
    assert (acme.expression, str(acme.timezone)) == (
        "30 9 * * *",
        "America/New_York",
    )


def test_the_schedule_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CRON_VAR, "15 2 * * 0")
    dags = build_maintenance_dags(ROOT / "tenants")
    assert dags["demo.maintenance"].timetable.expression == "15 2 * * 0"


def test_a_task_parse_builds_only_its_maintenance_dag(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(CONTEXT_DAG_ID, "demo.maintenance")
    assert list(build_maintenance_dags(ROOT / "tenants")) == ["demo.maintenance"]
    monkeypatch.setenv(CONTEXT_DAG_ID, "demo")  # the tenant's own DAG's task
    assert build_maintenance_dags(ROOT / "tenants") == {}


def test_the_dag_file_stays_light() -> None:
    probe = (
        "import runpy, sys; dags = runpy.run_path(sys.argv[1]); "
        f"print('HEAVY=' + ','.join(m for m in {HEAVY_MODULES!r} if m in sys.modules))"
        "; print('DAGS=' + ' '.join(sorted(k for k in dags if '.' in k)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, str(ROOT / "dags" / "maintenance.py")],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ,
    )
    lines = result.stdout.splitlines()
    assert "HEAVY=" in lines, lines
    assert "DAGS=acme.maintenance demo.maintenance" in lines, lines


def _loaded_tenant(root: Path, days: int) -> tuple[Path, TenantConfig]:
    folder = history.write_tenant(root)
    tenant = history.tenant_at(folder)
    catalog = open_catalog(tenant)
    for index, day in enumerate(history.days(days)):
        history.load_day(catalog, tenant, index, day)
    return folder, tenant


def test_dag_test_runs_every_step(airflow_db: Path, tmp_path: Path) -> None:
    folder, tenant = _loaded_tenant(tmp_path, 4)
    catalog = open_catalog(tenant)
    lots = catalog.load_table((tenant.raw_namespace, "lots"))
    rows_before = history.raw_content(catalog, tenant, "lots")
    assert len(lots.inspect.files()) == 8

    dag = build_maintenance_dag(folder, tenant)
    run = dag.test()

    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states == dict.fromkeys(TASKS, "success")
    lots = catalog.load_table((tenant.raw_namespace, "lots"))
    assert len(lots.inspect.files()) == 5  # one per UTC day the versions touch
    assert history.raw_content(catalog, tenant, "lots").equals(rows_before)
    items = catalog.load_table((tenant.raw_namespace, "items"))
    assert len(items.inspect.files()) == 1
    lake = Path(tenant.storage.lake_root) / tenant.lake_prefix / REPORT_FOLDER
    (path,) = lake.glob("*.json")
    report = json.loads(path.read_text())
    compaction = {c["table"]: c for c in report["compaction"]}
    assert compaction["lots"]["files_before"] == 8
    assert compaction["lots"]["files_after"] == 5
    assert compaction["items"]["files_after"] == 1
    assert report["ledger"]["files_after"] == 1
    # Snapshots this young are within the retention: none expired.
    assert [e["expired"] for e in report["expiry"]] == [0, 0]
