"""`mozart check <tenant>`: an onboarding dry-run against the live source.

Per table, with the tenant's own settings and the extractor's own query
(tenant filter and custom queries included): reachable; declared columns
present with supported types; primary key unique; cursor non-null and
monotonic enough; no NULL where a column is declared `nullable: false`, no
decimal wider or finer than declared; row count, daily volume and
extract-time estimates.

Blockers (the first run would fail or load wrong data) make the command exit
non-zero; warnings only inform. A naive `timestamp` cursor with no declared
zone is a warning, not a blocker: UTC is a legitimate reading, only the tenant
knows whether the source's clock is the plant's.

Row and NULL-cursor counts cover the whole table; key uniqueness and late rows
read it whole up to `sample_rows` rows, else a bounded sample (the latest
`sample_rows` rows by cursor, or by key) — the report says which.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict

from mozart_etl.config.constants import ColumnType
from mozart_etl.config.models import TableConfig, TenantConfig
from mozart_etl.extract.connectors import Connector
from mozart_etl.extract.introspect import (
    SourceSchemaError,
    check_declared,
    table_columns,
)
from mozart_etl.extract.query import Window, tenant_select
from mozart_etl.factory.connections import source_connector

SAMPLE_ROWS = 1_000_000
PROBE_ROWS = 20_000
VOLUME_DAYS = 7
LATE_EXAMPLES = 10_000
INTEGER_TYPES = (ColumnType.INT, ColumnType.BIGINT)
NOT_IN_ORDER_FRACTION = 0.05
"""Past this share of rows "late", the key is not in insertion order: keys
assigned out of time order, not late commits (rare in a real MES)."""


class Severity(StrEnum):
    """How bad a finding is."""

    BLOCKER = "blocker"
    """The first run would fail or load wrong data: fix before onboarding."""
    WARNING = "warning"
    """Works, but worth a look (late rows beyond the lookback, no estimate)."""


class Finding(BaseModel):
    model_config = ConfigDict(frozen=True)

    severity: Severity
    message: str


class TableCheck(BaseModel):
    """What `mozart check` found for one table."""

    model_config = ConfigDict(frozen=True)

    table: str
    reachable: bool
    scope: str | None = None
    """Where key and cursor checks ran: `full table` or the bounded sample."""
    rows: int | None = None
    daily_rows: float | None = None
    duplicate_keys: int | None = None
    null_cursors: int | None = None
    late_rows: int | None = None
    max_lateness_hours: float | None = None
    probe_rows_per_second: float | None = None
    first_extract_seconds: float | None = None
    daily_extract_seconds: float | None = None
    findings: list[Finding] = []

    @property
    def blockers(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == Severity.BLOCKER]


class TenantCheck(BaseModel):
    model_config = ConfigDict(frozen=True)

    tenant_id: str
    source: str
    tables: list[TableCheck]

    @property
    def ok(self) -> bool:
        return not any(table.blockers for table in self.tables)


def check_tenant(
    tenant: TenantConfig,
    connector: Connector | None = None,
    *,
    sample_rows: int = SAMPLE_ROWS,
) -> TenantCheck:
    connector = connector or source_connector(tenant)
    engine = connector.engine()
    try:
        tables = [
            check_table(tenant, table, connector, engine, sample_rows=sample_rows)
            for table in tenant.tables
        ]
    finally:
        engine.dispose()
    return TenantCheck(
        tenant_id=tenant.tenant_id, source=connector.describe(), tables=tables
    )


def check_table(
    tenant: TenantConfig,
    table: TableConfig,
    connector: Connector,
    engine: sa.Engine,
    *,
    sample_rows: int = SAMPLE_ROWS,
) -> TableCheck:
    result = _reach_and_check(tenant, table, connector, engine, sample_rows)
    settings = _zone_findings(tenant, table)  # from tenant.yaml alone
    if not settings:
        return result
    return result.model_copy(update={"findings": [*result.findings, *settings]})


def _reach_and_check(
    tenant: TenantConfig,
    table: TableConfig,
    connector: Connector,
    engine: sa.Engine,
    sample_rows: int,
) -> TableCheck:
    try:
        with engine.connect() as conn:
            return _check(tenant, table, connector, conn, sample_rows)
    except sa.exc.NoSuchTableError as exc:
        finding = _blocker(f"unreachable: no table {exc} in the source")
        return TableCheck(table=table.name, reachable=False, findings=[finding])
    except sa.exc.SQLAlchemyError as exc:
        # The driver's message only (a URL with a password never reaches it).
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        finding = _blocker(f"unreachable: {reason}")
        return TableCheck(table=table.name, reachable=False, findings=[finding])


def _zone_findings(tenant: TenantConfig, table: TableConfig) -> list[Finding]:
    """A naive `timestamp` cursor whose zone nobody declared.

    Its values are then read as UTC: window bounds, validity instants and
    staging. A legacy MES often writes the plant's wall time instead, and
    rows are then filed under the wrong production day, silently: say so
    before the first run, naming the setting that fixes it.
    """
    if table.cursor is None or table.column(table.cursor).type != ColumnType.TIMESTAMP:
        return []
    if table.timezone or tenant.source.timezone:
        return []
    return [
        _warning(
            f"tenant {tenant.tenant_id}, table {table.name}: cursor column "
            f"{table.cursor} is a naive timestamp and no zone is declared, so it "
            "is read as UTC; if the source writes local wall time, set "
            "`source.timezone` in tenant.yaml (or this table's `timezone`) to "
            "its IANA zone, e.g. America/New_York"
        )
    ]


def _check(
    tenant: TenantConfig,
    table: TableConfig,
    connector: Connector,
    conn: sa.Connection,
    sample_rows: int,
) -> TableCheck:
    findings = _column_findings(tenant, table, connector, conn)
    if findings:  # the queries below would fail on a missing column
        return TableCheck(table=table.name, reachable=True, findings=findings)
    rows_query = tenant_select(tenant, table, connector, window=None)
    source = rows_query.subquery("mozart_check")
    rows = _scalar(conn, sa.select(sa.func.count()).select_from(source))
    order = table.cursor or table.primary_key[0]
    if rows <= sample_rows:
        scope, sample = f"full table ({rows:,} rows)", source
    else:
        scope = f"sample: latest {sample_rows:,} of {rows:,} rows by {order}"
        sample = (
            sa.select(source)
            .order_by(source.c[order].desc())
            .limit(sample_rows)
            .subquery("mozart_sample")
        )
    facts: dict[str, Any] = {"rows": rows, "scope": scope}
    facts["duplicate_keys"] = _duplicate_keys(conn, sample, table.primary_key)
    if facts["duplicate_keys"]:
        key = ", ".join(table.primary_key)
        findings.append(
            _blocker(
                f"primary key ({key}) is not unique: {facts['duplicate_keys']:,} "
                f"key value(s) occur more than once ({scope})"
            )
        )
    if table.cursor is not None:
        findings += _cursor_findings(table, conn, source, sample, facts)
    findings += _value_findings(table, conn, sample, scope)
    facts["daily_rows"] = _daily_rows(tenant, table, connector, conn, source, rows)
    facts.update(_extract_estimates(conn, rows_query, rows, facts["daily_rows"]))
    if table.mode != "full_refresh" and table.cursor is None:
        findings.append(_blocker(f"mode {table.mode} needs a cursor column"))
    return TableCheck(table=table.name, reachable=True, findings=findings, **facts)


def _column_findings(
    tenant: TenantConfig, table: TableConfig, connector: Connector, conn: sa.Connection
) -> list[Finding]:
    """Every declared column that is missing or has an unsupported type."""
    source = table_columns(conn, table, connector)
    if source is None:  # a query whose types the driver does not describe
        return []
    findings = []
    for column in table.columns:
        one = table.model_copy(update={"columns": [column]})
        try:
            check_declared(tenant.tenant_id, one, source, connector)
        except SourceSchemaError as exc:
            findings.append(_blocker(f"column {column.name}: {exc.message}"))
    return findings


def _value_findings(
    table: TableConfig, conn: sa.Connection, sample: Any, scope: str
) -> list[Finding]:
    """Values the first run would refuse, counted in one query: NULL in a
    column declared `nullable: false` (validation's `required_columns`), a
    decimal with more integer digits than `decimal(P,S)` holds
    (`decimal_fits`) or more decimal places (the extract refuses to round)."""
    counts: dict[str, Any] = {}
    for column in table.columns:
        value = sample.c[column.name]
        if not column.nullable and column.name not in table.primary_key:
            counts[f"{column.name} is NULL"] = _count_where(value.is_(None))
        if column.type == ColumnType.DECIMAL:
            assert column.precision is not None and column.scale is not None
            shape = f"decimal({column.precision},{column.scale})"
            digits = column.precision - column.scale
            bound = sa.literal(Decimal(10) ** digits, sa.Numeric(digits + 1, 0))
            number = value + 0  # a number, whatever the column's affinity (SQLite)
            counts[
                f"{column.name} has more than {digits} integer digit(s) ({shape})"
            ] = _count_where(sa.func.abs(number) >= bound)
            counts[
                f"{column.name} has more than {column.scale} decimal place(s) ({shape})"
            ] = _count_where(sa.func.round(number, column.scale) != number)
    if not counts:
        return []
    # Annotated: mypy unpacks a Row of unknown columns into `object`s.
    row: tuple[Any, ...] = conn.execute(
        sa.select(*counts.values()).select_from(sample)
    ).one()
    return [
        _blocker(f"{what} in {int(found):,} row(s) ({scope})")
        for what, found in zip(counts, row, strict=True)
        if found
    ]


def _count_where(condition: Any) -> Any:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def _duplicate_keys(conn: sa.Connection, sample: Any, key: list[str]) -> int:
    columns = [sample.c[name] for name in key]
    duplicated = (
        sa.select(*columns).group_by(*columns).having(sa.func.count() > 1).subquery()
    )
    return _scalar(conn, sa.select(sa.func.count()).select_from(duplicated))


def _cursor_findings(
    table: TableConfig,
    conn: sa.Connection,
    source: Any,
    sample: Any,
    facts: dict[str, Any],
) -> list[Finding]:
    """NULL cursors over the whole table (a count, like the row count: a sample
    ordered by the cursor would put NULLs first or last, by database); late
    rows over the sample."""
    assert table.cursor is not None
    cursor = source.c[table.cursor]
    nulls = _scalar(
        conn, sa.select(sa.func.count()).select_from(source).where(cursor.is_(None))
    )
    facts["null_cursors"] = nulls
    findings = []
    if nulls:
        findings.append(
            _blocker(
                f"cursor {table.cursor} is NULL in {nulls:,} row(s) (full table): "
                "those rows would never be extracted incrementally"
            )
        )
    late = _lateness(table, conn, sample)
    if late is None:
        findings.append(
            _warning(
                "late rows not estimated: the key is not one integer column, so "
                "the source's insertion order is unknown"
            )
        )
        return findings
    late_rows, hours, checked = late
    if checked and late_rows > NOT_IN_ORDER_FRACTION * checked:
        findings.append(
            _warning(
                f"late rows not estimated: {late_rows:,} of {checked:,} rows have "
                f"{table.cursor} below that of an earlier key, so the key does not "
                "follow insertion order (late commits are rare; this many are "
                "keys assigned out of time order)"
            )
        )
        return findings
    facts["late_rows"], facts["max_lateness_hours"] = late_rows, hours
    if hours > table.lookback_hours:
        findings.append(
            _warning(
                f"{late_rows:,} row(s) have {table.cursor} below that of an earlier "
                f"key (up to {hours:.1f} h late): lookback_hours="
                f"{table.lookback_hours:g} misses them; consider {hours:.0f}"
            )
        )
    return findings


def _lateness(
    table: TableConfig, conn: sa.Connection, sample: Any
) -> tuple[int, float, int] | None:
    """Rows whose cursor is below the maximum of all rows with a smaller key,
    their greatest lateness in hours, and the rows compared.

    With a single integer key (an identity/sequence: insertion order), such a
    row arrived after newer cursors had been written: an incremental window
    would already have passed it, unless the lookback reaches back that far.
    """
    assert table.cursor is not None
    (key,) = table.primary_key if len(table.primary_key) == 1 else (None,)
    if key is None or table.column(key).type not in INTEGER_TYPES:
        return None
    cursor = sample.c[table.cursor]
    before = sa.func.max(cursor).over(order_by=sample.c[key], rows=(None, -1))
    ordered = sa.select(cursor.label("c"), before.label("before")).subquery()
    late = sa.select(ordered.c.c, ordered.c.before).where(
        ordered.c.c < ordered.c.before
    )
    count = _scalar(conn, sa.select(sa.func.count()).select_from(late.subquery()))
    checked = _scalar(conn, sa.select(sa.func.count()).select_from(ordered))
    pairs = conn.execute(late.limit(LATE_EXAMPLES)).all()
    hours = [(_instant(b) - _instant(c)).total_seconds() / 3600 for c, b in pairs]
    return count, max(hours, default=0.0), checked


def _daily_rows(
    tenant: TenantConfig,
    table: TableConfig,
    connector: Connector,
    conn: sa.Connection,
    source: Any,
    rows: int,
) -> float:
    """Rows a daily run reads: all of them (full refresh), else the mean of the
    last `VOLUME_DAYS` days of cursor values (fewer if the data is younger)."""
    if table.cursor is None or table.mode == "full_refresh":
        return float(rows)
    cursor = source.c[table.cursor]
    low, high = conn.execute(sa.select(sa.func.min(cursor), sa.func.max(cursor))).one()
    if high is None:
        return 0.0
    end = _instant(high) + timedelta(microseconds=1)
    start = max(end - timedelta(days=VOLUME_DAYS), _instant(low))
    days = max((end - start).total_seconds() / 86400, 1.0)
    window = Window(start=start, end=end)
    recent = tenant_select(tenant, table, connector, window=window)
    count = _scalar(conn, sa.select(sa.func.count()).select_from(recent.subquery()))
    return count / days


def _extract_estimates(
    conn: sa.Connection,
    rows_query: sa.Select[*tuple[Any, ...]],
    rows: int,
    daily_rows: float,
) -> dict[str, float | None]:
    """Time a fetch of up to PROBE_ROWS rows through the extract's own query."""
    started = time.perf_counter()
    fetched = len(conn.execute(rows_query.limit(PROBE_ROWS)).all())
    seconds = time.perf_counter() - started
    if fetched == 0:
        return {"probe_rows_per_second": None}
    rate = fetched / max(seconds, 1e-6)
    return {
        "probe_rows_per_second": rate,
        "first_extract_seconds": rows / rate,
        "daily_extract_seconds": daily_rows / rate,
    }


def _instant(value: object) -> datetime:
    """A cursor value (datetime, date or SQLite's ISO text) as an aware instant."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    raise TypeError(f"cursor value {value!r} is not a date or instant")


def _scalar(conn: sa.Connection, query: sa.Select[*tuple[Any, ...]]) -> int:
    return int(conn.execute(query).scalar_one())


def _blocker(message: str) -> Finding:
    return Finding(severity=Severity.BLOCKER, message=message)


def _warning(message: str) -> Finding:
    return Finding(severity=Severity.WARNING, message=message)
