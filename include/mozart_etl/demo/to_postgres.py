"""Copy the demo MES source into PostgreSQL with proper column types (the stack).

The generator writes SQLite (UTC timestamps as text, 0/1 booleans, decimals
as text). Here every table of a tenant is created in PostgreSQL with the type
its tenant.yaml declares — timestamptz, timestamp, numeric(p, s), boolean,
date, … — and its rows are streamed in with COPY, all in one transaction, so
the stack's source holds the same values as `make demo`'s SQLite file.

The stack's `source-seed` service runs::

    python -m mozart_etl.demo.to_postgres          # libpq's PG* variables
    python -m mozart_etl.demo.to_postgres --conninfo "host=… dbname=…"
"""

from __future__ import annotations

import argparse
import logging
import sqlite3
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from time import perf_counter

import psycopg
from psycopg import sql

from mozart_etl.config.constants import ColumnType
from mozart_etl.config.loader import load_tenant, tenants_dir
from mozart_etl.config.models import ColumnConfig, TableConfig
from mozart_etl.core.identifiers import quote_identifier
from mozart_etl.demo.generate import generate_demo_source

log = logging.getLogger(__name__)

_PG_TYPES = {
    ColumnType.STRING: "text",
    ColumnType.BIGINT: "bigint",
    ColumnType.INT: "integer",
    ColumnType.DOUBLE: "double precision",
    ColumnType.BOOLEAN: "boolean",
    ColumnType.DATE: "date",
    ColumnType.TIMESTAMP: "timestamp",
    ColumnType.TIMESTAMPTZ: "timestamptz",
}


def postgres_type(column: ColumnConfig) -> str:
    """The PostgreSQL type of a declared column."""
    if column.type == ColumnType.DECIMAL:
        return f"numeric({column.precision}, {column.scale})"
    return _PG_TYPES[column.type]


def create_table_sql(table: TableConfig) -> sql.Composed:
    name = table.source.table or table.name
    columns = [
        sql.SQL("{} {}{}").format(
            sql.Identifier(column.name),
            sql.SQL(postgres_type(column)),
            sql.SQL("" if column.nullable else " NOT NULL"),
        )
        for column in table.columns
    ]
    key = sql.SQL("PRIMARY KEY ({})").format(
        sql.SQL(", ").join(map(sql.Identifier, table.primary_key))
    )
    return sql.SQL("CREATE TABLE {} ({})").format(
        sql.Identifier(name), sql.SQL(", ").join([*columns, key])
    )


def copy_to_postgres(
    sqlite_path: Path, conninfo: str, tables: Sequence[TableConfig]
) -> dict[str, int]:
    """Replace `tables` in the PostgreSQL database with the SQLite file's rows.

    Tables read through a `query` (not a `table`) are skipped: they have no
    table of their own to copy. Returns the rows copied per table.
    """
    counts: dict[str, int] = {}
    source = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)
    try:
        with psycopg.connect(conninfo) as conn, conn.transaction():
            for table in tables:
                if table.source.table is None:
                    log.info("skipping %s: it is read through a query", table.name)
                    continue
                counts[table.name] = _copy_table(source, conn, table)
    finally:
        source.close()
    return counts


def _copy_table(
    source: sqlite3.Connection, conn: psycopg.Connection, table: TableConfig
) -> int:
    name = table.source.table or table.name
    names = table.column_names
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))
    conn.execute(create_table_sql(table))
    converters = [_converter(column) for column in table.columns]
    select = "SELECT {} FROM {}".format(
        ", ".join(quote_identifier(n) for n in names), quote_identifier(name)
    )
    copy = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(name), sql.SQL(", ").join(map(sql.Identifier, names))
    )
    rows = 0
    with conn.cursor().copy(copy) as out:
        for row in source.execute(select):
            out.write_row(
                [convert(value) for convert, value in zip(converters, row, strict=True)]
            )
            rows += 1
    return rows


def _converter(column: ColumnConfig) -> Callable[[object], object]:
    """SQLite storage → a value COPY parses as the column's type (text mostly is)."""
    if column.type == ColumnType.BOOLEAN:
        return lambda value: None if value is None else bool(value)
    return lambda value: value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--conninfo", default="", help="libpq conninfo (default: PG* variables)"
    )
    parser.add_argument("--tenant", default="demo")
    parser.add_argument("--seed", type=int, default=20261119)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--days", type=int, default=5)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    tenant = load_tenant(tenants_dir() / args.tenant)
    started = perf_counter()
    with tempfile.TemporaryDirectory(prefix="mozart-demo-") as folder:
        path = Path(folder) / "source.sqlite"
        generate_demo_source(path, seed=args.seed, scale=args.scale, days=args.days)
        counts = copy_to_postgres(path, args.conninfo, tenant.tables)
    for table, rows in counts.items():
        log.info("%-16s %10d rows", table, rows)
    log.info("demo source copied to PostgreSQL in %.1f s", perf_counter() - started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
