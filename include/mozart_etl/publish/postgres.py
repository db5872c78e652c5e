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

Concurrency: one writer per table at a time. Two attempts publishing the same
tables at once (a retry overlapping a slow first try, a manual re-run, two DAG
runs) would otherwise both commit: under READ COMMITTED each `DELETE … WHERE
day = D` misses the other's uncommitted rows, and the table ends with the slice
twice; two first publishes race on `CREATE SCHEMA` / `CREATE TABLE` and one fails
on a unique violation in the catalog. So, first thing in the transaction, publish
takes a transaction-level advisory lock per target table,
`pg_advisory_xact_lock(hashtextextended('mozart-etl publish "aps"."mart_wip"',
0))` (both names always double-quoted, inner quotes doubled: an APS-side job can
take the same key in plain SQL), in ascending key order so that publishes of
overlapping table sets never deadlock; a missing schema is created under a lock
of its own (`… publish "<schema>"`), taken only then and after the table locks.
The second attempt waits (logged, with the holder's pid), then runs on a fresh
statement snapshot: it sees the first one's commit, deletes its rows, and the
table holds one copy. The transaction is pinned to READ COMMITTED for that
reason (under REPEATABLE READ the snapshot would predate the wait).
Commit, rollback or the death of the attempt (its session ends) releases the
locks; readers never take them, so they read the old rows until the commit as
before. A wait longer than `lock_timeout` (default LOCK_TIMEOUT_SECONDS; the
publish task has no execution timeout of its own) fails with a retryable
PublishError saying another publish of the same table holds it.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from datetime import date
from typing import Any

import psycopg
from psycopg import sql
from pydantic import BaseModel, ConfigDict

from mozart_etl.config.constants import PublishMode
from mozart_etl.config.models import PublishMart, PublishTarget, TenantConfig
from mozart_etl.core.credentials import Credentials
from mozart_etl.core.driver_errors import Cause, classify
from mozart_etl.core.errors import ConfigError, PublishError, PublishRejected
from mozart_etl.publish.warehouse import (
    DAY_COLUMNS,
    MartColumn,
    MartReader,
    day_column_of,
)

log = logging.getLogger(__name__)

PLAN_VER_COLUMN = "plan_ver"
LOCK_TIMEOUT_SECONDS = 600.0
"""How long a publish waits for another publish of the same table to commit:
longer than any publish of the marts takes, short enough that a stuck holder
(a client gone without its TCP connection closing) fails the task, which then
retries, instead of leaving it waiting with no end."""
LOCK_PREFIX = "mozart-etl publish "
"""Namespaces publish's advisory-lock keys from other users of advisory locks."""

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
        # libpq options (sslmode, …) go to psycopg as keywords, whose stub types
        # them `str | int | None`: ours are wider (tenant.yaml's `options` are
        # shared with the source connectors) and are passed on as they are.
        options: dict[str, Any] = dict(self.options)
        return psycopg.connect(
            host=self.host,
            port=self.port,
            dbname=self.database,
            user=self.user,
            password=password,
            application_name="mozart-etl publish",
            connect_timeout=30,
            **options,
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
    *,
    lock_timeout: float = LOCK_TIMEOUT_SECONDS,
) -> PublishResult:
    """Write every mart of the tenant's `publish:` block, all in one transaction
    (`plan_ver`: the run's plan version, for marts in mode replace_plan_ver;
    `lock_timeout`: seconds to wait for another publish of the same tables)."""
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
    tables = [mart.target_table for mart in config.marts]
    try:
        with MartReader(tenant) as reader, target.connect() as conn:
            # The statements after the lock wait must see the other attempt's
            # commit: a fresh snapshot per statement, whatever the server default.
            conn.isolation_level = psycopg.IsolationLevel.READ_COMMITTED
            with conn.transaction():
                _lock_tables(conn, tenant, config.schema_, tables, lock_timeout)
                _ensure_schema(conn, tenant, config.schema_, lock_timeout)
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
    """Refusals of the rows, the login or the grants are terminal; connection
    trouble may pass on a retry."""
    refused = (
        isinstance(
            exc, psycopg.DataError | psycopg.IntegrityError | psycopg.ProgrammingError
        )
        or classify(exc) is Cause.ACCESS
    )
    kind = PublishRejected if refused else PublishError
    message = target.scrub(f"{type(exc).__name__}: {exc}".strip())
    return kind(
        f"publish to {target.describe()} failed, nothing was changed: {message}",
        tenant=tenant.tenant_id,
    )


def _lock_tables(
    conn: psycopg.Connection,
    tenant: TenantConfig,
    schema: str,
    tables: list[str],
    timeout: float,
) -> None:
    """Hold the publish lock of every target table until the transaction ends.

    Ascending key order (not the configured order) is what keeps two publishes
    of overlapping table sets, e.g. [a, b] and [b, a], from deadlocking."""
    labels = {_lock_text(conn, schema, table): f"{schema}.{table}" for table in tables}
    keys = conn.execute(
        "SELECT name, hashtextextended(name, 0) AS key "
        "FROM unnest(%s::text[]) AS name ORDER BY key",
        [list(labels)],
    ).fetchall()
    for text, key in keys:
        _advisory_lock(conn, tenant, key, labels[text], "table", timeout)


def _lock_text(conn: psycopg.Connection, schema: str, table: str | None) -> str:
    """The text the lock key hashes: the prefix and the quoted name."""
    name = sql.Identifier(schema) if table is None else sql.Identifier(schema, table)
    return LOCK_PREFIX + name.as_string(conn)


def _advisory_lock(
    conn: psycopg.Connection,
    tenant: TenantConfig,
    key: int,
    label: str,
    kind: str,
    timeout: float,
) -> None:
    """Take one transaction-level advisory lock, waiting at most `timeout` s.

    Tried without waiting first, so a wait (two attempts overlapping, which
    the operator may want to know about) is logged with who holds the lock."""
    row = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", [key]).fetchone()
    if row is not None and row[0]:
        return
    holder = _lock_holder(conn, key)
    log.warning(
        "waiting for the publish lock of %s: another publish of the same %s "
        "holds it (%s); waiting up to %g s",
        label,
        kind,
        holder,
        timeout,
    )
    started = time.perf_counter()
    row = conn.execute("SELECT current_setting('lock_timeout')").fetchone()
    previous = row[0] if row else "0"
    # Local to the transaction, and set back once the lock is held: the wait
    # for the lock is bounded, the publish's own statements are not.
    milliseconds = f"{max(1, round(timeout * 1000))}ms"
    conn.execute("SELECT set_config('lock_timeout', %s, true)", [milliseconds])
    try:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [key])
    except psycopg.errors.LockNotAvailable:
        raise PublishError(
            f"publish gave up on {label} after {timeout:g} s: another publish "
            f"of the same {kind} holds it ({holder}); nothing was changed, a retry "
            "publishes once it has committed",
            tenant=tenant.tenant_id,
            table=label,
        ) from None
    conn.execute("SELECT set_config('lock_timeout', %s, true)", [previous])
    log.info(
        "publish lock of %s acquired after %.2f s",
        label,
        time.perf_counter() - started,
    )


