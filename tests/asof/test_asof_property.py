"""The same marts whenever and in whatever order a day runs (APS_SCENARIOS.md,
"As of the day's end"), as a property over many seeded cases.

Each case is a fresh deployment of the demo tenant and a random schedule of
runs on a simulated clock: random production days in a random order, each
run either on time (minutes after the day's end) or late (hours to days
after), pauses between runs, reruns and clears of days already run. Before
each run the demo MES is written as it stood at the run's instant; the run
syncs raw through the real stages and builds the day's marts with dbt.

Every daily mart of the run's day must equal, value by value, the oracle
`perceived_marts` computed in Python from the generator's timeline as the
captures made so far can know it: the truth at the day's end, except a state
that began and ended between two captures (tests/e2e/test_asof_oracle.py pins
that oracle against the truth itself).

`MOZART_ASOF_CASES` sets the number of cases (default 4 in `make test`; the
seeds are printed on failure, and `MOZART_ASOF_SEED` replays one).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from mozart_etl.demo.generate import DEMO_DAY, DemoTimeline, generate_demo_source
from tests.asof.harness import Deployment, schedule, seeds
from tests.e2e.asof_oracle import day_end, mart_differences, perceived_marts

SCALE = 0.5
DAYS = 5
HISTORY = [DEMO_DAY - timedelta(days=back) for back in range(DAYS)][::-1]
DAILY_TABLES = [
    "equipment",
    "product_route",
    "lot_history",
    "equipment_event",
    "plan_production",
]
SEEDS = seeds(default_cases=4)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def timeline() -> DemoTimeline:
    return DemoTimeline(scale=SCALE, days=DAYS)


@pytest.mark.parametrize("seed", SEEDS)
def test_every_daily_mart_equals_the_oracle_whatever_the_schedule(
    seed: int, tmp_path: Path, timeline: DemoTimeline
) -> None:
    runs = schedule(seed, HISTORY[:-1], day_end)  # the last day has no later
    home = tmp_path / "mozart"

    def write_source(at: datetime) -> None:
        path = home / "demo" / "source.sqlite"
        generate_demo_source(path, scale=SCALE, days=DAYS, as_of=at)

    deployment = Deployment("demo", home, write_source, tables=DAILY_TABLES)
    for number, run in enumerate(runs, 1):
        got = deployment.run_day(run.day, run.at)
        captures = [(at, timeline.rows_as_of(at)) for at in deployment.captures]
        want = perceived_marts(run.day, captures)
        differences = mart_differences(got, want)
        plan = "; ".join(str(r) for r in runs)
        assert not differences, (
            f"seed {seed}, run {number} ({run}) of [{plan}]:\n"
            + "\n".join(differences[:10])
        )
        for mart, rows in want.items():  # the case exercised something
            assert rows or mart in ("mart_lead_time",), (seed, run, mart)
