"""Publish marts to the APS operational PostgreSQL in one transaction.

Every mart of the `publish:` block is written in the same transaction, so the
APS engine sees either the previous set of tables or the new one, never a mix,
and a failure (a type clash, a constraint, a lost connection) leaves every
target table as it was:

- `replace_day`: `DELETE` the production day's rows, `COPY` the mart's rows of
  that day;
- `replace_plan_ver`: the same for the run's plan version (column `plan_ver`
  of the master marts): other plan versions' rows are never touched;
- `full`: `DELETE` every row, `COPY` the whole mart. Not a staging table swapped
  in by `RENAME`: a swap drops the grants, indexes and views the operational
  side hangs on the table, and `TRUNCATE` would lock its readers out for the
  whole copy; under MVCC they read the old rows until the commit;
- `upsert`: `COPY` into a temporary table, then `INSERT … ON CONFLICT (key) DO
  UPDATE`.

A missing target table is created from the mart's columns (with the upsert key
as its primary key). Identifiers are quoted, values bound or copied; the
password is never logged nor returned.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from datetime import date

import psycopg
from psycopg import sql
from pydantic import BaseModel, ConfigDict

from mozart_etl.config.constants import PublishMode
from mozart_etl.config.models import PublishMart, PublishTarget, TenantConfig
from mozart_etl.credentials import Credentials
from mozart_etl.errors import ConfigError, PublishError, PublishRejected
from mozart_etl.publish.warehouse import (
    DAY_COLUMNS,
    MartColumn,
    MartReader,
    day_column_of,
)

log = logging.getLogger(__name__)

PLAN_VER_COLUMN = "plan_ver"

_DECIMAL = re.compile(r"^DECIMAL\((\d+),\s*(\d+)\)$")
PG_TYPES = {
    "VARCHAR": "text",
    "BIGINT": "bigint",
    "INTEGER": "integer",
    "SMALLINT": "smallint",
    "TINYINT": "smallint",
    "HUGEINT": "numeric(38,0)",
    "UBIGINT": "numeric(20,0)",
    "UINTEGER": "bigint",
    "DOUBLE": "double precision",
    "FLOAT": "real",
    "BOOLEAN": "boolean",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "UUID": "uuid",
}


class PostgresTarget(Credentials):
    """The publish target's resolved settings (tenant.yaml or a connection)."""

    @classmethod
    def from_config(cls, target: PublishTarget) -> PostgresTarget:
        if target.host is None or target.database is None:
            raise ConfigError("the publish target needs `host` and `database`")
        return cls.from_settings(target)

    def describe(self) -> str:
        """For logs: never the password."""
        user = f"{self.user}@" if self.user else ""
        return f"postgresql://{user}{self.host}:{self.port or 5432}/{self.database}"

    def connect(self) -> psycopg.Connection:
        password = self.password.get_secret_value() if self.password else None
        return psycopg.connect(
            host=self.host,
            port=self.port,
            dbname=self.database,
            user=self.user,
            password=password,
            application_name="mozart-etl publish",
            connect_timeout=30,
            **self.options,
        )


class MartPublished(BaseModel):
    model_config = ConfigDict(frozen=True)

    mart: str
    table: str
    mode: PublishMode
    day_column: str | None
    rows_deleted: int
    rows_written: int
    created: bool


class PublishResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    tenant_id: str
    production_day: date
    plan_ver: str | None = None
    target: str
    schema_name: str
    marts: list[MartPublished]
    seconds: float


def pg_type(column: MartColumn) -> str:
    """The PostgreSQL type of a warehouse column."""
    decimal = _DECIMAL.match(column.type)
    if decimal:
        return f"numeric({decimal.group(1)},{decimal.group(2)})"
    try:
        return PG_TYPES[column.type]
    except KeyError:
        raise PublishRejected(
            f"column {column.name!r} has type {column.type}, which publish does "
            f"not map (mapped: {sorted(PG_TYPES)}, DECIMAL(p,s))",
            column=column.name,
        ) from None


