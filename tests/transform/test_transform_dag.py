"""A table's transform in a real Airflow run of the demo's table tasks: its
output is what lands in raw; when it raises, only its table's task (the
`stages` shape: its table's group, the load never starting) fails and raw
keeps its snapshot (id and content).

In the default shape the transform runs inside the table's sync task
(`sync.<table>`: extract → validate → transform → load → reconcile), its
manifest in the task's XCom; in the `stages` shape it is a task of its own."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from airflow.models.dagbag import DagBag

from mozart_etl.config.loader import load_tenant
from mozart_etl.core.calendar import production_day
from mozart_etl.core.lake import Lake
from mozart_etl.demo.generate import DEMO_DAY, TENANT_TZ, generate_demo_source
from mozart_etl.factory.dag_factory import SHAPE_VAR, STAGES_SHAPE, TABLES_SHAPE
from mozart_etl.load.catalog import open_catalog
from mozart_etl.load.versions import DELETED, VALID_FROM, VERSION_COLUMNS
from mozart_etl.pipeline.resume import RUNS_FOLDER
from mozart_etl.transform.stage import read_manifest, transform_folder
from tests.helpers import content_hash

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "tenants" / "demo"
TABLE = "equipment_event"
EXTRA_TRANSFORMS = '''

def lower_ids(batches):
    """Test only: lower-cased ids, so the raw table shows the transform ran."""
    for batch in batches:
        index = batch.schema.get_field_index("equipment_id")
        ids = pc.utf8_lower(batch.column(index))
        yield batch.set_column(index, "equipment_id", ids)


def explode(batches):
    for batch in batches:
        raise ValueError("vendor status 0x7f cannot be decoded")
        yield batch
'''
AUDIT = ("_mozart_run_id", "_mozart_loaded_at", "_mozart_partition")


def _use_transform(folder: Path, function: str) -> None:
    path = folder / "tenant.yaml"
    text = path.read_text()
    for old in ("transforms:normalise_equipment_id", "transforms:lower_ids"):
        text = text.replace(f"transform: {old}", f"transform: transforms:{function}")
    path.write_text(text.replace("retries: 2", "retries: 0"))  # fail fast
    assert f"transform: transforms:{function}" in path.read_text()


def _raw(tenant_folder: Path) -> tuple[int, pa.Table]:
    tenant = load_tenant(tenant_folder)
    table = open_catalog(tenant).load_table((tenant.raw_namespace, TABLE))
    snapshot = table.current_snapshot()
    assert snapshot is not None
    return snapshot.snapshot_id, table.scan().to_arrow()


@pytest.mark.parametrize("shape", [TABLES_SHAPE, STAGES_SHAPE])
def test_transform_output_is_loaded_and_a_failure_stays_in_its_group(
    tmp_path: Path,
    mozart_home: Path,
    airflow_db: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    shape: str,
) -> None:
    monkeypatch.setenv(SHAPE_VAR, shape)
    tenants = tmp_path / "tenants"
    folder = tenants / "demo"  # same id: the demo's dbt manifest stays valid
    shutil.copytree(DEMO, folder, ignore=shutil.ignore_patterns("logs"))
    with (folder / "transforms.py").open("a") as handle:
        handle.write(EXTRA_TRANSFORMS)
    _use_transform(folder, "lower_ids")
    monkeypatch.setenv("MOZART_TENANTS_DIR", str(tenants))
    source = Path(load_tenant(folder).source.database)
    generate_demo_source(source)

    dag = DagBag(dag_folder=str(ROOT / "dags")).dags["demo"]
    if shape == TABLES_SHAPE:
        loads = [task_id for task_id in dag.task_ids if task_id.startswith("sync.")]
        mine = f"sync.{TABLE}"
    else:
        loads = [task_id for task_id in dag.task_ids if task_id.endswith(".load")]
        mine = f"{TABLE}.transform"
    tenant = load_tenant(folder)
    assert len(loads) == len(tenant.tables)
    tables = dag.partial_subset(loads, include_upstream=True)  # no dbt
    assert not [t for t in tables.task_ids if t.startswith("dbt_")]
    window = production_day(DEMO_DAY, TENANT_TZ)
    conf = {"production_day": str(DEMO_DAY)}

    first = tables.test(logical_date=window.end, run_conf=conf)
    states = {ti.task_id: str(ti.state) for ti in first.get_task_instances()}
    assert str(first.state) == "success", states
    assert states[mine] == "success"

    # Raw holds exactly the transform stage's rows: every id lower-cased.
    lake = Lake(tenant)
    stage = read_manifest(
        lake, transform_folder(lake, TABLE, DEMO_DAY, str(first.run_id))
    )
    if shape == TABLES_SHAPE:  # the sync's XCom holds the transform's manifest
        synced = first.get_task_instance(mine).xcom_pull(task_ids=mine)
        assert synced["transform"]["folder"] == stage.folder
        assert synced["transform"]["rows"] == stage.rows
        assert synced["resumed"] is False
    staged = pa.concat_tables(pq.read_table(f.path) for f in stage.files)
    snapshot, raw = _raw(folder)
    assert raw.num_rows == staged.num_rows == stage.rows > 0
    assert content_hash(raw, exclude=(*AUDIT, *VERSION_COLUMNS)) == content_hash(staged)
    # A first sync: each row's first version, valid from its cursor.
    assert raw[VALID_FROM].to_pylist() == raw["updated_at"].to_pylist()
    assert not any(raw[DELETED].to_pylist())
    with sqlite3.connect(source) as conn:
        ids = {row[0] for row in conn.execute(f"SELECT equipment_id FROM {TABLE}")}
    assert set(raw["equipment_id"].to_pylist()) == {i.lower() for i in ids}
    assert any(i != i.lower() for i in ids)  # the transform did change them
    before = content_hash(raw)

    # The tenant's function now raises: only equipment_event's task (group) fails.
    _use_transform(folder, "explode")
    capfd.readouterr()
    second = tables.test(logical_date=window.end + timedelta(days=1), run_conf=conf)
    states = {ti.task_id: str(ti.state) for ti in second.get_task_instances()}
    assert str(second.state) == "failed"
    assert states[mine] == "failed"
    if shape == TABLES_SHAPE:
        others = {k: v for k, v in states.items() if k != mine}
        assert len(others) == 1 + (len(tenant.tables) - 1)
        # It failed in its transform, for good: its extract is not kept for
        # a retry (a person fixes the function, then the run reads anew).
        output = capfd.readouterr()
        assert "vendor status 0x7f cannot be decoded" in output.out + output.err
        assert not list(Path(lake.root, RUNS_FOLDER).rglob(f"{TABLE}.extract.json"))
    else:
        assert states[f"{TABLE}.load"] == "upstream_failed"
        others = {k: v for k, v in states.items() if not k.startswith(f"{TABLE}.")}
        assert len(others) == 1 + 3 * (len(tenant.tables) - 1)
    assert set(others.values()) == {"success"}, others
    # Raw is untouched: the same snapshot, the same rows.
    snapshot_after, raw_after = _raw(folder)
    assert snapshot_after == snapshot
    assert content_hash(raw_after) == before
