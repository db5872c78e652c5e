"""OpenLineage (file transport): inputs and outputs of extract, load and a dbt
model in the live demo run."""

from __future__ import annotations

from typing import Any

from mozart_etl.demo.generate import DEMO_DAY
from mozart_etl.lake import Lake, latest_manifest
from tests.browser.conftest import LiveDemo


def _complete(events: list[dict[str, Any]], job: str) -> dict[str, Any]:
    (event,) = [
        e
        for e in events
        if e.get("eventType") == "COMPLETE" and e.get("job", {}).get("name") == job
    ]
    return event


def _datasets(event: dict[str, Any], side: str) -> list[tuple[str, str]]:
    return [(d["namespace"], d["name"]) for d in event[side]]


def test_extract_load_and_dbt_lineage(live_demo: LiveDemo) -> None:
    live_demo.finished_run()
    events = live_demo.lineage()
    tenant = live_demo.tenant
    manifest = latest_manifest(Lake(tenant), "lot_history", DEMO_DAY)

    extract = _complete(events, "demo.lot_history.extract")
    assert _datasets(extract, "inputs") == [
        (f"sqlite://{tenant.source.database}", "lot_history")
    ]
    assert _datasets(extract, "outputs") == [("file", manifest.folder)]

    validate = _complete(events, "demo.lot_history.validate")
    assert _datasets(validate, "inputs") == [("file", manifest.folder)]
    quarantine = f"{manifest.folder}/validated/quarantine.parquet"
    assert _datasets(validate, "outputs") == [("file", quarantine)]

    # The load reads the extract (less its quarantined rows: nothing is copied).
    load = _complete(events, "demo.lot_history.load")
    assert _datasets(load, "inputs") == [("file", manifest.folder)]
    assert _datasets(load, "outputs") == [("iceberg://mozart", "demo_raw.lot_history")]

    # dbt's own lineage, through Cosmos: the mart reads its staging model.
    mart = _complete(events, "demo.dbt_marts.mart_wip.run")
    warehouse = f"duckdb://{tenant.dbt.duckdb_path}"
    assert _datasets(mart, "outputs") == [(warehouse, "demo_marts.demo.mart_wip")]
    assert _datasets(mart, "inputs") == [(warehouse, "demo_marts.demo.stg_lot_history")]
