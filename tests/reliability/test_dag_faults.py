"""11. A failing dbt test stops publish; 14. no secret leaks anywhere.

Both run a copy of the demo tenant through Airflow (`dag.test`); tasks outside
the scenario are marked successful instead of run (`mark_success_pattern`), so
only the tasks under test execute, for real.
"""

from __future__ import annotations

import hashlib
import os
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest

from mozart_etl.core.credentials import secret_forms
from mozart_etl.core.run_vars import RunVars
from mozart_etl.demo.generate import generate_demo_source
from mozart_etl.demo.to_postgres import copy_to_postgres
from mozart_etl.factory import tasks
from mozart_etl.factory.connections import source_connector
from mozart_etl.load.catalog import open_catalog
from mozart_etl.load.ledger import read_ledger
from mozart_etl.publish.postgres import publish_marts
from tests.reliability.chaos import Recorder
from tests.reliability.dagrun import (
    copy_demo,
    dbt_nodes,
    run_day,
    sync_dbt_files,
    xcom,
)
from tests.reliability.pipeline import task_context, tenant_of

DAY = date(2026, 11, 19)
WIP_GRAIN_TEST = (
    "mozart_core_unique_combination_mart_wip_snapshot_date__product_id__step_id"
)
WIP_COLUMNS = (
    "tenant_id VARCHAR, snapshot_date DATE, product_id VARCHAR, step_id VARCHAR, "
    "lot_count BIGINT, wip_qty BIGINT"
)


