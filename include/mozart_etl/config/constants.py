"""Closed choices of the tenant configuration."""

from __future__ import annotations

from enum import StrEnum


class SourceType(StrEnum):
    """Database engines a tenant can extract from."""

    SQLITE = "sqlite"
    """A SQLite file: the embedded default and the demo source."""
    POSTGRESQL = "postgresql"
    """PostgreSQL, via psycopg 3."""
    MYSQL = "mysql"
    """MySQL or MariaDB, via PyMySQL."""
    MSSQL = "mssql"
    """SQL Server through SQLAlchemy's `mssql+pyodbc` (install pyodbc)."""
    ORACLE = "oracle"
    """Oracle through SQLAlchemy's `oracle+oracledb` (install oracledb)."""


class LoadMode(StrEnum):
    """How a table's extract replaces rows in its raw Iceberg table."""

    FULL_REFRESH = "full_refresh"
    """The whole table every run, replaced in one snapshot (master data)."""
    INCREMENTAL = "incremental"
    """Rows whose cursor falls in the run's production day; reruns replace them."""
    MERGE = "merge"
    """Rows whose cursor falls in the run's production day, upserted by key."""
    SNAPSHOT = "snapshot"
    """Immutable runs keyed by `snapshot_key` (e.g. plan runs): each run is
    appended once; a run loaded again must be identical, else the load fails."""


class Severity(StrEnum):
    """What a failing validation rule does to the load."""

    ERROR = "error"
    """Failing rows are quarantined; beyond the tolerance the load stops."""
    WARN = "warn"
    """Failing rows are counted and reported; the load goes on with them."""


class ColumnType(StrEnum):
    """Portable column types declared in tenant.yaml (mapped to Arrow and Iceberg)."""

    STRING = "string"
    BIGINT = "bigint"
    INT = "int"
    DOUBLE = "double"
    BOOLEAN = "boolean"
    DATE = "date"
    TIMESTAMP = "timestamp"
    """Naive timestamp: no time zone, kept as the source wrote it."""
    TIMESTAMPTZ = "timestamptz"
    """An instant; stored as UTC microseconds."""
    DECIMAL = "decimal"
    """Exact numeric: needs `precision` and `scale`."""


class DbtTarget(StrEnum):
    """Warehouse engine that dbt runs on; the only difference between environments."""

    DUCKDB = "duckdb"
    """Embedded default: a DuckDB file per tenant, raw Iceberg read via PyIceberg."""
    TRINO = "trino"
    """The stack: Trino's iceberg catalog over the same REST catalog and S3."""


class CatalogType(StrEnum):
    """PyIceberg catalog implementations we configure."""

    SQL = "sql"
    """PyIceberg's SQL catalog (SQLite file or PostgreSQL): the embedded default."""
    REST = "rest"
    """An Iceberg REST catalog (the stack; Trino reads the same one)."""


class DriftPolicy(StrEnum):
    """What validation does when an extract carries a column the table lacks."""

    EVOLVE = "evolve"
    """Log it and record it in the report; the load adds it to the raw table if
    the extract carries it (an undeclared source column is not extracted)."""
    FAIL = "fail"
    """Stop before the load, naming the added column."""


class PublishMode(StrEnum):
    """How a mart's rows replace those of its table in the target database."""

    REPLACE_DAY = "replace_day"
    """Exactly the production day's rows (by the mart's date column), in one
    transaction: readers see the old day until the new one is complete."""
    FULL = "full"
    """The whole table, in one transaction (the mart holds every day)."""
    UPSERT = "upsert"
    """Insert new keys, update existing ones (`INSERT … ON CONFLICT` on `key`)."""
    REPLACE_PLAN_VER = "replace_plan_ver"
    """Exactly the run's plan version's rows (column `plan_ver`, the master
    marts), in one transaction; other plan versions are untouched."""
