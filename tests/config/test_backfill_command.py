"""`mozart backfill`: the bounds select exactly the production days asked for,
checked against the runs Airflow's own timetable makes for the tenant's
schedule (its zone, day start and cron)."""

from __future__ import annotations

import shlex
from datetime import date, datetime, timedelta
from pathlib import Path

import pendulum
import pytest
from airflow.timetables.base import DataInterval, TimeRestriction
from airflow.timetables.interval import CronDataIntervalTimetable

from mozart_etl.config.models import TenantConfig
from mozart_etl.core.calendar import production_day_of
from mozart_etl.pipeline.backfill import backfill_bounds, backfill_command
from tests.cli import run_mozart
from tests.helpers import make_tenant, table_dict
from tests.reliability.pipeline import write_tenant

FIRST, LAST = date(2026, 11, 17), date(2026, 11, 19)


def _tenant(tmp_path: Path, zone: str, start_hour: int, cron: str | None):
    tenant = make_tenant(tmp_path, [table_dict("t", [{"name": "id", "type": "int"}])])
    data = tenant.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["schedule"].update(timezone=zone, day_start_hour=start_hour, cron=cron)
    return TenantConfig.model_validate(data, context={"base_dir": tmp_path}), data


def _days_selected(tenant: TenantConfig, start: str, end: str) -> set[date]:
    """The production days of the runs Airflow's timetable makes whose logical
    date lies in [start, end], as `airflow backfill create` selects them."""
    schedule = tenant.schedule
    timetable = CronDataIntervalTimetable(
        schedule.effective_cron, timezone=pendulum.timezone(schedule.timezone)
    )
    low, high = datetime.fromisoformat(start), datetime.fromisoformat(end)
    restriction = TimeRestriction(
        earliest=pendulum.instance(low - timedelta(days=3)), latest=None, catchup=True
    )
    days: set[date] = set()
    last: DataInterval | None = None
    for _ in range(12):
        info = timetable.next_dagrun_info(
            last_automated_data_interval=last, restriction=restriction
        )
        assert info is not None
        last = info.data_interval
        if low <= info.logical_date <= high:
            days.add(
                production_day_of(
                    info.logical_date, schedule.timezone, schedule.day_start_hour
                )
            )
    return days


@pytest.mark.parametrize(
    ("zone", "start_hour", "cron", "bounds"),
    [
        (
            "Asia/Seoul",
            0,
            None,
            ("2026-11-17T00:00:00+09:00", "2026-11-19T23:59:59+09:00"),
        ),
        (
            "Asia/Seoul",
            8,
            None,
            ("2026-11-17T08:00:00+09:00", "2026-11-20T07:59:59+09:00"),
        ),
        # Runs 15 minutes after the day's start: still the same days.
        (
            "America/New_York",
            6,
            "15 6 * * *",
            ("2026-11-17T06:00:00-05:00", "2026-11-20T05:59:59-05:00"),
        ),
    ],
)
def test_the_bounds_select_exactly_the_days_asked_for(
    tmp_path: Path, zone: str, start_hour: int, cron: str | None, bounds: tuple
) -> None:
    tenant, data = _tenant(tmp_path, zone, start_hour, cron)

    start, end = backfill_bounds(tenant, FIRST, LAST)

    assert (start, end) == bounds
    assert _days_selected(tenant, start, end) == {FIRST, date(2026, 11, 18), LAST}
    # Plain dates (UTC midnights), what the README once suggested, are wrong
    # wherever the day does not start at UTC midnight.
    plain = _days_selected(
        tenant, "2026-11-17T00:00:00+00:00", "2026-11-19T00:00:00+00:00"
    )
    assert plain != {FIRST, date(2026, 11, 18), LAST}

    folder = write_tenant(tmp_path / "tenants", data)
    done = run_mozart(
        "--tenants-dir",
        str(folder.parent),
        "backfill",
        tenant.tenant_id,
        FIRST.isoformat(),
        LAST.isoformat(),
        "--reprocess-behavior",
        "failed",
    )
    assert done.returncode == 0, done.stderr
    assert shlex.split(done.stdout) == shlex.split(
        backfill_command(tenant, FIRST, LAST, reprocess="failed")
    )
    assert f"--from-date {start} --to-date {end}" in done.stdout
