"""One deployment of a tenant, driven run by run on a simulated clock.

A run at instant `at` for production day `D` does what the DAG does, in this
process and without Airflow: every table is synced through the real stages
(`mozart_etl.pipeline.stages`, with `captured_at=at`: the source is written as
the MES showed it at `at` before the run reads it), then dbt builds the daily
marts (and their tests) for `D`, then the marts of `D` are read back. Each
deployment has its own lake, catalog and warehouse (`MOZART_HOME`), and dbt
writes its target and logs into the deployment's folder, so deployments of
one tenant can run side by side.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from mozart_etl.config.loader import load_tenant
from mozart_etl.config.models import TenantConfig
from mozart_etl.core.calendar import production_day
from mozart_etl.core.environ import scoped_environ
from mozart_etl.core.run_vars import RunVars
from mozart_etl.dbt.runner import invoke_dbt, tenant_vars
from mozart_etl.factory.connections import source_connector
from mozart_etl.factory.tasks import prepare_local_stores
from mozart_etl.load.catalog import open_catalog
from mozart_etl.pipeline import stages
from tests.e2e.marts import MARTS

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
DAILY_SELECTOR = " ".join(f"+{mart}" for mart in MARTS)


def seeds(default_cases: int) -> list[int]:
    """The cases' seeds: `MOZART_ASOF_SEED` replays one, `MOZART_ASOF_CASES`
    sets how many (more than `make test` runs, for a longer search)."""
    if "MOZART_ASOF_SEED" in os.environ:
        return [int(os.environ["MOZART_ASOF_SEED"])]
    cases = int(os.environ.get("MOZART_ASOF_CASES", default_cases))
    return [7919 * n + 11 for n in range(cases)]


@dataclass(frozen=True)
class Run:
    """One run of production day `day` at instant `at` of the simulated clock."""

    day: date
    at: datetime
    kind: str
    late_by: timedelta

    def __str__(self) -> str:
        return f"{self.day} at T+{self.late_by} ({self.kind})"


def schedule(
    seed: int,
    days: list[date],
    end_of: Callable[[date], datetime],
    *,
    every_day: bool = False,
) -> list[Run]:
    """A random sequence of runs whose instants never go back in time: some of
    `days` (all with `every_day`) in a random order or in date order (a
    backfill), each on time (1-30 min after its end) or late (1 h to 3 days),
    with pauses between runs and reruns (clears) of days already run."""
    rng = random.Random(seed)
    chosen = list(days) if every_day else rng.sample(days, k=rng.randint(2, 3))
    rng.shuffle(chosen)
    if rng.random() < 0.5:
        chosen.sort()
    runs: list[Run] = []
    clock = end_of(min(chosen)) - timedelta(hours=rng.randint(0, 30))
    for day in chosen:
        on_time = rng.random() < 0.5
        delay = (
            timedelta(minutes=rng.randint(1, 30))
            if on_time
            else timedelta(minutes=rng.randint(60, 3 * 24 * 60))
        )
        if rng.random() < 0.25:  # the DAG was paused for a while
            clock += timedelta(hours=rng.randint(6, 48))
        at = max(clock + timedelta(minutes=rng.randint(1, 20)), end_of(day) + delay)
        late_by = at - end_of(day)
        kind = "on time" if late_by <= timedelta(minutes=30) else "late"
        runs.append(Run(day, at, kind, late_by))
        clock = at
        if rng.random() < 0.35:  # a clear (or a rerun) of a day already run
            again = rng.choice([run.day for run in runs])
            clock += timedelta(minutes=rng.randint(5, 36 * 60))
            runs.append(Run(again, clock, "rerun", clock - end_of(again)))
    return runs


WriteSource = Callable[[datetime], None]
"""Writes the tenant's source as the MES showed it at an instant."""


@dataclass
class Deployment:
    """A fresh deployment of tenant `tenant_id` under `home`."""

    tenant_id: str
    home: Path
    write_source: WriteSource
    tables: list[str] | None = None
    """Tables each run syncs (default: every table of the tenant)."""
    runs: int = 0
    captures: list[datetime] = field(default_factory=list)

    @property
    def folder(self) -> Path:
        return ROOT / "tenants" / self.tenant_id

    def tenant(self) -> TenantConfig:
        with scoped_environ({"MOZART_HOME": str(self.home)}):
            return load_tenant(self.folder)

    def run_day(self, day: date, at: datetime) -> dict[str, list[dict[str, Any]]]:
        """Sync every table as of `at`, build day `day`'s marts, return them."""
        self.runs += 1
        run_id = f"run{self.runs:03d}_{day.isoformat()}"
        self.write_source(at)
        self.captures.append(at)
        with scoped_environ({"MOZART_HOME": str(self.home)}):
            tenant = load_tenant(self.folder)
            window = production_day(
                day, tenant.schedule.timezone, tenant.schedule.day_start_hour
            )
            prepare_local_stores(tenant)  # the DAG's first task does this
            catalog = open_catalog(tenant)
            connector = source_connector(tenant)
            stages.sync_run(
                self.folder,
                tenant,
                window,
                connector,
                catalog,
                run_id=run_id,
                captured_at=at,
                tables=self.tables,
            )
            self._build(tenant, day)
            return self.marts(tenant, day)

    def _build(self, tenant: TenantConfig, day: date) -> None:
        window = production_day(
            day, tenant.schedule.timezone, tenant.schedule.day_start_hour
        )
        target = self.home / "dbt"
        # As the DAG's dbt tasks run it: the tenant's own vars, the run's
        # values in the environment (so a deployment's second build reuses
        # the first one's parse, kept in its own target path).
        invoke_dbt(
            self.folder,
            tenant,
            [
                "build",
                "--select",
                DAILY_SELECTOR,
                "--vars",
                tenant_vars(tenant),
                "--target-path",
                str(target / "target"),
                "--log-path",
                str(target / "logs"),
                "--quiet",
            ],
            env=RunVars.of(window, "property").to_env(),
        )

    def marts(self, tenant: TenantConfig, day: date) -> dict[str, list[dict[str, Any]]]:
        """Each daily mart's rows of `day`, sorted by grain."""
        assert tenant.dbt.duckdb_path is not None
        out = {}
        with duckdb.connect(tenant.dbt.duckdb_path, read_only=True) as con:
            for mart, grain in MARTS.items():
                result = con.execute(
                    f"select * from {tenant.namespace}.{mart} where {grain[0]} = ? "
                    f"order by {', '.join(grain)}",
                    [day],
                )
                names = [d[0] for d in result.description]
                out[mart] = [
                    dict(zip(names, row, strict=True)) for row in result.fetchall()
                ]
        return out
