"""One live Airflow serving the repository's DAGs, shared by the browser test
and the tests that read what its demo run left behind.

The browser test triggers the demo production day from the UI's form and
records the run (`LiveDemo.run_id`); the Asset, lineage and report tests use
that run (or trigger one through the REST API if the browser test did not).
OpenLineage is on for these services (file transport, one file per event) and
the scheduler creates no cron runs (`use_job_schedule=False`) until a test asks
for it, so unpausing the demo adds no run of its own.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mozart_etl.config.loader import load_tenant
from mozart_etl.config.models import TenantConfig
from mozart_etl.demo.generate import DEMO_DAY, SourceSummary, generate_demo_source
from mozart_etl.factory.dag_factory import build_tenant_dag
from tests.live.harness import AirflowServices

ROOT = Path(__file__).resolve().parents[2]
CONSUMER = "demo_marts_consumer"
RUN_TIMEOUT = 900


@dataclass
class LiveDemo:
    airflow: AirflowServices
    tenant: TenantConfig
    summary: SourceSummary
    lineage_dir: Path
    run_id: str | None = None
    run_seconds: float | None = None

    def finished_run(self) -> str:
        """The demo run of the browser test, or one triggered here."""
        if self.run_id is None:
            run_id = f"api__{DEMO_DAY}"
            self.airflow.set_paused("demo", False)
            self.airflow.trigger(
                "demo", run_id, conf={"production_day": DEMO_DAY.isoformat()}
            )
            self.wait(run_id)
        assert self.run_id is not None
        return self.run_id

    def wait(self, run_id: str) -> None:
        started = time.monotonic()
        self.airflow.wait_for_run("demo", run_id, "success", timeout=RUN_TIMEOUT)
        self.run_id = run_id
        self.run_seconds = time.monotonic() - started

    def lineage(self) -> list[dict[str, Any]]:
        return [json.loads(p.read_text()) for p in sorted(self.lineage_dir.glob("*"))]


@pytest.fixture(scope="package")
def live_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDemo]:
    base = tmp_path_factory.mktemp("browser")
    home, lineage = base / "mozart", base / "openlineage"
    lineage.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MOZART_HOME", str(home))
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
