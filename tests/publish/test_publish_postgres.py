"""Publish marts from a real DuckDB warehouse to a real PostgreSQL, row by row."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest
from pydantic import ValidationError

from mozart_etl.config.models import TenantConfig
from mozart_etl.core.errors import PublishError, PublishRejected
from mozart_etl.publish.postgres import PostgresTarget, publish_marts
from tests.helpers import (
    POSTGRES_HOST,
    POSTGRES_PORT,
    run_vars_xcom,
    table_dict,
    tenant_dict,
)

D1, D2 = date(2026, 11, 18), date(2026, 11, 19)
PASSWORD = "pw-Zq9-n0t-in-logs"
SCHEMA = "order"  # a reserved word: every identifier must be quoted

WIP_DDL = """CREATE TABLE acme.mart_wip (snapshot_date DATE, product_id VARCHAR,
    step_id VARCHAR, lot_count BIGINT, wip_qty BIGINT, tenant_id VARCHAR)"""
CYCLE_DDL = """CREATE TABLE acme.mart_cycle_time (work_date DATE, product_id VARCHAR,
    "step id" VARCHAR, lot_count BIGINT, avg_cycle_hours DOUBLE, late BOOLEAN,
    amount DECIMAL(14,2), "order" VARCHAR, measured_at TIMESTAMPTZ, plan_ver DATE)"""


def _wip(day: date, version: int = 1) -> list[tuple[Any, ...]]:
    return [
        (day, "PRD-A", "S10", 3 * version, 300 * version, "acme"),
        (day, "PRD-A", "S20", 1, 25, "acme"),
        (day, "PRD-B", "S10", 2, None, "acme"),
    ]


def _cycle(day: date, version: int = 1) -> list[tuple[Any, ...]]:
    at = datetime(2026, 11, 18, 23, 59, 59, 123456, tzinfo=UTC)
    return [
        (
            day,
            "PRD-A",
            "S10",
            4,
            1.25 * version,
            True,
            Decimal("12.50"),
            "가공 ✓",
            at,
            D1,
        ),
        (
            day,
            "PRD-B",
            "S 20",
            1,
            0.1,
            False,
            Decimal("-0.01"),
            'O\'Brien "q"',
            None,
            None,
        ),
        (day, "PRD-C", "S30", 0, None, None, None, None, at, D2),
    ]


def _write_marts(path: str, wip: list[tuple], cycle: list[tuple]) -> None:
    with duckdb.connect(path) as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("CREATE SCHEMA IF NOT EXISTS acme")
        con.execute("DROP TABLE IF EXISTS acme.mart_wip")
        con.execute("DROP TABLE IF EXISTS acme.mart_cycle_time")
        con.execute(WIP_DDL)
        con.execute(CYCLE_DDL)
        if wip:
            con.executemany("INSERT INTO acme.mart_wip VALUES (?, ?, ?, ?, ?, ?)", wip)
        if cycle:
            marks = ", ".join("?" * 10)
            con.executemany(f"INSERT INTO acme.mart_cycle_time VALUES ({marks})", cycle)


def _tenant(
    tmp_path: Path, database: str, marts: list[Any] | None = None, **publish: Any
) -> TenantConfig:
    table = table_dict("lots", [{"name": "id", "type": "bigint"}])
    data = tenant_dict(tmp_path, [table])
    data["publish"] = {
        "target": {
            "host": POSTGRES_HOST,
            "port": POSTGRES_PORT,
            "database": database,
            "user": "postgres",
            "password": PASSWORD,
        },
        "schema": SCHEMA,
        "marts": marts or ["mart_wip", {"mart": "mart_cycle_time", "table": "cycle"}],
        **publish,
    }
    return TenantConfig.model_validate(data, context={"base_dir": tmp_path})


def _target(tenant: TenantConfig) -> PostgresTarget:
    assert tenant.publish is not None
    return PostgresTarget.from_config(tenant.publish.target)


def _pg_rows(database: str, table: str, order: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(
        host=POSTGRES_HOST, port=POSTGRES_PORT, user="postgres", dbname=database
    ) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        return conn.execute(
            f'SELECT * FROM "order"."{table}" ORDER BY {order}'
        ).fetchall()


def _pg(database: str, statement: str) -> None:
    with psycopg.connect(
        host=POSTGRES_HOST, port=POSTGRES_PORT, user="postgres", dbname=database
    ) as conn:
        conn.execute(statement)


WIP_ORDER = "snapshot_date, product_id, step_id"
CYCLE_ORDER = 'work_date, product_id, "step id"'


def test_replace_day_writes_exactly_the_days_rows(
    tmp_path: Path, postgres_db: str
) -> None:
    tenant = _tenant(tmp_path, postgres_db)
    _write_marts(tenant.dbt.duckdb_path, _wip(D1) + _wip(D2), _cycle(D1) + _cycle(D2))

    result = publish_marts(tenant, D1, _target(tenant))

    assert _pg_rows(postgres_db, "mart_wip", WIP_ORDER) == _wip(D1)
    assert _pg_rows(postgres_db, "cycle", CYCLE_ORDER) == _cycle(D1)
    assert [
        (m.table, m.mode, m.day_column, m.rows_written, m.created) for m in result.marts
    ] == [
        ("order.mart_wip", "replace_day", "snapshot_date", 3, True),
        ("order.cycle", "replace_day", "work_date", 3, True),
    ]
    with psycopg.connect(
        host=POSTGRES_HOST, port=POSTGRES_PORT, user="postgres", dbname=postgres_db
    ) as conn:
        types = dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'order' AND table_name = 'cycle'"
            ).fetchall()
        )
    assert types == {
        "work_date": "date",
        "product_id": "text",
        "step id": "text",
        "lot_count": "bigint",
        "avg_cycle_hours": "double precision",
        "late": "boolean",
        "amount": "numeric",
        "order": "text",
        "measured_at": "timestamp with time zone",
        "plan_ver": "date",
    }


def test_replace_day_rerun_replaces_only_that_day(
    tmp_path: Path, postgres_db: str
) -> None:
    tenant = _tenant(tmp_path, postgres_db)
    _write_marts(tenant.dbt.duckdb_path, _wip(D1) + _wip(D2), _cycle(D1) + _cycle(D2))
    publish_marts(tenant, D1, _target(tenant))
    publish_marts(tenant, D2, _target(tenant))

    # D2's marts change (one row fewer, new values); D1's stay in the warehouse.
    _write_marts(
        tenant.dbt.duckdb_path,
        _wip(D1) + _wip(D2, version=2)[:2],
        _cycle(D1) + _cycle(D2, version=2),
    )
    result = publish_marts(tenant, D2, _target(tenant))

    assert _pg_rows(postgres_db, "mart_wip", WIP_ORDER) == _wip(D1) + _wip(D2, 2)[:2]
    assert _pg_rows(postgres_db, "cycle", CYCLE_ORDER) == _cycle(D1) + _cycle(D2, 2)
    assert [(m.rows_deleted, m.rows_written) for m in result.marts] == [(3, 2), (3, 3)]


def test_full_replaces_the_whole_table(tmp_path: Path, postgres_db: str) -> None:
    tenant = _tenant(tmp_path, postgres_db, mode="full")
    _write_marts(tenant.dbt.duckdb_path, _wip(D1) + _wip(D2), _cycle(D1))
    publish_marts(tenant, D2, _target(tenant))
    assert _pg_rows(postgres_db, "mart_wip", WIP_ORDER) == _wip(D1) + _wip(D2)

    _write_marts(tenant.dbt.duckdb_path, _wip(D2, version=3), _cycle(D2))
    result = publish_marts(tenant, D2, _target(tenant))

    assert _pg_rows(postgres_db, "mart_wip", WIP_ORDER) == _wip(D2, version=3)
    assert _pg_rows(postgres_db, "cycle", CYCLE_ORDER) == _cycle(D2)
    assert [(m.mode, m.rows_deleted, m.rows_written) for m in result.marts] == [
        ("full", 6, 3),
        ("full", 3, 3),
    ]


def test_upsert_updates_existing_keys_and_inserts_new_ones(
    tmp_path: Path, postgres_db: str
) -> None:
    marts = [{"mart": "mart_wip", "key": ["snapshot_date", "product_id", "step_id"]}]
    tenant = _tenant(tmp_path, postgres_db, marts, mode="upsert")
    _write_marts(tenant.dbt.duckdb_path, _wip(D1), [])
    publish_marts(tenant, D1, _target(tenant))

    # (PRD-A, S10) changes, (PRD-B, S10) is gone from the mart, (PRD-C, S40) is new.
    new = [_wip(D1, 2)[0], _wip(D1)[1], (D1, "PRD-C", "S40", 9, 90, "acme")]
    _write_marts(tenant.dbt.duckdb_path, new, [])
    result = publish_marts(tenant, D1, _target(tenant))

    expected = sorted([*new, _wip(D1)[2]], key=lambda row: row[:3])
    assert _pg_rows(postgres_db, "mart_wip", WIP_ORDER) == expected
    assert result.marts[0].rows_written == 3


def test_a_type_clash_leaves_every_target_table_as_it_was(
    tmp_path: Path, postgres_db: str
) -> None:
    tenant = _tenant(tmp_path, postgres_db, marts=["mart_wip", "mart_cycle_time"])
    _write_marts(tenant.dbt.duckdb_path, _wip(D1), _cycle(D1))
    publish_marts(tenant, D1, _target(tenant))
    before_wip = _pg_rows(postgres_db, "mart_wip", WIP_ORDER)
    # The operational side retyped a column: lot_count is now a date.
    _pg(postgres_db, 'ALTER TABLE "order".mart_cycle_time DROP COLUMN lot_count')
    _pg(postgres_db, 'ALTER TABLE "order".mart_cycle_time ADD COLUMN lot_count date')
    before_cycle = _pg_rows(postgres_db, "mart_cycle_time", CYCLE_ORDER)

    _write_marts(tenant.dbt.duckdb_path, _wip(D1, version=5), _cycle(D1, version=5))
    with pytest.raises(PublishRejected) as caught:
        publish_marts(tenant, D1, _target(tenant))

    assert caught.value.terminal
    assert "nothing was changed" in str(caught.value)
    # mart_wip was written first in the same transaction: rolled back too.
    assert _pg_rows(postgres_db, "mart_wip", WIP_ORDER) == before_wip
    assert _pg_rows(postgres_db, "mart_cycle_time", CYCLE_ORDER) == before_cycle


def test_a_constraint_violation_leaves_the_target_as_it_was(
    tmp_path: Path, postgres_db: str
) -> None:
    tenant = _tenant(tmp_path, postgres_db, marts=["mart_wip"])
    _write_marts(tenant.dbt.duckdb_path, _wip(D1), [])
    publish_marts(tenant, D1, _target(tenant))
    _pg(postgres_db, 'ALTER TABLE "order".mart_wip ADD CHECK (lot_count < 10)')
    before = _pg_rows(postgres_db, "mart_wip", WIP_ORDER)

    _write_marts(tenant.dbt.duckdb_path, _wip(D1, version=4), [])
    with pytest.raises(PublishRejected, match="CheckViolation"):
        publish_marts(tenant, D1, _target(tenant))

    assert _pg_rows(postgres_db, "mart_wip", WIP_ORDER) == before


def test_a_target_without_a_mart_column_is_refused(
    tmp_path: Path, postgres_db: str
) -> None:
    tenant = _tenant(tmp_path, postgres_db, marts=["mart_wip"])
    _write_marts(tenant.dbt.duckdb_path, _wip(D1), [])
    _pg(postgres_db, 'CREATE SCHEMA "order"')
    _pg(postgres_db, 'CREATE TABLE "order".mart_wip (snapshot_date date, x int)')
    _pg(postgres_db, "INSERT INTO \"order\".mart_wip VALUES ('2026-11-18', 1)")

    with pytest.raises(PublishRejected, match="lacks the mart's column"):
        publish_marts(tenant, D1, _target(tenant))

    assert _pg_rows(postgres_db, "mart_wip", "x") == [(D1, 1)]


def test_the_password_is_never_logged_nor_returned(
    tmp_path: Path, postgres_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tenant = _tenant(tmp_path, postgres_db, marts=["mart_wip", "missing_mart"])
    _write_marts(tenant.dbt.duckdb_path, _wip(D1), [])
    with pytest.raises(PublishRejected) as caught:
        publish_marts(tenant, D1, _target(tenant))
    assert "missing_mart" in str(caught.value)

    ok = _tenant(tmp_path, postgres_db, marts=["mart_wip"])
    result = publish_marts(ok, D1, _target(ok))

    assert PASSWORD not in caplog.text
    assert PASSWORD not in str(caught.value)
    assert PASSWORD not in result.model_dump_json()
    assert result.target == f"postgresql://postgres@127.0.0.1:5432/{postgres_db}"
    assert PASSWORD not in repr(_target(ok))


def test_publish_config_shapes(tmp_path: Path) -> None:
    tenant = _tenant(tmp_path, "aps", marts=["mart_wip"])
    assert tenant.publish is not None
    (mart,) = tenant.publish.marts
    assert (mart.mart, mart.target_table, tenant.publish.mode_of(mart)) == (
        "mart_wip",
        "mart_wip",
        "replace_day",
    )
    with pytest.raises(ValidationError, match="upsert needs `key`"):
        _tenant(tmp_path, "aps", marts=["mart_wip"], mode="upsert")
    with pytest.raises(ValidationError, match="two marts write"):
        _tenant(tmp_path, "aps", marts=["a", {"mart": "b", "table": "a"}])
    with pytest.raises(ValidationError, match="conn_id"):
        _tenant(tmp_path, "", marts=["mart_wip"])


def test_an_airflow_connection_gives_the_target(
    tmp_path: Path, postgres_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mozart_etl.factory.tasks import publish_target

    monkeypatch.setenv(
        "AIRFLOW_CONN_APS_DB",
        f"postgresql://postgres:{PASSWORD}@{POSTGRES_HOST}:{POSTGRES_PORT}/{postgres_db}",
    )
    tenant = _tenant(tmp_path, postgres_db, marts=["mart_wip"])
    data = tenant.model_dump(mode="json", by_alias=True)
    data["publish"]["target"] = {"conn_id": "aps_db"}
    via_conn = TenantConfig.model_validate(data, context={"base_dir": tmp_path})
    _write_marts(tenant.dbt.duckdb_path, _wip(D1), [])

    target = publish_target(via_conn)
    result = publish_marts(via_conn, D1, target)

    assert (target.host, target.port, target.database, target.user) == (
        POSTGRES_HOST,
        POSTGRES_PORT,
        postgres_db,
        "postgres",
    )
    assert target.password is not None
    assert target.password.get_secret_value() == PASSWORD
    assert PASSWORD not in target.describe() and PASSWORD not in repr(target)
    assert result.marts[0].rows_written == 3
    assert _pg_rows(postgres_db, "mart_wip", WIP_ORDER) == _wip(D1)


def test_the_publish_task_returns_a_secret_free_summary(
    tmp_path: Path, postgres_db: str
) -> None:
    import yaml

    from mozart_etl.factory.tasks import run_publish

    tenant = _tenant(tmp_path, postgres_db, marts=["mart_wip"])
    data = tenant.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["publish"]["target"]["password"] = PASSWORD
    folder = tmp_path / "tenants" / "acme"
    folder.mkdir(parents=True)
    (folder / "tenant.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    _write_marts(tenant.dbt.duckdb_path, _wip(D1) + _wip(D2), [])

    xcom = run_publish(str(folder), run_vars_xcom(tenant, D2))

    assert PASSWORD not in json.dumps(xcom)
    assert xcom["production_day"] == "2026-11-19"
    assert xcom["marts"][0]["rows_written"] == 3
    assert _pg_rows(postgres_db, "mart_wip", WIP_ORDER) == _wip(D2)


def test_a_refused_login_fails_at_once_and_a_closed_port_may_retry(
    tmp_path: Path, postgres_db: str
) -> None:
    """The APS server refusing the role is terminal (a retry sends the same
    login); a server not listening may come back, so that one retries."""
    tenant = _tenant(tmp_path, postgres_db, marts=["mart_wip"])
    _write_marts(tenant.dbt.duckdb_path, _wip(D1), [])
    target = _target(tenant)

    nobody = target.model_copy(update={"user": "mozart_no_such_role"})
    with pytest.raises(PublishRejected, match="mozart_no_such_role") as refused:
        publish_marts(tenant, D1, nobody)
    assert refused.value.terminal and PASSWORD not in str(refused.value)

    closed = target.model_copy(update={"port": 1})
    with pytest.raises(PublishError) as down:
        publish_marts(tenant, D1, closed)
    assert not down.value.terminal


def test_schema_under_the_target_says_where_it_goes(tmp_path: Path) -> None:
    tenant = _tenant(tmp_path, "aps", marts=["mart_wip"])
    data = tenant.model_dump(mode="json", by_alias=True)
    data["publish"]["target"]["schema"] = "aps"
    with pytest.raises(ValidationError, match="a setting of `publish:`, not of"):
        TenantConfig.model_validate(data, context={"base_dir": tmp_path})
