"""OpenLineage (file transport): inputs and outputs of extract, load and a dbt model."""

from __future__ import annotations

from typing import Any

from mozart_etl.demo.generate import DEMO_DAY
from mozart_etl.lake import Lake, latest_manifest
from tests.observability.conftest import LineageRun


def _complete(run: LineageRun, job: str) -> dict[str, Any]:
    (event,) = [
        e
        for e in run.lineage
        if e.get("eventType") == "COMPLETE"
        and e.get("job", {}).get("name") == job
        and e["run"]["facets"].get("airflow", {}).get("dagRun", {}).get("run_id")
        in (run.run_id, None)
    ]
    return event


def _datasets(event: dict[str, Any], side: str) -> list[tuple[str, str]]:
    return [(d["namespace"], d["name"]) for d in event[side]]


def test_extract_and_load_lineage(lineage_run: LineageRun) -> None:
    tenant = lineage_run.tenant
    manifest = latest_manifest(Lake(tenant), "lot_history", DEMO_DAY)
    extract = _complete(lineage_run, "demo.lot_history.extract")
    assert _datasets(extract, "inputs") == [
        (f"sqlite://{tenant.source.database}", "lot_history")
    ]
    assert _datasets(extract, "outputs") == [("file", manifest.folder)]

    accepted = f"{manifest.folder}/validated/accepted.parquet"
    load = _complete(lineage_run, "demo.lot_history.load")
    assert _datasets(load, "inputs") == [("file", accepted)]
    assert _datasets(load, "outputs") == [("iceberg://mozart", "demo_raw.lot_history")]


def test_dbt_model_lineage_from_cosmos(lineage_run: LineageRun) -> None:
    event = _complete(lineage_run, "demo.dbt_marts.mart_wip.run")
    (output,) = _datasets(event, "outputs")
    inputs = _datasets(event, "inputs")
    warehouse = f"duckdb://{lineage_run.tenant.dbt.duckdb_path}"
    assert output == (warehouse, "demo_marts.demo.mart_wip")
    assert inputs == [(warehouse, "demo_marts.demo.stg_lot_history")]
