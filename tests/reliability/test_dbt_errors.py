"""11b and 11c. A dbt failure no retry can fix fails at once; a transient one retries.

Measured before: a staging model naming a column raw does not have went
`up_for_retry` twice, five minutes apart, and failed with the same binder
error. Both scenarios run a copy of the demo tenant through Airflow
(`dag.test`): every table's sync and the `dbt_staging` layer (one `dbt build`
of every staging model) run for real, and `dbt_marts` where the scenario
needs it; every other task is marked successful.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from mozart_etl.dbt.failures import classify_dbt_failure
from mozart_etl.demo.generate import generate_demo_source
from mozart_etl.load.catalog import open_catalog
from tests.reliability.chaos import Recorder, raw_figures
from tests.reliability.dagrun import ROOT, copy_demo, dbt_nodes, sync_dbt_files
from tests.reliability.pipeline import tenant_of
from tests.reliability.test_dag_faults import WIP_GRAIN_TEST, _write_wip

if TYPE_CHECKING:
    from airflow.models.dagrun import DagRun

DAY = date(2026, 11, 19)
TASK = "dbt_staging"
MARTS = "dbt_marts"
# The tasks named here run for real; dag.test marks every other one successful.
# A layer builds every model of it: every table's sync runs before staging.
ONLY = r"(?!production_day$|sync\.|dbt_staging$).*"
# Raw is there from the first run: the layers alone.
LAYERS = r"(?!production_day$|dbt_staging$|dbt_marts$).*"
MODEL = "stg_equipment"
MISSING = "equipment_grade"


def _tenant(tmp_path: Path, tenant_id: str, retries: int) -> Path:
    """The demo's copy with `retries` and a retry delay short enough that a
    regression (a retry where none should be) costs seconds, not minutes. Its
    generated dbt files are its own: sources in its raw namespace, mart
    contracts for its id."""

    def schedule(config: dict[str, Any]) -> None:
        config["schedule"]["retries"] = retries
        config["schedule"]["retry_delay_minutes"] = 0.01

    folder = copy_demo(tmp_path / "tenants", tenant_id, schedule)
    sources = folder / "dbt" / "models" / "staging" / "_sources.yml"
    assert "schema: demo_raw\n" in sources.read_text()
    sync_dbt_files(folder)
    assert f"schema: {tenant_id}_raw\n" in sources.read_text()
    return folder


def _run(tenant_id: str, *, only: str = ONLY, on_retry: Any = None) -> DagRun:
    """`run_day` of tests/reliability/dagrun.py, with a retry callback on the
    staging task (the DAG object dag.test runs is the one changed here)."""
    from airflow.dag_processing.dagbag import DagBag

    from mozart_etl.core.calendar import production_day

    dag = DagBag(dag_folder=str(ROOT / "dags")).dags[tenant_id]
    if on_retry is not None:
        dag.task_dict[TASK].on_retry_callback = [on_retry]
    return dag.test(
        logical_date=production_day(DAY, "Asia/Seoul").end,
        run_conf={"production_day": DAY.isoformat()},
        mark_success_pattern=only,
    )


def _tries(run: DagRun, task_id: str) -> tuple[str, int, list[str | None]]:
    """The task's final state, its try number, and the retry reason of each
    earlier try (Airflow archives a try that went up_for_retry, with the retry
    policy's reason, in task_instance_history)."""
    from airflow.models.taskinstancehistory import TaskInstanceHistory
    from airflow.utils.session import create_session

    ti = run.get_task_instance(task_id)
    assert ti is not None
    with create_session() as session:
        earlier = (
            session.query(TaskInstanceHistory.retry_reason)
            .filter_by(dag_id=run.dag_id, run_id=run.run_id, task_id=task_id)
            .order_by(TaskInstanceHistory.try_number)
            .all()
        )
    return str(ti.state), ti.try_number, [reason for (reason,) in earlier]


def _source_keys(source: Path) -> list[tuple[str]]:
    with sqlite3.connect(source) as con:
        return con.execute("SELECT equipment_id FROM equipment").fetchall()


def test_a_binder_error_and_a_failing_dbt_test_fail_after_one_try(
    tmp_path: Path,
    mozart_home: Path,
    airflow_db: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    chaos: Recorder,
) -> None:
    chaos.name("11b. dbt binder error (missing column), failing dbt test: no retry")
    tenant_id = "chaos_binder"
    folder = _tenant(tmp_path, tenant_id, retries=2)
    model = folder / "dbt" / "models" / "staging" / f"{MODEL}.sql"
    original = model.read_text()
    model.write_text(original.replace("active\n", f"active, {MISSING}\n"))
    assert MISSING in model.read_text()
    monkeypatch.setenv("MOZART_TENANTS_DIR", str(tmp_path / "tenants"))
    generate_demo_source(mozart_home / "demo" / "source.sqlite")
    tenant = tenant_of(folder)

    run = _run(tenant_id)

    assert run.get_task_instance("sync.equipment").state == "success"
    assert _tries(run, TASK) == ("failed", 1, [])
    assert run.get_task_instance(MARTS).state == "upstream_failed"
    # The model failed, its tests were skipped; the layer's others were built.
    nodes = dbt_nodes(run, TASK)
    assert nodes[MODEL] == "error"
    own_tests = {name for name in nodes if name.endswith(f"_{MODEL}_equipment_id")}
    assert own_tests and {nodes[name] for name in own_tests} == {"skipped"}
    others = {n: s for n, s in nodes.items() if n != MODEL and n not in own_tests}
    assert len(others) > 10 and set(others.values()) <= {"success", "pass"}, nodes
    logs = capfd.readouterr()
    text = logs.out + logs.err + caplog.text
    error = re.search(r"Binder Error: [^\n]*", text)
    assert error is not None, text[-3000:]
    assert MISSING in error.group()
    assert f"in model {MODEL}" in text
    assert f"dbt model {MODEL}: error" in text
    assert "no retry can fix it: Binder Error" in text
    # Raw is untouched by the failed model: every source key, no duplicates.
    lost, dups = raw_figures(
        open_catalog(tenant),
        (tenant.raw_namespace, "equipment"),
        ["equipment_id"],
        _source_keys(mozart_home / "demo" / "source.sqlite"),
    )
    assert (lost, dups) == (0, 0)

    # The model put back; mart_wip with a key twice (on the day before: a run
    # replaces only its own day's rows): its unique_combination test fails.
    model.write_text(original)
    twice = (tenant_id, DAY - timedelta(days=1), "PRD-A", "S10")
    _write_wip(
        tenant.dbt.duckdb_path,
        tenant.namespace,
        [(*twice, 3, 300), (*twice, 9, 900)],
    )
    caplog.clear()

    second = _run(tenant_id, only=LAYERS)

    assert _tries(second, TASK) == ("success", 1, [])
    assert _tries(second, MARTS) == ("failed", 1, [])
    marts = dbt_nodes(second, MARTS)
    assert marts[WIP_GRAIN_TEST] == "fail"
    assert {n for n, s in marts.items() if s not in ("success", "pass")} == {
        WIP_GRAIN_TEST
    }
    logs = capfd.readouterr()
    text = logs.out + logs.err + caplog.text
    assert "unique_combination" in text
    assert "no retry can fix it: dbt test failed" in text
    chaos.record(
        lost=lost,
        dups=dups,
        cause=f"both failed at try 1 of 3: {error.group()[:80]} (stg_equipment); "
        "mart_wip's unique_combination: dbt test failed",
    )


@contextmanager
def _locked(path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holds a read-write DuckDB connection to `path` (DuckDB's
    exclusive file lock) until the lock is released or the block ends."""
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys\n"
            f"con = duckdb.connect({str(path)!r})\n"
            "con.execute('CREATE TABLE IF NOT EXISTS held (x INT)')\n"
            "print('locked', flush=True)\n"
            "sys.stdin.read()\n"
            "con.close()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
    try:
        yield holder
    finally:
        _release(holder)


def _release(holder: subprocess.Popen[str]) -> None:
    if holder.poll() is None:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)


def test_a_locked_warehouse_is_retried_and_passes_once_released(
    tmp_path: Path,
    mozart_home: Path,
    airflow_db: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    chaos: Recorder,
) -> None:
    chaos.name("11c. DuckDB warehouse locked by another writer: retried, then passes")
    tenant_id = "chaos_locked"
    folder = _tenant(tmp_path, tenant_id, retries=1)
    monkeypatch.setenv("MOZART_TENANTS_DIR", str(tmp_path / "tenants"))
    generate_demo_source(mozart_home / "demo" / "source.sqlite")
    warehouse = Path(tenant_of(folder).dbt.duckdb_path)
    released: list[str] = []

    with _locked(warehouse) as holder:

        def release(context: Any) -> None:
            """After the first try went up_for_retry: the other writer ends."""
            released.append(str(context["ti"].try_number))
            _release(holder)

        run = _run(tenant_id, on_retry=release)

    state, try_number, earlier = _tries(run, TASK)
    # Airflow calls on_retry_callback only for a try that went up_for_retry.
    assert released == ["1"]
    assert (state, try_number) == ("success", 2)
    assert earlier == ["transient: DuckDB file locked"]
    # Try 2 built the whole layer from the raw tables the run synced.
    staging = {
        path.stem for path in (folder / "dbt" / "models" / "staging").glob("*.sql")
    }
    nodes = dbt_nodes(run, TASK)
    assert {name for name in nodes if name.startswith("stg_")} == staging
    assert set(nodes.values()) <= {"success", "pass"}, nodes
    logs = capfd.readouterr()
    text = logs.out + logs.err
    lock = re.search(r"IO Error: Could not set lock on file[^\n]*", text)
    assert lock is not None, text[-3000:]
    # The real failure's text, as the policy saw it: retryable, and why.
    verdict = classify_dbt_failure(lock.group())
    assert (verdict.retryable, verdict.cause) == (True, "DuckDB file locked")
    chaos.record(
        cause=f"try 1 up_for_retry ({verdict.cause}: IO Error), try 2 success",
    )
