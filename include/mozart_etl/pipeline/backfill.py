"""The `airflow backfill create` command for a range of production days.

Airflow selects a backfill's runs by their logical date (the start of each
run's data interval), both bounds included. Plain dates are read as UTC
midnights, which for a plant in Asia/Seoul, or one whose day starts at 08:00,
selects the wrong days. The bounds here are the first day's start and the
last day's end less a second, in the tenant's own zone with its offset: every
run whose interval starts inside those production days, whatever the
schedule's cron, and no other.
"""

from __future__ import annotations

import shlex
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from mozart_etl.config.models import TenantConfig
from mozart_etl.core.calendar import production_day
from mozart_etl.core.errors import ConfigError


def backfill_bounds(tenant: TenantConfig, first: date, last: date) -> tuple[str, str]:
    """`--from-date` and `--to-date` for production days `first`..`last`."""
    if last < first:
        raise ConfigError(
            f"the last day {last} is before the first {first}", tenant=tenant.tenant_id
        )
    schedule = tenant.schedule
    zone = ZoneInfo(schedule.timezone)
    start = production_day(first, schedule.timezone, schedule.day_start_hour).start
    end = production_day(last, schedule.timezone, schedule.day_start_hour).end
    return (
        start.astimezone(zone).isoformat(),
        (end - timedelta(seconds=1)).astimezone(zone).isoformat(),
    )


def backfill_command(
    tenant: TenantConfig, first: date, last: date, *, reprocess: str = "none"
) -> str:
    """The command line, one day at a time (`--max-active-runs 1`: a tenant's
    Iceberg commits and DuckDB file stay single-writer)."""
    start, end = backfill_bounds(tenant, first, last)
    arguments = [
        "airflow",
        "backfill",
        "create",
        "--dag-id",
        tenant.tenant_id,
        "--from-date",
        start,
        "--to-date",
        end,
        "--max-active-runs",
        "1",
    ]
    if reprocess != "none":
        arguments += ["--reprocess-behavior", reprocess]
    return shlex.join(arguments)
