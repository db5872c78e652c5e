"""Run a table through the real task callables, as Airflow's worker would.

The chaos scenarios call `include/mozart_etl/factory/tasks.py` directly — the
same functions the DAG's PythonOperators run — with an Airflow task context
(run id, params) set the way the Task SDK sets it. A tenant lives in a folder
`<tmp>/<tenant_id>/tenant.yaml`, as in `tenants/`.

Also runnable as a child process (`python -m tests.reliability.pipeline
<folder> <table> <day> <run_id> [stages]`), so a scenario can SIGKILL it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from airflow.sdk.execution_time.context import (
    OutletEventAccessors,
    set_current_context,
)

from mozart_etl.config.loader import load_tenant
from mozart_etl.config.models import TenantConfig
from mozart_etl.factory import tasks

STAGES = ("extract", "validate", "load", "reconcile")


def write_tenant(root: Path, data: dict[str, Any]) -> Path:
    """`<root>/<tenant_id>/tenant.yaml` from a tenant dict; returns the folder."""
    folder = root / data["tenant_id"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tenant.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    return folder


def tenant_of(folder: Path) -> TenantConfig:
    return load_tenant(folder)


@contextmanager
def task_context(run_id: str, day: date) -> Iterator[None]:
    context = {
        "run_id": run_id,
        "params": {"production_day": day.isoformat()},
        "outlet_events": OutletEventAccessors(),
    }
    with set_current_context(context):  # type: ignore[arg-type]
        yield


def run_table(
    folder: Path,
    table: str,
    day: date,
    run_id: str,
    *,
    stages: tuple[str, ...] = STAGES,
    manifest: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """extract → validate → load → reconcile of one table; every XCom returned."""
    out: dict[str, Any] = {}
    where = str(folder)
    with task_context(run_id, day):
        out["day"] = tasks.resolve_production_day(where)
        out["extract"] = manifest or (
            tasks.run_extract(where, table, out["day"]) if "extract" in stages else None
        )
        if "validate" in stages:
            out["validate"] = tasks.run_validate(where, table, out["extract"])
        if "load" in stages:
            out["load"] = tasks.run_load(where, table, out["extract"], out["validate"])
        if "reconcile" in stages:
            out["reconcile"] = tasks.run_reconcile(
                where, table, out["extract"], out["validate"], out["load"]
            )
    return out


def child_command(
    folder: Path, table: str, day: date, run_id: str, stages: tuple[str, ...] = STAGES
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tests.reliability.pipeline",
        str(folder),
        table,
        day.isoformat(),
        run_id,
        ",".join(stages),
    ]


if __name__ == "__main__":
    folder, table, day, run_id, stages = sys.argv[1:6]
    result = run_table(
        Path(folder),
        table,
        date.fromisoformat(day),
        run_id,
        stages=tuple(stages.split(",")),
    )
    sys.stdout.write(json.dumps(result, default=str) + "\n")
