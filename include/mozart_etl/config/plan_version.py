"""The plan version (`plan_ver`) a run prepares the APS master marts for.

Planners choose it in the trigger form (an Airflow `Param` whose JSON schema
carries the tenant's pattern); a run without one (scheduled, backfill, or the
field left empty) derives it from its production day with the tenant's
`default` (a strftime format). Light: on the DAG parse path.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Whatever a tenant's pattern allows, a plan version must also be a short plain
# token: it names a partition in marts and APS tables and appears in SQL.
SAFE_PLAN_VER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
# Dates the default format is tried on: ISO-week and year boundaries.
_SAMPLE_DAYS = (
    date(2024, 12, 30),
    date(2026, 1, 1),
    date(2026, 11, 19),
    date(2027, 1, 3),
    date(2027, 12, 31),
)


class PlanVersionConfig(BaseModel):
    """`plan_version:` in tenant.yaml: the accepted pattern and the default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pattern: str = Field(
        default="^[0-9]{4}-W[0-9]{2}$",
        description="JSON-schema pattern of a plan version, anchored with ^…$.",
    )
    default: str = Field(
        default="%G-W%V",
        description="strftime format of the production day giving the default "
        "plan version (e.g. %G-W%V → 2026-W47, the ISO week; %Y-%m → 2026-11). "
        "It must name each period once: %V goes with %G (the ISO year), not "
        "with %Y or %m.",
    )

    @field_validator("pattern")
    @classmethod
    def _anchored_and_compiles(cls, value: str) -> str:
        if not (value.startswith("^") and value.endswith("$")):
            raise ValueError(
                f"plan_version.pattern {value!r} must be anchored with ^…$ "
                "(a JSON-schema pattern matches anywhere otherwise)"
            )
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"plan_version.pattern {value!r}: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _default_matches(self) -> PlanVersionConfig:
        for day in _SAMPLE_DAYS:
            value = day.strftime(self.default)
            if not self.accepts(value):
                raise ValueError(
                    f"plan_version.default {self.default!r} gives {value!r} for "
                    f"{day}, which does not match {self.pattern!r} "
                    f"(and {SAFE_PLAN_VER.pattern})"
                )
        return self

    @model_validator(mode="after")
    def _default_names_each_period_once(self) -> PlanVersionConfig:
        problem = _period_problem(self.default)
        if problem:
            raise ValueError(f"plan_version.default {self.default!r}: {problem}")
        return self

    def accepts(self, value: str) -> bool:
        return bool(re.search(self.pattern, value) and SAFE_PLAN_VER.match(value))

    def resolve(self, requested: str | None, day: date) -> str:
        """The run's plan version: the requested one (checked) or the default."""
        value = requested if requested else day.strftime(self.default)
        if not self.accepts(value):
            raise ValueError(
                f"plan_ver {value!r} does not match the pattern {self.pattern!r} "
                f"(and {SAFE_PLAN_VER.pattern})"
            )
        return value


_CHECKED_DAYS = [date(2024, 1, 1) + timedelta(days=n) for n in range(4 * 366)]
"""Four years of production days: every ISO-week, month and year boundary
kind a format can trip over (53-week years included)."""


@lru_cache(maxsize=64)
def _period_problem(default: str) -> str | None:
    """Why `default` does not name each planning period once, if it does not.

    A plan version names a planning period: all its days must share one name,
    and a name must never come back for a later period. `%Y-%m-W%V` breaks the
    first (ISO week 44 of 2026 is both 2026-10-W44 and 2026-11-W44); `%Y-W%V`
    the second (2025-12-29 is in ISO week 1 of 2026: `2025-W01` again). Cached:
    tenants share a few formats, and this runs on the DAG parse path."""
    first_day: dict[str, date] = {}
    previous = None
    for day in _CHECKED_DAYS:
        value = day.strftime(default)
        if value != previous and value in first_day:
            return (
                f"names two periods {value!r} ({first_day[value]} and {day}); "
                "use %G (the ISO year) with %V"
            )
        first_day.setdefault(value, day)
        previous = value
    daily = len(first_day) == len(_CHECKED_DAYS)  # a name per day is fine
    if "%V" in default and not daily:
        names: dict[tuple[int, int], str] = {}
        for day in _CHECKED_DAYS:
            year, week, _ = day.isocalendar()
            value = day.strftime(default)
            known = names.setdefault((year, week), value)
            if known != value:
                return (
                    f"gives ISO week {year}-W{week:02d} two names ({known!r} and "
                    f"{value!r}); a week-based version takes only %G and %V"
                )
    return None
