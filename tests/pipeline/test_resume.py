"""A table's sync resumes from its run's complete extract (pipeline/resume.py).

`stages.sync_table(markers=...)` remembers the extract's manifest once it is
complete. An attempt that then fails in a way a retry can fix (a load that
lost its commit) keeps it, and the next attempt of the same run resumes from
it without reading the source again; a terminal failure (a validation that
refuses the extract) forgets it, so the next attempt, after a person fixed
the cause, extracts anew. Figures are checked against the source's own count,
not against what the pipeline read.

The last test runs the same through Airflow (`dag.test`): the sync task's
retry logs the resume and says so in its XCom.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from mozart_etl.config.loader import load_tenant
from mozart_etl.config.models import TenantConfig
from mozart_etl.core.errors import LoadError, ValidationFailed
from mozart_etl.core.lake import Lake
from mozart_etl.extract.connectors import Credentials, connector_for
from mozart_etl.load.catalog import open_catalog
from mozart_etl.pipeline import stages
from mozart_etl.pipeline.resume import RUNS_FOLDER, RunMarkers
from mozart_etl.pipeline.stages import TableSync
from tests.helpers import seoul_day
from tests.reliability.lots import DAYS, all_rows, sqlite_lots_tenant

RUN_ID = "scheduled__2026-11-19T15:00:00+00:00"  # quoted in the marker's path
TABLE = "lots"
RESUMED = "resuming from extract"


class Plant:
    """The `lots` tenant on a SQLite source, and one run's sync of it."""

    def __init__(self, tmp_path: Path) -> None:
        self.folder = sqlite_lots_tenant(tmp_path, all_rows())
        self.source = tmp_path / "source.sqlite"
        self.tenant: TenantConfig = load_tenant(self.folder)
        self.markers = RunMarkers(Lake(self.tenant), RUN_ID)

    def sync(self) -> TableSync:
        tenant = self.tenant
        connector = connector_for(
            tenant.source.type, Credentials.from_settings(tenant.source)
        )
        return stages.sync_table(
            self.folder,
            tenant,
            tenant.table(TABLE),
            seoul_day(DAYS[-1]),
            connector,
            open_catalog(tenant),
            run_id=RUN_ID,
            markers=self.markers,
        )

    def source_figures(self) -> tuple[int, str]:
        """The source's row count and `qty` sum, read here with sqlite3."""
        with sqlite3.connect(self.source) as conn:
            count, total = conn.execute(
                "SELECT count(*), sum(CAST(qty AS REAL)) FROM lots"
            ).fetchone()
        conn.close()
        return count, f"{total:.2f}"

    def raw_rows(self) -> int | None:
        catalog = open_catalog(self.tenant)
        identifier = (self.tenant.raw_namespace, TABLE)
        if not catalog.table_exists(identifier):
            return None
        return catalog.load_table(identifier).scan().to_arrow().num_rows


