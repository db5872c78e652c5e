"""The as-of property on tenant `acme`: a MariaDB MES whose DATETIMEs hold New
York wall time, production days from 06:00, across the end of daylight saving
time (2026-10-31 lasts 25 hours).

Each case runs the three days around the change, in a random order, on time
or late, with pauses and reruns, through the real stages and dbt; every daily
mart equals `perceived_marts` computed in Python from acme's source as each
capture read it (tests/e2e/acme_source.py maps acme's names and codes onto
the standard rows, apart from acme's dbt staging).
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest

from mozart_etl.demo.acme import (
    ACME_DAY_START_HOUR,
    ACME_DST_DAY,
    ACME_TZ,
    simulate,
    write_acme_source,
)
from tests.asof.harness import Deployment, schedule, seeds
from tests.e2e.acme_source import acme_tables
from tests.e2e.asof_oracle import day_end, mart_differences, perceived_marts

DAYS = [date(2026, 10, 30), ACME_DST_DAY, date(2026, 11, 1)]
THRESHOLD_PCT = 15.0  # tenants/acme/tenant.yaml dbt.vars.line_balance_threshold_pct
DAILY_TABLES = ["eqp", "route", "lot_hist", "eqp_evt", "plan"]

pytestmark = pytest.mark.e2e


def _end(day: date) -> datetime:
    return day_end(day, ACME_TZ, ACME_DAY_START_HOUR)


@pytest.mark.parametrize("seed", seeds(default_cases=2))
def test_acme_marts_equal_the_oracle_across_the_dst_change(
    seed: int, tmp_path: Path, acme_db: str
) -> None:
    plant = simulate()
    runs = schedule(seed, DAYS, _end, every_day=True)
    captured: dict[datetime, dict] = {}

    def write_source(at: datetime) -> None:
        write_acme_source(acme_db, as_of=at, plant=plant)
        captured[at] = acme_tables(acme_db)

    deployment = Deployment("acme", tmp_path / "mozart", write_source, DAILY_TABLES)
    for number, run in enumerate(runs, 1):
        got = deployment.run_day(run.day, run.at)
        captures = [(at, captured[at]) for at in deployment.captures]
        want = perceived_marts(
            run.day,
            captures,
            tz=ACME_TZ,
            day_start_hour=ACME_DAY_START_HOUR,
            threshold_pct=THRESHOLD_PCT,
            tenant_id="acme",
        )
        differences = mart_differences(got, want)
        plan = "; ".join(str(r) for r in runs)
        assert not differences, (
            f"seed {seed}, run {number} ({run}) of [{plan}]:\n"
            + "\n".join(differences[:10])
        )
        assert all(want[mart] for mart in want if mart != "mart_lead_time"), run
