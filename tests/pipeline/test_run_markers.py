"""The markers a run's attempts leave for their retries (pipeline/resume.py):
kept per run, found by the next attempt, forgotten when they would mislead."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from mozart_etl.config.models import TenantConfig
from mozart_etl.core.lake import Lake
from mozart_etl.pipeline.resume import RunMarkers
from tests.helpers import make_tenant, seoul_day, table_dict, write_extract

DAY = date(2026, 11, 19)
RUN = "scheduled__2026-11-19T15:00:00+00:00"
"""A run id as Airflow writes it: colons and a plus sign."""


def _lake(tmp_path: Path) -> tuple[Lake, TenantConfig]:
    lots = table_dict("lots", [{"name": "id", "type": "bigint"}])
    tenant = make_tenant(tmp_path, [lots])
    return Lake(tenant), tenant


def test_an_extract_marker_is_found_by_its_run_only(tmp_path: Path) -> None:
    lake, tenant = _lake(tmp_path)
    table = tenant.table("lots")
    manifest = write_extract(tenant, table, [{"id": 1}, {"id": 2}], seoul_day(DAY))
    markers = RunMarkers(lake, RUN)
    assert markers.complete_extract("lots") is None

    markers.remember_extract(manifest)
    assert markers.complete_extract("lots") == manifest
    # Another run of the same tenant, and another table, find nothing.
    assert RunMarkers(lake, RUN + "x").complete_extract("lots") is None
    assert markers.complete_extract("other") is None
    # The run id is one folder name, whatever characters it holds.
    folders = list((Path(lake.root) / "_runs").iterdir())
    assert [f.name for f in folders] == ["scheduled__2026-11-19T15%3A00%3A00%2B00%3A00"]

    markers.forget(RunMarkers.extract_name("lots"))
    assert markers.complete_extract("lots") is None
    markers.forget(RunMarkers.extract_name("lots"))  # forgetting twice is fine


def test_raw_changing_forgets_every_dbt_layer_but_not_the_extracts(
    tmp_path: Path,
) -> None:
    lake, tenant = _lake(tmp_path)
    table = tenant.table("lots")
    manifest = write_extract(tenant, table, [{"id": 1}], seoul_day(DAY))
    markers = RunMarkers(lake, RUN)
    markers.remember_extract(manifest)
    markers.remember_unfinished("staging", ["model.p.stg_b", "model.p.stg_a"])
    markers.remember_unfinished("marts", ["test.p.not_null_mart_wip_day"])
    assert markers.unfinished("staging") == ["model.p.stg_a", "model.p.stg_b"]

    markers.raw_changed()
    assert markers.unfinished("staging") is None
    assert markers.unfinished("marts") is None
    assert markers.complete_extract("lots") == manifest
    # A run with no markers yet: nothing to forget, no error.
    RunMarkers(lake, "manual__other").raw_changed()
