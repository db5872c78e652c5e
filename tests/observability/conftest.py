"""One real run of the demo DAG, shared by the observability tests.

The run happens in a fresh process with OpenLineage's file transport on (the
provider reads its settings once per process) and the example consumer DAG
unpaused; the tests then read what it left behind: asset events and queued
consumer runs in Airflow's metadata DB, lineage events in the file, XComs,
the ledger, the task log.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mozart_etl.config.loader import load_tenant
from mozart_etl.config.models import TenantConfig
from mozart_etl.demo.generate import DEMO_DAY, SourceSummary, generate_demo_source

ROOT = Path(__file__).resolve().parents[2]
CONSUMER = "demo_marts_consumer"
RUNNER = "tests.observability.run_day"


@dataclass(frozen=True)
class LineageRun:
    tenant: TenantConfig
    summary: SourceSummary
    run_id: str
    log: str
    lineage: list[dict]


@pytest.fixture(scope="package")
def lineage_run(
    airflow_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LineageRun]:
    home = tmp_path_factory.mktemp("observability")
    events = home / "openlineage.jsonl"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MOZART_HOME", str(home / "mozart"))
        tenant = load_tenant(ROOT / "tenants" / "demo")
        summary = generate_demo_source(Path(tenant.source.database))
        env = {
            **os.environ,
            "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
                {"type": "file", "log_file_path": str(events), "append": True}
            ),
        }
        result = subprocess.run(
            [sys.executable, "-m", RUNNER, "demo", DEMO_DAY.isoformat(), CONSUMER],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        log = result.stdout + result.stderr
        assert "RUN_STATE=success" in result.stdout, log[-5000:]
        (run_id,) = [
            line.split("=", 1)[1]
            for line in result.stdout.splitlines()
            if line.startswith("RUN_ID=")
        ]
        lineage = [json.loads(line) for line in events.read_text().splitlines()]
        yield LineageRun(tenant, summary, run_id, log, lineage)
