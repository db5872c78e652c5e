"""`mozart run <tenant> <day|first..last>`: a tenant's production days through
Airflow on this machine, as `make demo` runs the demo's.

Each day is one run of the tenant's real DAG (`demo.run.run_tenant_day`,
`dag.test`: every task in this process against the local metadata database),
one day after the other, oldest first. A day that does not succeed stops the
range with an error naming the day and its failed tasks: the days after it
would compute marts over a raw the failed sync left behind.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from mozart_etl.config.models import TenantConfig
from mozart_etl.core.errors import ConfigError, MozartError
from mozart_etl.ops.local_env import apply_defaults, metadata_is_sqlite

log = logging.getLogger(__name__)

MAX_DAYS = 366


class RunFailed(MozartError):
    """A production day's run did not succeed (its failed tasks are named)."""


class DayResult(BaseModel):
    """One production day's run: its id, state and every task's state."""

    model_config = ConfigDict(frozen=True)

    day: date
    run_id: str
    state: str
    tasks: dict[str, str]

    def tasks_in(self, *states: str) -> list[str]:
        return sorted(task for task, state in self.tasks.items() if state in states)


def parse_days(text: str) -> list[date]:
    """`2026-11-19` or `2026-11-17..2026-11-19` (both included), oldest first."""
    first_text, sep, last_text = text.partition("..")
    try:
        first = date.fromisoformat(first_text)
        last = date.fromisoformat(last_text) if sep else first
    except ValueError:
        raise ConfigError(
            f"days {text!r}: expected YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD"
        ) from None
    if last < first:
        raise ConfigError(f"days {text!r}: the last day is before the first")
    count = (last - first).days + 1
    if count > MAX_DAYS:
        raise ConfigError(
            f"days {text!r}: {count} days; run at most {MAX_DAYS} at once "
            "(or use `mozart backfill` against a running Airflow)"
        )
    return [first + timedelta(days=n) for n in range(count)]


def check_days(tenant: TenantConfig, days: Sequence[date]) -> None:
    """Refuse days before `schedule.start_date`: Airflow creates no task for
    them, and their run 'succeeds' having done nothing."""
    start = tenant.schedule.start_date
    early = [day for day in days if day < start]
    if early:
        raise ConfigError(
            f"{early[0]} is before schedule.start_date {start}: Airflow runs no "
            "task for it; move start_date back in tenant.yaml to run it",
            tenant=tenant.tenant_id,
        )


def prepare_airflow() -> None:
    """What `make demo` does before running: the local defaults and a migrated
    metadata database (a fresh SQLite file is migrated once, like the
    Makefile's `airflow.db` target; another database is the operator's)."""
    settings = apply_defaults()
    database = Path(settings["AIRFLOW_HOME"]) / "airflow.db"
    if metadata_is_sqlite() and not database.exists():
        database.parent.mkdir(parents=True, exist_ok=True)
        log.info("migrating Airflow's metadata database %s", database)
        _airflow("db", "migrate")


def build_manifests(tenant_ids: Iterable[str], tenants_dir: Path | None) -> None:
    """`mozart sync --check` and the tenants' dbt manifests, as `make demo`
    runs them (its own process: dbt keeps process-wide state)."""
    head = [sys.executable, "-m", "mozart_etl.ops.cli"]
    if tenants_dir is not None:
        head += ["--tenants-dir", str(tenants_dir)]
    for command in (["sync", "--check"], ["manifests", *tenant_ids]):
        done = subprocess.run([*head, *command], check=False)
        if done.returncode != 0:
            raise ConfigError(f"`mozart {' '.join(command)}` failed (see above)")


def run_days(tenant: TenantConfig, days: Sequence[date]) -> list[DayResult]:
    """Run each day in turn; RunFailed names the first day that did not succeed."""
    from mozart_etl.demo.run import run_tenant_day

    check_days(tenant, days)
    results = []
    for index, day in enumerate(days, start=1):
        log.info(
            "tenant %s: production day %s (%d/%d) running",
            tenant.tenant_id,
            day,
            index,
            len(days),
        )
        run = run_tenant_day(tenant.tenant_id, day)
        result = DayResult(
            day=day,
            run_id=run.run_id,
            state=str(run.state),
            tasks={ti.task_id: str(ti.state) for ti in run.get_task_instances()},
        )
        results.append(result)
        if result.state != "success" or not result.tasks:
            raise RunFailed(_failure(tenant, result), tenant=tenant.tenant_id)
        log.info(
            "tenant %s: production day %s (%d/%d) succeeded: %d tasks, run %s",
            tenant.tenant_id,
            day,
            index,
            len(days),
            len(result.tasks),
            result.run_id,
        )
    return results


def _failure(tenant: TenantConfig, result: DayResult) -> str:
    if not result.tasks:
        return f"production day {result.day}: no task ran (run {result.run_id})"
    failed = ", ".join(result.tasks_in("failed")) or "none"
    blocked = result.tasks_in("upstream_failed", "skipped", "none", "scheduled")
    after = f"; not run: {', '.join(blocked)}" if blocked else ""
    return (
        f"production day {result.day} {result.state}: failed task(s) {failed}"
        f"{after} (run {result.run_id}; each task's log is above; after fixing "
        f"the cause, `mozart run {tenant.tenant_id} {result.day}` again)"
    )


def render(results: Sequence[DayResult]) -> str:
    """One line per day, for the CLI's output."""
    return "".join(
        f"{r.day}  {r.state:<8} {len(r.tasks)} tasks  run {r.run_id}\n" for r in results
    )


def _airflow(*args: str) -> None:
    binary = Path(sys.executable).parent / "airflow"
    subprocess.run([str(binary), *args], check=True, capture_output=True)