def _write_wip(path: str, schema: str, rows: list[tuple[Any, ...]]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(path) as con:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        con.execute(f"CREATE OR REPLACE TABLE {schema}.mart_wip ({WIP_COLUMNS})")
        con.executemany(
            f"INSERT INTO {schema}.mart_wip VALUES (?, ?, ?, ?, ?, ?)", rows
        )


def _aps_checksum(database: str) -> tuple[str, int]:
    with psycopg.connect(
        host="127.0.0.1", port=5432, user="postgres", dbname=database
    ) as conn:
        rows = conn.execute(
            "SELECT * FROM aps.mart_wip ORDER BY snapshot_date, product_id, step_id"
        ).fetchall()
    return hashlib.sha256(repr(rows).encode()).hexdigest(), len(rows)


def test_a_failing_dbt_test_skips_publish(
    tmp_path: Path,
    mozart_home: Path,
    airflow_db: Path,
    postgres_db: str,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    chaos: Recorder,
) -> None:
    chaos.name("11. failing dbt test: publish skipped, APS checksum unchanged")
    tenant_id = "chaos_gate"

    def with_publish(config: dict[str, Any]) -> None:
        config["publish"] = {
            "target": {
                "host": "127.0.0.1",
                "database": postgres_db,
                "user": "postgres",
            },
            "schema": "aps",
            "marts": ["mart_wip"],
        }
        config["schedule"]["retries"] = 0

    folder = copy_demo(tmp_path / "tenants", tenant_id, with_publish)
    sync_dbt_files(folder)  # its marts are built: contracts of its own id
    monkeypatch.setenv("MOZART_TENANTS_DIR", str(tmp_path / "tenants"))
    generate_demo_source(mozart_home / "demo" / "source.sqlite")
    tenant = tenant_of(folder)
    good = [
        (tenant_id, DAY, "PRD-A", "S10", 3, 300),
        (tenant_id, DAY, "PRD-A", "S20", 1, 25),
    ]
    _write_wip(tenant.dbt.duckdb_path, tenant.namespace, good)
    with task_context("seed", DAY):
        # The APS as an earlier good run left it: the marts published for the
        # day with the run's variables as its first task resolves them (by the
        # publish itself: raw is still empty, and the task would skip a day
        # without source data).
        run_vars = RunVars.from_xcom(tasks.resolve_production_day(str(folder)))
        publish_marts(
            tenant,
            run_vars.production_day,
            tasks.publish_target(tenant),
            run_vars.plan_ver,
        )
    before = _aps_checksum(postgres_db)

    # The mart breaks its tests: a key twice (unique_combination), on the day
    # before: the run replaces its own day's rows only, so these stay.
    earlier = DAY - timedelta(days=1)
    twice = [(tenant_id, earlier, "PRD-A", "S10", n, 100 * n) for n in (3, 9)]
    _write_wip(tenant.dbt.duckdb_path, tenant.namespace, [*good, *twice])
    # Every task runs: the marts layer builds from staging, staging from raw.
    run = run_day(tenant_id, DAY)

    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states["dbt_staging"] == "success", states
    assert states["dbt_marts"] == "failed"
    assert states["publish"] == "upstream_failed"
    assert _aps_checksum(postgres_db) == before
    # The marts were built; the one test of the doubled key failed.
    nodes = dbt_nodes(run, "dbt_marts")
    assert nodes["mart_wip"] == "success"
    failed = {
        name for name, status in nodes.items() if status not in ("success", "pass")
    }
    assert failed == {WIP_GRAIN_TEST}, nodes
    assert nodes[WIP_GRAIN_TEST] == "fail"

    output = capfd.readouterr()
    text = output.out + output.err + caplog.text
    assert f"dbt test {WIP_GRAIN_TEST}: fail" in text  # failed for its data
    assert "no retry can fix it: dbt test failed" in text
    # Control: the publish task itself would have changed the table.
    tasks.forget_dbt_duckdb_environment({})  # dbt ran in this process
    with task_context("control", DAY):
        tasks.run_publish(str(folder), tasks.resolve_production_day(str(folder)))
    assert _aps_checksum(postgres_db) != before
    chaos.record(lost=0, dups=0, cause="dbt test failed → publish upstream_failed")


SOURCE_PASSWORD = "Zq@9%2F/pw:x+y="
WRONG_PASSWORD = "k9@"  # short: below Airflow's masking minimum


def _secret_texts(tenant_id: str, capfd: pytest.CaptureFixture[str]) -> dict[str, str]:
    """Everything a user or operator can read about the runs."""
    from airflow.utils.session import create_session
    from sqlalchemy import text

    output = capfd.readouterr()
    texts = {"task logs (stdout/stderr)": output.out + output.err}
    queries = {
        "XCom": "SELECT value FROM xcom WHERE dag_id = :dag",
        "rendered fields": "SELECT rendered_fields FROM rendered_task_instance_fields "
        "WHERE dag_id = :dag",
        "serialized DAG (UI)": "SELECT data FROM serialized_dag WHERE dag_id = :dag",
        "task instances": "SELECT * FROM task_instance WHERE dag_id = :dag",
        "dag runs (conf)": "SELECT * FROM dag_run WHERE dag_id = :dag",
    }
    with create_session() as session:
        for label, query in queries.items():
            rows = session.execute(text(query), {"dag": tenant_id}).fetchall()
            texts[label] = repr(rows)
    logs = Path(os.environ["AIRFLOW_HOME"]) / "logs"
    texts["log files"] = "".join(
        path.read_text(errors="replace") for path in logs.rglob("*") if path.is_file()
    )
    return texts


def test_no_secret_reaches_logs_xcom_fields_errors_or_the_ledger(
    tmp_path: Path,
    mozart_home: Path,
    airflow_db: Path,
    postgres_db: str,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    chaos: Recorder,
) -> None:
    chaos.name("14. secrets (@ % / short, DSN) in logs, XCom, fields, errors, ledger")
    tenant_id = "chaos_leak"
    demo_db = tmp_path / "demo.sqlite"
    generate_demo_source(demo_db)

    def pg_source(config: dict[str, Any]) -> None:
        config["source"] = {
            "type": "postgresql",
            "host": "127.0.0.1",
            "port": 5432,
            "database": postgres_db,
            "user": "postgres",
            "password": "${MOZART_CHAOS_PASSWORD}",
        }
        config["schedule"]["retries"] = 0

    folder = copy_demo(tmp_path / "tenants", tenant_id, pg_source)
    monkeypatch.setenv("MOZART_TENANTS_DIR", str(tmp_path / "tenants"))
    monkeypatch.setenv("MOZART_CHAOS_PASSWORD", SOURCE_PASSWORD)
    tenant = tenant_of(folder)
    copy_to_postgres(
        demo_db, f"host=127.0.0.1 user=postgres dbname={postgres_db}", tenant.tables
    )
    only = r"(?!production_day$|sync\.(equipment|lot_history)$).*"

    good = run_day(tenant_id, DAY, mark_success=only)  # PostgreSQL trusts: runs

    states = {ti.task_id: str(ti.state) for ti in good.get_task_instances()}
    assert states["sync.lot_history"] == "success", states
    assert xcom(good, "sync.lot_history")["reconcile"]["matched"] is True
    # The same tenant against MariaDB with a wrong, short password: a driver error.
    monkeypatch.setenv("MOZART_CHAOS_PASSWORD", WRONG_PASSWORD)
    (folder / "tenant.yaml").write_text(
        (folder / "tenant.yaml")
        .read_text()
        .replace("type: postgresql", "type: mysql")
        .replace("port: 5432", "port: 3306")
        .replace("user: postgres", "user: root")
    )
    bad = run_day(tenant_id, date(2026, 11, 18), mark_success=only)
    bad_states = {ti.task_id: str(ti.state) for ti in bad.get_task_instances()}
    assert bad_states["sync.equipment"] == "failed"

    texts = _secret_texts(tenant_id, capfd)
    ledger = read_ledger(open_catalog(tenant), tenant)
    texts["run ledger"] = repr(ledger.to_pylist())
    assert "Access denied" in texts["task logs (stdout/stderr)"]  # the error is there
    assert "extract_id" in texts["XCom"] and ledger.num_rows >= 2  # these were read
    forms = {
        **{f: "source" for f in secret_forms(SOURCE_PASSWORD, user="postgres")},
        **{f: "short" for f in secret_forms(WRONG_PASSWORD, user="root")},
    }
    hits = {
        f"{where}: {form!r}": text.count(form)
        for where, text in texts.items()
        for form in forms
        if form in text
    }
    # The secret was in play, and the tasks registered every form of it with
    # Airflow's masker (the same process ran them).
    from airflow.sdk._shared.secrets_masker import redact

    assert tenant_of(folder).source.password.get_secret_value() == WRONG_PASSWORD
    for form in secret_forms(SOURCE_PASSWORD, user="postgres"):
        redacted = redact(f"x {form} y")
        assert form not in redacted and "***" in redacted, form
    chaos.record(leaks=sum(hits.values()), cause="Access denied (MariaDB), scrubbed")
    assert hits == {}

    # A driver message quoting a DSN: every form is scrubbed from the error.
    connector = source_connector(tenant_of(folder))
    forms_of_wrong = secret_forms(WRONG_PASSWORD, user="root")
    message = "connect failed: mysql+pymysql://root:k9%40@127.0.0.1/db " + " | ".join(
        forms_of_wrong
    )
    scrubbed = connector.credentials.scrub(message)
    assert not [form for form in forms_of_wrong if form in scrubbed], scrubbed