def _once(error: Exception, then: Callable[..., Any]) -> Callable[..., Any]:
    """A stand-in raising `error` on its first call and calling `then` after."""
    calls: list[int] = []

    def stand_in(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise error
        return then(*args, **kwargs)

    return stand_in


def _counting(function: Callable[..., Any], calls: list[str]) -> Callable[..., Any]:
    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(function.__name__)
        return function(*args, **kwargs)

    return counted


def test_a_retryable_load_failure_resumes_from_the_extract(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    plant = Plant(tmp_path)
    count, total = plant.source_figures()
    assert count == len(all_rows()) > 0
    extracts: list[str] = []
    monkeypatch.setattr(stages, "extract", _counting(stages.extract, extracts))
    lost_race = LoadError("commit lost to a concurrent writer (simulated)")
    assert not lost_race.terminal
    monkeypatch.setattr(
        stages, "load_and_record", _once(lost_race, stages.load_and_record)
    )

    with pytest.raises(LoadError, match="simulated"):
        plant.sync()

    assert extracts == ["extract"]
    kept = plant.markers.complete_extract(TABLE)
    assert kept is not None and kept.rows == count
    assert plant.raw_rows() is None  # the load never committed
    # The marker is this run's: another run of the tenant reads the source anew.
    assert RunMarkers(Lake(plant.tenant), "another run").complete_extract(TABLE) is None

    # The retry must not extract: the source is not read for rows again.
    def no_extract(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the retry extracted again")

    monkeypatch.setattr(stages, "extract", no_extract)
    with caplog.at_level(logging.INFO, logger="mozart_etl.pipeline.stages"):
        synced = plant.sync()

    assert synced.resumed is True
    assert synced.extract.extract_id == kept.extract_id
    assert f"{RESUMED} {kept.extract_id}" in caplog.text
    assert "the source is not read again" in caplog.text
    # Raw holds the source's rows, by the source's own count and sum.
    assert synced.load.rows_loaded == synced.load.rows_in_table == count
    assert plant.raw_rows() == count
    reconciled = synced.reconcile
    assert reconciled.matched is True
    assert (reconciled.source_rows, reconciled.raw_rows) == (count, count)
    assert reconciled.source_sum == reconciled.raw_sum == total
    assert synced.ledger.rows_loaded == count
    # Done: the marker is gone, a later attempt would extract.
    assert plant.markers.complete_extract(TABLE) is None


def test_a_terminal_failure_forgets_the_extract(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    plant = Plant(tmp_path)
    count, total = plant.source_figures()
    extracts: list[str] = []
    monkeypatch.setattr(stages, "extract", _counting(stages.extract, extracts))
    refused = ValidationFailed("rule qty_positive failed on every row (simulated)")
    assert refused.terminal
    monkeypatch.setattr(
        stages, "validate_extract", _once(refused, stages.validate_extract)
    )

    with pytest.raises(ValidationFailed, match="simulated"):
        plant.sync()

    assert extracts == ["extract"]
    assert plant.markers.complete_extract(TABLE) is None
    assert not list((Path(str(plant.markers.folder))).glob("*.json"))
    assert plant.raw_rows() is None

    # Fixed (here: the rule passes now): the next attempt reads the source anew.
    with caplog.at_level(logging.INFO, logger="mozart_etl.pipeline.stages"):
        synced = plant.sync()

    assert extracts == ["extract", "extract"]
    assert synced.resumed is False
    assert RESUMED not in caplog.text
    assert synced.load.rows_loaded == plant.raw_rows() == count
    assert synced.reconcile.matched is True
    assert synced.reconcile.source_sum == total
    assert plant.markers.complete_extract(TABLE) is None


def test_the_sync_tasks_retry_resumes_in_airflow(
    tmp_path: Path,
    mozart_home: Path,
    airflow_db: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`sync.equipment_event` (a table with a transform) loses its load's commit
    on try 1; try 2 resumes from try 1's extract (transform included)."""
    from mozart_etl.demo.generate import generate_demo_source
    from tests.reliability.dagrun import copy_demo, run_day, xcom

    table = "equipment_event"
    tenant_id = "resume_demo"

    def retry_fast(config: dict[str, Any]) -> None:
        config["schedule"].update(retries=1, retry_delay_minutes=0.002)

    folder = copy_demo(tmp_path / "tenants", tenant_id, retry_fast)
    monkeypatch.setenv("MOZART_TENANTS_DIR", str(tmp_path / "tenants"))
    source = mozart_home / "demo" / "source.sqlite"
    generate_demo_source(source)
    tenant = load_tenant(folder)
    assert tenant.table(table).transform is not None
    extracts: list[str] = []
    monkeypatch.setattr(stages, "extract", _counting(stages.extract, extracts))
    lost_race = LoadError("commit lost to a concurrent writer (simulated)")
    monkeypatch.setattr(
        stages, "load_and_record", _once(lost_race, stages.load_and_record)
    )

    run = run_day(
        tenant_id,
        date(2026, 11, 19),
        mark_success=rf"(?!production_day$|sync\.{table}$).*",
    )

    ti = run.get_task_instance(f"sync.{table}")
    assert (str(ti.state), ti.try_number) == ("success", 2)
    assert extracts == ["extract"]  # try 2 read no rows from the source
    synced = xcom(run, f"sync.{table}")
    assert synced["resumed"] is True
    assert synced["transform"] is not None
    output = capfd.readouterr()
    text = output.out + output.err + caplog.text
    assert "simulated" in text  # try 1's failure
    assert f"{RESUMED} {synced['extract']['extract_id']}" in text
    with sqlite3.connect(source) as conn:
        (count,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    conn.close()
    assert synced["extract"]["rows"] == synced["load"]["rows_in_table"] == count
    assert synced["reconcile"]["matched"] is True
    raw = open_catalog(tenant).load_table((tenant.raw_namespace, table))
    assert raw.scan().to_arrow().num_rows == count
    # Nothing left for a later attempt.
    assert not list((mozart_home / "lake" / tenant_id / RUNS_FOLDER).rglob("*.json"))
