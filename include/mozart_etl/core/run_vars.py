"""A run's variables: what its first task resolves once and everything after
it reads — the table syncs, dbt (through the environment) and publish.

One frozen model with one way in and out of each medium: XCom (ISO text, so
Airflow's serializer and the UI's XCom tab show plain strings) and dbt (the
`MOZART_RUN_<NAME>` environment variables mozart_core's `run_var` macro
reads at execution). Light: imported on the DAG parse path.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict

from mozart_etl.core.calendar import ProductionDay

DAY_TASK_ID = "production_day"
"""The task that resolves the run's variables; its XCom holds them."""


class RunVars(BaseModel):
    """The production day, its UTC bounds, and the master marts' plan version."""

    model_config = ConfigDict(frozen=True)

    production_day: date
    window_start: datetime
    window_end: datetime
    plan_ver: str

    @classmethod
    def of(cls, window: ProductionDay, plan_ver: str) -> RunVars:
        return cls(
            production_day=window.day,
            window_start=window.start,
            window_end=window.end,
            plan_ver=plan_ver,
        )

    @property
    def window(self) -> ProductionDay:
        """The day as resolved by the first task (never recomputed)."""
        return ProductionDay(
            day=self.production_day, start=self.window_start, end=self.window_end
        )

    def to_xcom(self) -> dict[str, str]:
        return {name: _text(value) for name, value in self}

    @classmethod
    def from_xcom(cls, payload: Mapping[str, str]) -> RunVars:
        return cls.model_validate(dict(payload))

    def to_env(self) -> dict[str, str]:
        """The variables as a dbt task's environment carries them (what
        `dbt_env_templates` renders to): for dbt run outside Airflow."""
        return {self.env_name(name): value for name, value in self.to_xcom().items()}

    @staticmethod
    def env_name(name: str) -> str:
        return f"MOZART_RUN_{name.upper()}"

    @classmethod
    def dbt_env_templates(cls) -> dict[str, str]:
        """Each variable's environment name → an Airflow template pulling it
        from the first task's XCom (a dbt task's `env` is templated)."""
        return {
            cls.env_name(name): (
                "{{ ti.xcom_pull(task_ids='" + DAY_TASK_ID + "')['" + name + "'] }}"
            )
            for name in cls.model_fields
        }


def _text(value: object) -> str:
    return value.isoformat() if isinstance(value, date | datetime) else str(value)
