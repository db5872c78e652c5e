"""Scheduled runs on CeleryExecutor: Redis broker, PostgreSQL result backend, two
workers started by the harness.

Each tenant starts in the past with catchup off, so unpausing it must give
exactly one scheduled run, for the latest complete interval, whose data
interval is the production day before today (Asia/Seoul), as the README says.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mozart_etl.core.calendar import production_day
from mozart_etl.demo.generate import SourceSummary
from tests.live.conftest import TemplateBuilder
from tests.live.content import live_raw_rows
from tests.live.harness import TIMINGS, AirflowServices
from tests.live.tenants import (
    RAW,
    copy_tenant,
    create_shared_catalog,
    sync_sources,
    tenant_pools,
)

pytestmark = pytest.mark.live

TZ = "Asia/Seoul"
TENANTS = ("c01", "c02", "c03", "c04")


@pytest.fixture(scope="module")
def celery(
    live_dir: Path,
    template_builder: TemplateBuilder,
    demo_source: SourceSummary,
    mozart_home_dir: Path,
) -> Iterator[tuple[AirflowServices, dict[str, Path]]]:
    tenants_dir = live_dir / "celery_tenants"
    source = live_dir / "sources" / "plant_c.sqlite"
    shutil.copyfile(demo_source.path, source)
    raw_template = template_builder(RAW)[RAW.name]
    folders = {
        tenant_id: copy_tenant(
            raw_template,
            RAW,
            tenants_dir,
            tenant_id,
            source=source,
            start_date=date(2026, 11, 1),
        )
        for tenant_id in TENANTS
    }
    sync_sources(tenants_dir)
    create_shared_catalog(folders[TENANTS[0]])
    services = AirflowServices(
        tenants_dir=tenants_dir,
        mozart_home=mozart_home_dir,
        executor="CeleryExecutor",
        celery_workers=2,
        pools=tenant_pools(TENANTS),
    )
    with services:
        services.wait_for_dags(folders)
        yield services, folders


def test_scheduled_runs_spread_over_two_celery_workers(
    celery: tuple[AirflowServices, dict[str, Path]],
) -> None:
    airflow, folders = celery
    day_before = _yesterday_in_plant()
    started = time.monotonic()
    for tenant_id in TENANTS:
        airflow.set_paused(tenant_id, False)
    runs = {tenant_id: airflow.wait_for_runs(tenant_id, 1) for tenant_id in TENANTS}
    TIMINGS["celery, 4 scheduled tenants"] = time.monotonic() - started
    day = _yesterday_in_plant()
    assert day in (day_before, day_before + timedelta(days=1))  # midnight passed?

    time.sleep(5)  # a few more scheduler loops: still no other run (catchup off)
    window = production_day(day, TZ)
    for tenant_id in TENANTS:
        (run,) = airflow.dag_runs(tenant_id)
        assert run["run_type"] == "scheduled"
        assert run["state"] == "success", airflow.task_states(
            tenant_id, run["dag_run_id"]
        )
        assert _instant(run["data_interval_start"]) == window.start
        assert _instant(run["data_interval_end"]) == window.end
        assert runs[tenant_id][0]["dag_run_id"] == run["dag_run_id"]

    hosts = airflow.sql(
        "SELECT DISTINCT split_part(hostname, '.', 1) FROM task_instance "
        "WHERE dag_id = ANY(%s)",
        (list(TENANTS),),
    )
    assert {host for (host,) in hosts} == {"worker1", "worker2"}
    # Rows really moved: each tenant's raw equipment is the plant's whole table.
    source = folders["c01"].parent.parent / "sources" / "plant_c.sqlite"
    with sqlite3.connect(source) as conn:
        expected = sorted(
            r[0] for r in conn.execute("SELECT equipment_id FROM equipment")
        )
    for tenant_id in TENANTS:
        loaded = live_raw_rows(folders[tenant_id], "equipment").column("equipment_id")
        assert sorted(loaded.to_pylist()) == expected


def _yesterday_in_plant() -> date:
    return datetime.now(UTC).astimezone(ZoneInfo(TZ)).date() - timedelta(days=1)


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
