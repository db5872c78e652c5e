"""The source's own columns, read from its catalog, and checked against tenant.yaml.

`source_columns` maps each source column to portable type text — "string",
"bigint", "int", "double", "boolean", "date", "timestamp", "timestamptz",
"decimal(p,s)" ("decimal" when unconstrained) — or, for a type we cannot
extract, the database's own lower-case type name (e.g. "bytea"). It is stored
in `ExtractManifest.source_columns`, where the schema-drift checks read it.

`check_declared` fails before any row is read when a declared column is
missing from the source, has a type we cannot extract, or a type that cannot
become the declared one exactly (declared bigint, source text).
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from mozart_etl.config.constants import ColumnType
from mozart_etl.config.models import ColumnConfig, TableConfig
from mozart_etl.core.errors import SourceSchemaError
from mozart_etl.extract.connectors.base import Connector

PORTABLE = {str(kind) for kind in ColumnType if kind != ColumnType.DECIMAL}
_DECIMAL = re.compile(r"^decimal(?:\((\d+),(\d+)\))?$")


# PostgreSQL type names (a query's result description) → portable text.
_PG_NAMES = {
    "int8": "bigint",
    "int4": "int",
    "int2": "int",
    "float8": "double",
    "float4": "double",
    "bool": "boolean",
    "date": "date",
    "timestamp": "timestamp",
    "timestamptz": "timestamptz",
    "text": "string",
    "varchar": "string",
    "bpchar": "string",
    "name": "string",
    "json": "string",
    "jsonb": "string",
    "uuid": "string",
}


def portable_type(kind: sa.types.TypeEngine[Any]) -> str:
    """A reflected SQLAlchemy type as portable type text."""
    if isinstance(kind, sa.Boolean):
        return "boolean"
    if isinstance(kind, mysql.TINYINT) and kind.display_width == 1:
        return "boolean"  # MySQL's BOOLEAN
    if isinstance(kind, sa.BigInteger):
        return "bigint"
    if isinstance(kind, sa.Integer):
        return "int"
    if isinstance(kind, sa.Float):
        return "double"
    if isinstance(kind, sa.Numeric):
        if kind.precision is None:
            return "decimal"
        return f"decimal({kind.precision},{kind.scale or 0})"
    if isinstance(kind, mysql.TIMESTAMP):
        return "timestamptz"  # MySQL TIMESTAMP holds instants (read in UTC)
    if isinstance(kind, sa.DateTime):
        return "timestamptz" if kind.timezone else "timestamp"
    if isinstance(kind, sa.Date):
        return "date"
    if isinstance(kind, sa.String | sa.Enum | sa.JSON | sa.Uuid):
        return "string"
    return type(kind).__name__.lower()


def table_columns(
    conn: sa.Connection, table: TableConfig, connector: Connector
) -> dict[str, str] | None:
    """The source's columns; None for a query whose result types are unknown.

    Where the database finds a column whatever its case (MariaDB, SQLite), a
    column is named as tenant.yaml declares it (`LOT_NO` declared `lot_no`),
    as the extract's SELECT finds it: the checks and the drift report then
    compare what the database compares."""
    ref = table.source
    if ref.query is not None:
        return _query_columns(conn, ref.query)
    inspector = sa.inspect(conn)
    columns = inspector.get_columns(ref.table, schema=ref.schema_)  # type: ignore[arg-type]
    found = {column["name"]: portable_type(column["type"]) for column in columns}
    if not connector.case_blind_columns:
        return found
    declared = {column.name.casefold(): column.name for column in table.columns}
    return {declared.get(name.casefold(), name): kind for name, kind in found.items()}


def _query_columns(conn: sa.Connection, query: str) -> dict[str, str] | None:
    """PostgreSQL describes a query's result types; other drivers are not asked."""
    if conn.dialect.name != "postgresql":
        return None
    probe = sa.text(f"SELECT * FROM ({query}) AS mozart_probe LIMIT 0")
    result = conn.execute(probe)
    driver = conn.connection.driver_connection
    columns: dict[str, str] = {}
    # DB-API 7-item descriptions (psycopg's Column objects are such sequences).
    for column, type_code, _, _, precision, scale, _ in result.cursor.description:
        info = driver.adapters.types.get(type_code)  # type: ignore[union-attr]
        name = info.name if info is not None else str(type_code)
        if name == "numeric":
            columns[column] = (
                "decimal" if precision is None else f"decimal({precision},{scale})"
            )
        else:
            columns[column] = _PG_NAMES.get(name, name)
    result.close()
    return columns


def check_declared(
    tenant: str, table: TableConfig, source: dict[str, str], connector: Connector
) -> None:
    """Every declared column exists in the source with a type that fits it."""
    for column in table.columns:
        found = source.get(column.name)
        where = {"tenant": tenant, "table": table.name, "column": column.name}
        if found is None:
            raise SourceSchemaError(
                f"declared column {table.name}.{column.name} does not exist in "
                f"{_source_name(table)} ({connector.describe()}); "
                f"source columns: {sorted(source)}",
                **where,
            )
        supported = found in PORTABLE or _DECIMAL.match(found)
        if connector.typed_catalog and not supported:
            raise SourceSchemaError(
                f"source column {column.name!r} has type {found!r}, "
                "which the extractor does not support",
                **where,
            )
        if not fits(found, column, typed_catalog=connector.typed_catalog):
            raise SourceSchemaError(
                f"declared {_declared(column)} but the source column is {found}",
                **where,
            )


def fits(source: str, column: ColumnConfig, *, typed_catalog: bool = True) -> bool:
    """Whether values of portable type `source` become `column`'s type exactly
    (decimals and text are still checked value by value while extracting)."""
    declared = column.type
    if not typed_catalog and source == "string":
        return True  # SQLite keeps dates, instants and decimals as text
    sqlite_like = {
        ("int", ColumnType.BOOLEAN),  # 0/1
        ("bigint", ColumnType.BOOLEAN),
        ("int", ColumnType.DOUBLE),
        ("bigint", ColumnType.DOUBLE),
        ("double", ColumnType.DECIMAL),  # through the float's decimal text
    }
    if not typed_catalog and (source, declared) in sqlite_like:
        return True
    if declared == ColumnType.DECIMAL:
        return source in ("int", "bigint") or bool(_DECIMAL.match(source))
    if declared == ColumnType.BIGINT:
        return source in ("int", "bigint")
    return source == str(declared)


def _declared(column: ColumnConfig) -> str:
    if column.type == ColumnType.DECIMAL:
        return f"decimal({column.precision},{column.scale})"
    return str(column.type)


def _source_name(table: TableConfig) -> str:
    ref = table.source
    if ref.query is not None:
        return "the source query"
    return f"{ref.schema_}.{ref.table}" if ref.schema_ else str(ref.table)
