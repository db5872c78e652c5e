"""Publish mode replace_plan_ver: exactly the run's plan version is replaced in
the APS PostgreSQL, in the publish transaction; other versions are untouched."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest

from mozart_etl.config.models import TenantConfig
from mozart_etl.core.errors import ConfigError, PublishRejected
from mozart_etl.publish.postgres import PostgresTarget, publish_marts
from tests.helpers import POSTGRES_HOST, POSTGRES_PORT, table_dict, tenant_dict

DAY = date(2026, 11, 19)
BOM_DDL = """CREATE TABLE acme.mart_bom (tenant_id VARCHAR, plan_ver VARCHAR,
    parent_item_id VARCHAR, child_item_id VARCHAR, qty_per DECIMAL(12,4))"""


def _bom(plan_ver: str, qty: str) -> list[tuple[Any, ...]]:
    return [
        ("acme", plan_ver, "PRD-A", "RM-PR01", Decimal(qty)),
        ("acme", plan_ver, "PRD-A", "SFG-EPI", Decimal("1.0000")),
    ]


def _tenant(tmp_path: Path, database: str, mode: str) -> TenantConfig:
    data = tenant_dict(
        tmp_path, [table_dict("bom", [{"name": "id", "type": "bigint"}])]
    )
    data["publish"] = {
        "target": {
            "host": POSTGRES_HOST,
            "port": POSTGRES_PORT,
            "database": database,
            "user": "postgres",
        },
        "schema": "aps",
        "marts": [{"mart": "mart_bom", "mode": mode}],
    }
    return TenantConfig.model_validate(data, context={"base_dir": tmp_path})


def _warehouse(path: str | None, rows: list[tuple[Any, ...]]) -> None:
    assert path is not None
    with duckdb.connect(path) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS acme")
        con.execute("DROP TABLE IF EXISTS acme.mart_bom")
        con.execute(BOM_DDL)
        con.executemany("INSERT INTO acme.mart_bom VALUES (?, ?, ?, ?, ?)", rows)


def _published(database: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(
        host=POSTGRES_HOST, port=POSTGRES_PORT, user="postgres", dbname=database
    ) as conn:
        return conn.execute(
            "SELECT * FROM aps.mart_bom ORDER BY plan_ver, child_item_id"
        ).fetchall()


def test_replace_plan_ver_touches_only_that_version(
    tmp_path: Path, postgres_db: str
) -> None:
    tenant = _tenant(tmp_path, postgres_db, "replace_plan_ver")
    target = PostgresTarget.from_config(tenant.publish.target)  # type: ignore[union-attr]
    _warehouse(tenant.dbt.duckdb_path, _bom("W46", "1.5000") + _bom("W47", "2.0000"))
    publish_marts(tenant, DAY, target, "W46")
    publish_marts(tenant, DAY, target, "W47")
    assert _published(postgres_db) == _bom("W46", "1.5000") + _bom("W47", "2.0000")

    # W47 re-planned: its rows are replaced, W46's stay as they were.
    _warehouse(tenant.dbt.duckdb_path, _bom("W46", "9.0000") + _bom("W47", "2.5000"))
    result = publish_marts(tenant, DAY, target, "W47")
    assert _published(postgres_db) == _bom("W46", "1.5000") + _bom("W47", "2.5000")
    published = result.marts[0]
    assert (published.day_column, published.rows_deleted, published.rows_written) == (
        "plan_ver",
        2,
        2,
    )
    assert result.plan_ver == "W47"

    with pytest.raises(ConfigError, match="needs the run's plan_ver"):
        publish_marts(tenant, DAY, target, None)


def test_replace_day_is_refused_for_a_plan_version_mart(
    tmp_path: Path, postgres_db: str
) -> None:
    tenant = _tenant(tmp_path, postgres_db, "replace_day")
    target = PostgresTarget.from_config(tenant.publish.target)  # type: ignore[union-attr]
    _warehouse(tenant.dbt.duckdb_path, _bom("W47", "2.0000"))
    with pytest.raises(PublishRejected, match="mode replace_plan_ver"):
        publish_marts(tenant, DAY, target, "W47")