def publish_marts(
    tenant: TenantConfig,
    day: date,
    target: PostgresTarget,
    plan_ver: str | None = None,
) -> PublishResult:
    """Write every mart of the tenant's `publish:` block, all in one transaction
    (`plan_ver`: the run's plan version, for marts in mode replace_plan_ver)."""
    config = tenant.publish
    if config is None:
        raise ConfigError("the tenant has no `publish:` block", tenant=tenant.tenant_id)
    started = time.perf_counter()
    log.info(
        "publish %d mart(s) of %s, day %s, to %s schema %s",
        len(config.marts),
        tenant.tenant_id,
        day,
        target.describe(),
        config.schema_,
    )
    try:
        with (
            MartReader(tenant) as reader,
            target.connect() as conn,
            conn.transaction(),
        ):
            _ensure_schema(conn, config.schema_)
            published = [
                _publish_mart(conn, reader, tenant, mart, day, plan_ver)
                for mart in config.marts
            ]
    except psycopg.Error as exc:
        raise _publish_error(exc, target, tenant) from None
    result = PublishResult(
        tenant_id=tenant.tenant_id,
        production_day=day,
        plan_ver=plan_ver,
        target=target.describe(),
        schema_name=config.schema_,
        marts=published,
        seconds=round(time.perf_counter() - started, 3),
    )
    log.info("publish committed in %.2f s", result.seconds)
    return result


def _publish_error(
    exc: psycopg.Error, target: PostgresTarget, tenant: TenantConfig
) -> PublishError:
    """Refusals of the rows are terminal; connection trouble may pass on a retry."""
    refused = isinstance(
        exc, psycopg.DataError | psycopg.IntegrityError | psycopg.ProgrammingError
    )
    kind = PublishRejected if refused else PublishError
    message = target.scrub(f"{type(exc).__name__}: {exc}".strip())
    return kind(
        f"publish to {target.describe()} failed, nothing was changed: {message}",
        tenant=tenant.tenant_id,
    )


def _ensure_schema(conn: psycopg.Connection, schema: str) -> None:
    exists = conn.execute(
        "SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema]
    ).fetchone()
    if exists is None:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))


def _publish_mart(
    conn: psycopg.Connection,
    reader: MartReader,
    tenant: TenantConfig,
    mart: PublishMart,
    day: date,
    plan_ver: str | None = None,
) -> MartPublished:
    config = tenant.publish
    assert config is not None
    mode = config.mode_of(mart)
    columns = reader.columns(mart.mart)
    day_column = None
    slice_value: date | str = day
    if mode == PublishMode.REPLACE_PLAN_VER:
        day_column, slice_value = _plan_ver_slice(tenant, mart, columns, plan_ver)
    elif mode == PublishMode.REPLACE_DAY and _plan_versioned(mart, columns):
        raise PublishRejected(
            f"{mart.mart} holds one partition per plan version: publish it with "
            "mode replace_plan_ver (replace_day would replace by its date column)",
            tenant=tenant.tenant_id,
            table=mart.mart,
        )
    elif mode == PublishMode.REPLACE_DAY or (
        mode == PublishMode.UPSERT and _has_date(columns)
    ):
        day_column = day_column_of(
            mart.mart, columns, mart.day_column, tenant.tenant_id
        )
    table = sql.Identifier(config.schema_, mart.target_table)
    created = _ensure_table(conn, config.schema_, mart, columns, mode)
    names = sql.SQL(", ").join(sql.Identifier(column.name) for column in columns)
    rows = reader.rows(mart.mart, columns, day_column=day_column, day=slice_value)
    if mode == PublishMode.UPSERT:
        deleted, written = 0, _upsert(conn, table, mart, columns, names, rows)
    else:
        delete = sql.SQL("DELETE FROM {}").format(table)
        params: list[object] = []
        if day_column is not None:
            delete += sql.SQL(" WHERE {} = %s").format(sql.Identifier(day_column))
            params.append(slice_value)
        deleted = conn.execute(delete, params).rowcount
        written = _copy(conn, table, names, rows)
    published = MartPublished(
        mart=mart.mart,
        table=f"{config.schema_}.{mart.target_table}",
        mode=mode,
        day_column=day_column,
        rows_deleted=deleted,
        rows_written=written,
        created=created,
    )
    log.info(
        "published %s.%s → %s (%s%s): deleted %d, wrote %d rows%s",
        tenant.namespace,
        mart.mart,
        published.table,
        mode,
        f" {day_column} = {slice_value}" if day_column else "",
        deleted,
        written,
        ", table created" if created else "",
    )
    return published


