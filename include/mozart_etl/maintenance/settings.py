"""Maintenance settings, read from the environment with documented defaults.

Environment variables for now, not tenant.yaml: `TenantConfig` forbids unknown
keys and `_platform.yaml` is merged into it, so a `maintenance:` block needs a
field in `config/models.py` first (proposed in the change's report). The same
names keep working as the defaults of that block once it exists.

- `MOZART_MAINTENANCE_CRON` (default `30 <day_start_hour + 3> * * *`): when
  the maintenance DAG runs, read in the tenant's zone;
- `MOZART_SNAPSHOT_RETENTION_DAYS` (7): raw snapshots younger than this stay;
- `MOZART_SNAPSHOT_MIN_AGE_MINUTES` (60): nor is one expired until it was
  superseded this long ago;
- `MOZART_SWEEP_GRACE_HOURS` (24): orphaned files younger than this stay;
- `MOZART_COMPACT_TARGET_MB` (128): compacted files are at most about this big.
"""

from __future__ import annotations

import os
from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field, model_validator

CRON_VAR = "MOZART_MAINTENANCE_CRON"
RETENTION_VAR = "MOZART_SNAPSHOT_RETENTION_DAYS"
MIN_AGE_VAR = "MOZART_SNAPSHOT_MIN_AGE_MINUTES"
GRACE_VAR = "MOZART_SWEEP_GRACE_HOURS"
TARGET_VAR = "MOZART_COMPACT_TARGET_MB"
QUIET_HOURS_AFTER_DAY_START = 3
"""The tenant's daily run starts at the production day's boundary and takes
minutes; three and a half hours later its loads are done and the next day's
have not begun."""


class MaintenanceSettings(BaseModel):
    """How much history raw keeps and how big its files grow."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    retention: timedelta = Field(default=timedelta(days=7))
    """Snapshots younger than this stay: time travel over the last week, and
    what a run that failed falls back to."""
    min_age: timedelta = Field(default=timedelta(minutes=60))
    """A snapshot superseded less than this long ago stays whatever its age:
    a reader (a dbt build) or a writer (a load planning its rows) that started
    while it was current may still be reading its files. The run ledger uses
    10 s because its writes take under a second; a raw table's readers and
    loads run for minutes."""
    sweep_grace: timedelta = Field(default=timedelta(hours=24))
    target_file_bytes: int = Field(default=128 * 1024 * 1024, gt=0)

    @model_validator(mode="after")
    def _retention_covers_min_age(self) -> MaintenanceSettings:
        if self.retention < self.min_age:
            raise ValueError(
                f"snapshot retention {self.retention} is shorter than the minimum "
                f"age {self.min_age} that in-flight readers and loads need"
            )
        return self

    @classmethod
    def from_env(cls) -> MaintenanceSettings:
        """The settings the environment gives (defaults where unset)."""
        env = os.environ
        return cls(
            retention=timedelta(days=float(env.get(RETENTION_VAR, "7"))),
            min_age=timedelta(minutes=float(env.get(MIN_AGE_VAR, "60"))),
            sweep_grace=timedelta(hours=float(env.get(GRACE_VAR, "24"))),
            target_file_bytes=int(float(env.get(TARGET_VAR, "128")) * 1024 * 1024),
        )


def maintenance_cron(day_start_hour: int) -> str:
    """The maintenance schedule: `MOZART_MAINTENANCE_CRON`, else daily at
    half past (day start + 3 h), read in the tenant's zone."""
    configured = os.environ.get(CRON_VAR)
    if configured:
        return configured
    hour = (day_start_hour + QUIET_HOURS_AFTER_DAY_START) % 24
    return f"30 {hour} * * *"