def _lock_holder(conn: psycopg.Connection, key: int) -> str:
    """Who holds advisory lock `key` in this database, for the logs."""
    row = conn.execute(
        "SELECT l.pid, a.application_name, a.xact_start "
        "FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
        "AND l.database = (SELECT oid FROM pg_database "
        "WHERE datname = current_database()) "
        "AND (l.classid::bigint << 32 | l.objid::bigint) = %s",
        [key],
    ).fetchone()
    if row is None:
        return "its holder just released it"
    pid, application, since = row
    started = f", in a transaction since {since:%H:%M:%S %Z}" if since else ""
    return f"pid {pid} ({application or 'no application name'}){started}"


def _ensure_schema(
    conn: psycopg.Connection, tenant: TenantConfig, schema: str, timeout: float
) -> None:
    """Create the schema if missing; two first publishes into it, even of
    different tables, take its lock so only one runs CREATE SCHEMA."""
    query = "SELECT 1 FROM pg_namespace WHERE nspname = %s"
    if conn.execute(query, [schema]).fetchone() is not None:
        return
    row = conn.execute(
        "SELECT hashtextextended(%s, 0)", [_lock_text(conn, schema, None)]
    ).fetchone()
    assert row is not None
    _advisory_lock(conn, tenant, row[0], schema, "schema", timeout)
    if conn.execute(query, [schema]).fetchone() is None:  # a fresh snapshot
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
    action: sql.Composable
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
