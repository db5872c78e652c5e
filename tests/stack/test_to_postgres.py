"""The stack's demo source: the generated SQLite rows, typed, in real PostgreSQL."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from mozart_etl.config.loader import load_tenant, project_root
from mozart_etl.config.models import SourceConfig, TenantConfig
from mozart_etl.core.calendar import production_day
from mozart_etl.demo.generate import DEMO_DAY, TENANT_TZ, generate_demo_source
from mozart_etl.demo.to_postgres import copy_to_postgres, main
from mozart_etl.extract.connectors import Credentials, connector_for
from mozart_etl.extract.extractor import extract_table
from tests.conftest import POSTGRES_DSN
from tests.helpers import read_extract

EXPECTED_TYPES = {
    ("equipment", "capacity_per_hour"): ("numeric", 10, 2),
    ("equipment", "active"): ("boolean", None, None),
    ("product_route", "step_seq"): ("integer", None, None),
    ("product_route", "std_process_minutes"): ("numeric", 8, 2),
    ("lot_history", "qty_in"): ("bigint", None, None),
    ("lot_history", "arrived_at"): ("timestamp with time zone", None, None),
    ("plan_production", "plan_date"): ("date", None, None),
    ("process_result", "remark"): ("text", None, None),
}


def _sqlite_text(value: Any) -> Any:
    """A PostgreSQL value as the generator stores it in SQLite."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00:00")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Decimal):
        return str(value)
    return value


def _demo(mozart_home: Path) -> tuple[TenantConfig, Path]:
    tenant = load_tenant(project_root() / "tenants" / "demo")
    source = Path(tenant.source.database)
    generate_demo_source(source, scale=0.3, days=2)
    return tenant, source


def test_copy_keeps_every_value_with_declared_types(
    mozart_home: Path, postgres_db: str
) -> None:
    import psycopg

    tenant, source = _demo(mozart_home)
    conninfo = f"{POSTGRES_DSN} dbname={postgres_db}"

    counts = copy_to_postgres(source, conninfo, tenant.tables)
    # A second copy replaces the tables (the seed job runs on every start).
    assert copy_to_postgres(source, conninfo, tenant.tables) == counts

    with sqlite3.connect(source) as lite, psycopg.connect(conninfo) as pg:
        for table in tenant.tables:
            names = ", ".join(f'"{n}"' for n in table.column_names)
            order = ", ".join(f'"{n}"' for n in table.primary_key)
            query = f"SELECT {names} FROM {table.name} ORDER BY {order}"
            expected = [tuple(row) for row in lite.execute(query)]
            got = [tuple(map(_sqlite_text, row)) for row in pg.execute(query)]
            assert counts[table.name] == len(expected) > 0
            assert got == expected, table.name
        types = {
            (row[0], row[1]): (row[2], row[3], row[4])
            for row in pg.execute(
                "SELECT table_name, column_name, data_type, numeric_precision,"
                " numeric_scale FROM information_schema.columns"
                " WHERE table_schema = 'public'"
            )
        }
        for key, (kind, precision, scale) in EXPECTED_TYPES.items():
            got_kind, got_precision, got_scale = types[key]
            assert got_kind == kind, key
            if kind == "numeric":
                assert (got_precision, got_scale) == (precision, scale), key
        (pk,) = pg.execute(
            "SELECT count(*) FROM information_schema.table_constraints"
            " WHERE table_name = 'lot_history' AND constraint_type = 'PRIMARY KEY'"
        ).fetchone()
        assert pk == 1


def test_the_extractor_reads_the_same_rows_from_both_sources(
    mozart_home: Path, postgres_db: str
) -> None:
    tenant, source = _demo(mozart_home)
    copy_to_postgres(source, f"{POSTGRES_DSN} dbname={postgres_db}", tenant.tables)
    on_postgres = tenant.model_copy(
        update={
            "source": SourceConfig(
                type="postgresql",
                host="127.0.0.1",
                port=5432,
                user="postgres",
                database=postgres_db,
            )
        }
    )
    day = production_day(DEMO_DAY, TENANT_TZ)
    for name in ("equipment", "lot_history"):
        table = tenant.table(name)
        extracted: list[pa.Table] = []
        for config in (tenant, on_postgres):
            connector = connector_for(
                config.source.type, Credentials.from_settings(config.source)
            )
            # A first sync reads the whole table.
            manifest = extract_table(config, table, day, connector, window=None)
            extracted.append(
                read_extract(manifest).sort_by(
                    [(key, "ascending") for key in table.primary_key]
                )
            )
        lite, pg = extracted
        assert pg.num_rows == lite.num_rows > 0
        assert pg.schema == lite.schema
        assert pg.equals(lite), name


def test_main_reads_libpq_environment(
    mozart_home: Path, postgres_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    monkeypatch.setenv("PGHOST", "127.0.0.1")
    monkeypatch.setenv("PGUSER", "postgres")
    monkeypatch.setenv("PGDATABASE", postgres_db)
    assert main(["--scale", "0.3", "--days", "2"]) == 0
    with psycopg.connect(f"{POSTGRES_DSN} dbname={postgres_db}") as pg:
        (tables,) = pg.execute(
            "SELECT count(*) FROM information_schema.tables"
            " WHERE table_schema = 'public'"
        ).fetchone()
    assert tables == 9  # six MES tables, item_master, bom, demand
