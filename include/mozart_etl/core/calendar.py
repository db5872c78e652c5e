"""Production days: which instants a run covers, whatever the tenant's time zone.

A run with data interval `[s, e)` processes production day `D`, the local date
of `s` shifted back by the tenant's day-start hour. With the default schedule
(cron at the day boundary) the data interval *is* production day D.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from mozart_etl.config.constants import ColumnType


class ProductionDay(BaseModel):
    """Production day `day` of a tenant and the UTC instants that bound it."""

    model_config = ConfigDict(frozen=True)

    day: date
    start: datetime
    end: datetime

    @property
    def hours(self) -> float:
        """23 or 25 on a daylight-saving change."""
        return (self.end - self.start).total_seconds() / 3600


def production_day(day: date, timezone: str, day_start_hour: int = 0) -> ProductionDay:
    zone = ZoneInfo(timezone)
    start_local = datetime.combine(day, time(day_start_hour), tzinfo=zone)
    end_local = datetime.combine(
        day + timedelta(days=1), time(day_start_hour), tzinfo=zone
    )
    utc = ZoneInfo("UTC")
    return ProductionDay(
        day=day, start=start_local.astimezone(utc), end=end_local.astimezone(utc)
    )


def production_day_of(
    instant: datetime, timezone: str, day_start_hour: int = 0
) -> date:
    """The production day that contains `instant` (aware datetime)."""
    # Through a POSIX timestamp: pendulum's DateTime (Airflow's context) does
    # arithmetic in the wrong zone once converted to a ZoneInfo.
    local = datetime.fromtimestamp(instant.timestamp(), tz=ZoneInfo(timezone))
    return (local - timedelta(hours=day_start_hour)).date()


def cursor_bound(
    instant: datetime, kind: ColumnType, zone: str = "UTC"
) -> datetime | date:
    """A bound (a UTC instant) as a value of the cursor's type.

    A naive `timestamp` cursor holds the wall time of the source's zone (the
    tenant's `source.timezone`, UTC when undeclared) and a `date` cursor
    compares as that zone's midnight, so `cursor >= bound` means the same thing
    in every source database and in raw.
    """
    if kind == ColumnType.TIMESTAMPTZ:
        return instant
    wall = instant.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    if kind == ColumnType.TIMESTAMP:
        return wall
    # date >= bound  <=>  date >= the first day whose midnight is not before it
    first = wall.date()
    if wall != datetime.combine(first, time()):
        first += timedelta(days=1)
    return first


def instant_of(value: datetime | date, kind: ColumnType, zone: str = "UTC") -> datetime:
    """A cursor value as the UTC instant it stands for (the inverse of
    `cursor_bound`): naive wall times and dates are read in the source's zone;
    an ambiguous wall time (the repeated hour of a DST end) as its first
    occurrence."""
    if kind == ColumnType.DATE and not isinstance(value, datetime):
        value = datetime.combine(value, time())
    assert isinstance(value, datetime)
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(zone))
    return value.astimezone(UTC)