def _plan_ver_slice(
    tenant: TenantConfig,
    mart: PublishMart,
    columns: list[MartColumn],
    plan_ver: str | None,
) -> tuple[str, str]:
    """replace_plan_ver: the mart's `plan_ver` column and the run's value."""
    if plan_ver is None:
        raise ConfigError(
            f"publish {mart.mart!r}: mode replace_plan_ver needs the run's plan_ver",
            tenant=tenant.tenant_id,
            table=mart.mart,
        )
    if PLAN_VER_COLUMN not in _names(columns):
        raise PublishRejected(
            f"mode replace_plan_ver needs a {PLAN_VER_COLUMN!r} column; "
            f"{mart.mart} has {_names(columns)}",
            tenant=tenant.tenant_id,
            table=mart.mart,
        )
    return PLAN_VER_COLUMN, plan_ver


def _plan_versioned(mart: PublishMart, columns: list[MartColumn]) -> bool:
    """A master mart (a `plan_ver` column, no production-day column): replace_day
    would guess its day column (e.g. mart_demand's due_date) and be wrong."""
    names = _names(columns)
    return (
        PLAN_VER_COLUMN in names
        and mart.day_column is None
        and not any(name in names for name in DAY_COLUMNS)
    )


def _names(columns: list[MartColumn]) -> list[str]:
    return [column.name for column in columns]


def _has_date(columns: list[MartColumn]) -> bool:
    return any(column.type == "DATE" for column in columns)


def _ensure_table(
    conn: psycopg.Connection,
    schema: str,
    mart: PublishMart,
    columns: list[MartColumn],
    mode: PublishMode,
) -> bool:
    """Create the target from the mart's columns if missing; check it otherwise."""
    existing = {
        name
        for (name,) in conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s",
            [schema, mart.target_table],
        )
    }
    if existing:
        missing = [c.name for c in columns if c.name not in existing]
        if missing:
            raise PublishRejected(
                f"target table {schema}.{mart.target_table} lacks the mart's "
                f"column(s) {missing}: add them, or drop the table to have it "
                "created",
                table=mart.mart,
            )
        return False
    definitions = [
        sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(pg_type(c)))
        for c in columns
    ]
    if mode == PublishMode.UPSERT:
        keys = sql.SQL(", ").join(sql.Identifier(key) for key in mart.key)
        definitions.append(sql.SQL("PRIMARY KEY ({})").format(keys))
    conn.execute(
        sql.SQL("CREATE TABLE {} ({})").format(
            sql.Identifier(schema, mart.target_table), sql.SQL(", ").join(definitions)
        )
    )
    return True


def _copy(
    conn: psycopg.Connection,
    table: sql.Composed | sql.Identifier,
    names: sql.Composed,
    rows: Iterable[tuple[object, ...]],
) -> int:
    written = 0
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(table, names)
    with conn.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)
            written += 1
    return written


def _upsert(
    conn: psycopg.Connection,
    table: sql.Identifier,
    mart: PublishMart,
    columns: list[MartColumn],
    names: sql.Composed,
    rows: Iterable[tuple[object, ...]],
) -> int:
    stage = sql.Identifier(f"_mozart_stage_{mart.target_table}")
    conn.execute(
        sql.SQL(
            "CREATE TEMPORARY TABLE {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP"
        ).format(stage, table)
    )
    written = _copy(conn, stage, names, rows)
    keys = sql.SQL(", ").join(sql.Identifier(key) for key in mart.key)
    others = [c.name for c in columns if c.name not in mart.key]
    if others:
        action = sql.SQL("DO UPDATE SET ") + sql.SQL(", ").join(
            sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(name))
            for name in others
        )
    else:
        action = sql.SQL("DO NOTHING")
    conn.execute(
        sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) ").format(
            table, names, names, stage, keys
        )
        + action
    )
    return written


__all__ = ["PostgresTarget", "PublishResult", "pg_type", "publish_marts"]
