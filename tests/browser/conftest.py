"""One live Airflow serving the repository's DAGs, shared by the browser test
and the tests that read what its demo run left behind.

The browser test triggers the demo production day from the UI's form and
records the run (`LiveDemo.run_id`) before waiting for it; the Asset, lineage
and report tests read that run (or trigger one through the REST API if no test
started one). OpenLineage is on for these services (file transport, one file
per event) and the scheduler creates no cron runs (`use_job_schedule=False`)
until a test asks for it, so unpausing the demo adds no run of its own.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, sync_playwright

from mozart_etl.config.loader import load_tenant
from mozart_etl.config.models import TenantConfig
from mozart_etl.demo.generate import DEMO_DAY, SourceSummary, generate_demo_source
from mozart_etl.factory.dag_factory import SHAPE_VAR, TABLES_SHAPE, build_tenant_dag
from tests.live.harness import TIMINGS, AirflowServices, LiveAirflowError
from tests.live.timings import (  # the demo run's time, printed at the end
    pytest_sessionfinish,
    pytest_terminal_summary,
    pytest_testnodedown,
)

ROOT = Path(__file__).resolve().parents[2]
CONSUMER = "demo_marts_consumer"
RUN_TIMEOUT = 900
DEMO_RUN_TIMING = "browser: demo run, trigger to success"

__all__ = ["pytest_sessionfinish", "pytest_terminal_summary", "pytest_testnodedown"]


@dataclass
class LiveDemo:
    airflow: AirflowServices
    tenant: TenantConfig
    summary: SourceSummary
    lineage_dir: Path
    run_id: str | None = None
    """The demo run every check reads: the first run of the demo DAG."""
    run_failure: str | None = None
    """Why that run did not succeed (it failed, or was still running when the
    wait gave up); None while it has not ended or once it succeeded."""
    run_seconds: float | None = None
    """Its trigger-to-success time, from the run's own record."""

    def finished_run(self) -> str:
        """The demo run, finished successfully: the browser test's, or one
        triggered here if no test started one.

        The checks expect the results of the demo DAG's *first* run (a first
        sync reads every source row: 982 lot_history versions, 979 loaded, 3
        quarantined). A second run would sync only what changed since raw's
        high-water mark (one row) and every one of them would fail, naming
        figures that say nothing about the first run. So once a run was
        started, it is the only one these checks read: if it failed or did
        not finish within RUN_TIMEOUT, each check fails at once naming that
        run and how it ended. Waiting for it again instead would cost each
        dependent check another RUN_TIMEOUT for a run already over its budget.
        """
        if self.run_id is None:
            self._adopt_or_trigger()
        assert self.run_id is not None
        if self.run_failure is not None:
            pytest.fail(
                f"the demo run {self.run_id} (the browser journey's) did not "
                f"succeed: {self.run_failure}. This check reads that first run's "
                "results and is not evaluated on another run (a second run "
                "syncs only what changed since the first).",
                pytrace=False,
            )
        return self.run_id

    def _adopt_or_trigger(self) -> None:
        runs = self.airflow.dag_runs("demo")
        if runs:
            # The trigger form created a run after the browser test stopped
            # looking for it: the first run, so the one, if it is the demo day's.
            day = DEMO_DAY.isoformat()
            if len(runs) > 1 or runs[0]["conf"].get("production_day") != day:
                pytest.fail(
                    f"the demo DAG has runs no test recorded, not one of {day}: "
                    f"{[(r['dag_run_id'], r['state'], r['conf']) for r in runs]}",
                    pytrace=False,
                )
            run_id = str(runs[0]["dag_run_id"])
        else:
            run_id = f"api__{DEMO_DAY}"
            self.airflow.set_paused("demo", False)
            self.airflow.trigger(
                "demo", run_id, conf={"production_day": DEMO_DAY.isoformat()}
            )
        self.wait(run_id)

    def wait(self, run_id: str) -> None:
        """Wait for the demo run `run_id` and remember how it ended; raises if
        it did not succeed (later checks then fail naming it)."""
        self.run_id = run_id
        try:
            run = self.airflow.wait_for_run(
                "demo", run_id, "success", timeout=RUN_TIMEOUT
            )
        except LiveAirflowError as exc:
            self.run_failure = f"{exc} (waited up to {RUN_TIMEOUT} s)"
            if "still" in str(exc):  # where it stood when the wait gave up
                with contextlib.suppress(Exception):  # only a detail
                    states = self.airflow.task_states("demo", run_id)
                    self.run_failure += f"; task states then: {states}"
            raise
        except BaseException as exc:  # an interrupt, a component that died
            self.run_failure = f"the wait for it stopped: {exc!r}"
            raise
        self.run_seconds = _seconds(run["queued_at"], run["end_date"])
        TIMINGS[DEMO_RUN_TIMING] = self.run_seconds

    def lineage(self) -> list[dict[str, Any]]:
        return [json.loads(p.read_text()) for p in sorted(self.lineage_dir.glob("*"))]


def _seconds(start: str, end: str) -> float:
    def instant(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    return (instant(end) - instant(start)).total_seconds()


@pytest.fixture(scope="package")
def live_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDemo]:
    base = tmp_path_factory.mktemp("browser")
    home, lineage = base / "mozart", base / "openlineage"
    lineage.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MOZART_HOME", str(home))
        # The checks read the 12-task shape (the default), whatever the shell says.
        patch.setenv(SHAPE_VAR, TABLES_SHAPE)
        tenant = load_tenant(ROOT / "tenants" / "demo")
        summary = generate_demo_source(Path(tenant.source.database))
        dag = build_tenant_dag(ROOT / "tenants" / "demo", tenant)
        # Every pool the tasks name must exist, or they wait for ever; DuckDB: 1.
        pools = {
            task.pool: 1 if task.pool == tenant.dbt.pool else 8
            for task in dag.tasks
            if task.pool != "default_pool"
        }
        env = {
            SHAPE_VAR: TABLES_SHAPE,
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
                {"type": "file", "log_file_path": str(lineage / "event")}
            ),
        }
        with AirflowServices(
            tenants_dir=ROOT / "tenants", mozart_home=home, pools=pools, env=env
        ) as airflow:
            airflow.wait_for_dags(["demo", CONSUMER])
            # The consumer listens from the start: its queue fills as marts land.
            airflow.set_paused(CONSUMER, False)
            yield LiveDemo(airflow, tenant, summary, lineage)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """A headless Chromium per test module (Debian's, `make browser`)."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()
