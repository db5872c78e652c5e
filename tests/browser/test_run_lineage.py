"""OpenLineage (file transport) of the live demo run: each table's sync reads
its source table and writes its raw Iceberg table; each dbt layer's build
reads what its models ref and writes its models (Cosmos's lineage). The lake
folders in between are the sync's own: its XCom says which it read and wrote."""

from __future__ import annotations

import json
from typing import Any

from mozart_etl.core.lake import Lake, latest_manifest
from mozart_etl.dbt.project import manifest_path
from mozart_etl.demo.generate import DEMO_DAY
from tests.browser.conftest import ROOT, LiveDemo

DEMO = ROOT / "tenants" / "demo"


def _complete(events: list[dict[str, Any]], job: str) -> dict[str, Any]:
    (event,) = [
        e
        for e in events
        if e.get("eventType") == "COMPLETE" and e.get("job", {}).get("name") == job
    ]
    return event


def _datasets(event: dict[str, Any], side: str) -> list[tuple[str, str]]:
    return [(d["namespace"], d["name"]) for d in event[side]]


def _xcom(live: LiveDemo, task_id: str) -> Any:
    path = (
        f"/dags/demo/dagRuns/{live.finished_run()}/taskInstances/{task_id}"
        "/xcomEntries/return_value"
    )
    params = {"deserialize": True, "stringify": False}
    return live.airflow.api("GET", path, params=params).json()["value"]


def _models(layer: str) -> dict[str, list[str]]:
    """Each model of a layer and the models and sources it reads (dbt's manifest)."""
    nodes = json.loads(manifest_path(DEMO, layer).read_text())["nodes"]
    return {
        node["name"]: [ref.split(".")[-1] for ref in node["depends_on"]["nodes"]]
        for node in nodes.values()
        if node["resource_type"] == "model"
    }


def test_each_sync_reads_its_source_table_and_writes_its_raw_table(
    live_demo: LiveDemo,
) -> None:
    live_demo.finished_run()
    events = live_demo.lineage()
    tenant = live_demo.tenant
    for table in tenant.tables:
        sync = _complete(events, f"demo.sync.{table.name}")
        assert _datasets(sync, "inputs") == [
            (f"sqlite://{tenant.source.database}", table.name)
        ], table.name
        assert _datasets(sync, "outputs") == [
            ("iceberg://mozart", f"{tenant.raw_namespace}.{table.name}")
        ], table.name


def test_the_sync_loads_its_extract_less_the_quarantine(live_demo: LiveDemo) -> None:
    """What the per-stage lineage showed, from the sync's XCom: the extract
    wrote one folder of the lake, validation wrote only the quarantine beside
    it, and the load read the extract's own files (nothing is copied)."""
    tenant = live_demo.tenant
    synced = _xcom(live_demo, "sync.lot_history")
    manifest = latest_manifest(Lake(tenant), "lot_history", DEMO_DAY)
    extract, report = synced["extract"], synced["validate"]
    assert (extract["extract_id"], extract["folder"]) == (
        manifest.extract_id,
        manifest.folder,
    )
    assert report["quarantine_path"] == (
        f"{manifest.folder}/validated/quarantine.parquet"
    )
    assert report["accepted_path"] == manifest.folder
    assert report["accepted_files"] == [f.path for f in manifest.files]
    assert synced["transform"] is None  # no transform: the load read the extract
    assert synced["load"]["ledger"]["extract_id"] == manifest.extract_id


def test_dbt_layer_lineage_from_cosmos(live_demo: LiveDemo) -> None:
    live_demo.finished_run()
    events = live_demo.lineage()
    tenant = live_demo.tenant
    warehouse = f"duckdb://{tenant.dbt.duckdb_path}"
    schema = f"demo_marts.{tenant.namespace}"

    def relations(names: set[str], where: str = schema) -> set[tuple[str, str]]:
        return {(warehouse, f"{where}.{name}") for name in names}

    staging, marts = _models("staging"), _models("marts")
    # The staging build writes every staging model and reads the raw tables
    # (as DuckDB names them), besides its own models (their tests read them).
    event = _complete(events, "demo.dbt_staging")
    outputs, inputs = set(_datasets(event, "outputs")), set(_datasets(event, "inputs"))
    assert outputs == relations(set(staging))
    raw = {source for sources in staging.values() for source in sources}
    assert raw == {table.name for table in tenant.tables}
    assert inputs - outputs == relations(raw, f"demo_marts.{tenant.raw_namespace}")

    # The marts build writes every mart and reads the staging models they ref:
    # mart_wip's, stg_lot_history, among them.
    event = _complete(events, "demo.dbt_marts")
    outputs, inputs = set(_datasets(event, "outputs")), set(_datasets(event, "inputs"))
    assert outputs == relations(set(marts))
    assert marts["mart_wip"] == ["stg_lot_history"]
    assert (warehouse, f"{schema}.stg_lot_history") in inputs
    refs = {ref for refs in marts.values() for ref in refs}
    assert refs <= set(staging)
    assert inputs - outputs == relations(refs)
