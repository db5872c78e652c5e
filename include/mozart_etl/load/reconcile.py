"""Reconcile a sync: every source row the extract should have read is in raw.

Run after the load, it catches what no single stage sees: rows committed late
with a cursor the extract had already passed, a load that lost rows, a source
read that silently stopped short, and rows deleted in the source that raw
still holds live. For a versioned table (every mode but `snapshot`):

- each source row of the sync's range (cursor from the window's start to the
  capture instant; a full refresh: every row) must be a version in raw (same
  key and cursor) or quarantined by this extract; a declared sum is compared
  over exactly those rows;
- raw's live rows may not outnumber the source's: when they do, the keys raw
  holds and the source lost are named, with the setting that closes them.

Rows that change while this runs have a cursor past the capture instant and
are left to the next sync, so a busy source does not fail it. A table with a
Python transform (which may change the row count) and plan runs compare
counts with the extract or raw's runs, as before.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import (
    AlwaysFalse,
    AlwaysTrue,
    BooleanExpression,
    GreaterThanOrEqual,
    In,
)
from pyiceberg.table import Table

from mozart_etl.config.constants import ColumnType
from mozart_etl.config.models import TableConfig, TenantConfig
from mozart_etl.core.duck import duckdb_cursor
from mozart_etl.core.errors import ReconcileMismatch
from mozart_etl.core.identifiers import quote_identifier
from mozart_etl.core.lake import ExtractManifest, Lake
from mozart_etl.extract.connectors import Connector
from mozart_etl.extract.extractor import read_source
from mozart_etl.extract.query import Window, tenant_select
from mozart_etl.extract.source_errors import source_error
from mozart_etl.load.iceberg import summary_rows
from mozart_etl.load.versions import (
    VALID_FROM,
    is_dated,
    is_versioned,
    live_rows,
)

log = logging.getLogger(__name__)

FLOAT_TOLERANCE = 1e-9
"""Relative tolerance of a double column's sum (databases add in any order)."""


class NonFinite(NamedTuple):
    """How many NaN, +Infinity and -Infinity values a double column's rows hold.

    A sum over them says little: one NaN makes it NaN, and NaN never equals
    itself, so "source nan, raw nan" used to be a permanent mismatch; +inf and
    -inf together make NaN too. So a versioned table's double column compares
    the sum of its finite values (within FLOAT_TOLERANCE) and these counts
    (exactly): a NaN loaded as a NaN agrees, a NaN lost or turned into null
    does not, and a finite value that differs still fails beside a NaN."""

    nan: int = 0
    pos_inf: int = 0
    neg_inf: int = 0

    def describe(self) -> str:
        parts = (("NaN", self.nan), ("inf", self.pos_inf), ("-inf", self.neg_inf))
        return "".join(f" + {count} {label}" for label, count in parts if count)


class ReconcileResult(BaseModel):
    """Both sides' figures over one window; sums as exact decimal text."""

    model_config = ConfigDict(frozen=True)

    tenant_id: str
    table: str
    extract_id: str
    compared_with: str
    """`raw` (raw rows + quarantined) or `extract` (tables with a transform)."""
    source_rows: int
    raw_rows: int
    quarantined_rows: int
    sum_column: str | None
    source_sum: str | None
    raw_sum: str | None
    matched: bool
    missing_count: int = 0
    """Source rows of the sync in neither raw nor the quarantine."""
    missing_keys: list[dict[str, object]] = []
    stale_count: int = 0
    """Rows live in raw whose key the source no longer holds."""
    stale_keys: list[dict[str, object]] = []

    def describe(self) -> str:
        text = (
            f"source {self.source_rows} row(s), {self.compared_with} "
            f"{self.raw_rows} + {self.quarantined_rows} quarantined"
        )
        if self.sum_column:
            text += (
                f"; sum({self.sum_column}): source {self.source_sum}, "
                f"{self.compared_with} {self.raw_sum}"
            )
        return text


def reconcile(
    tenant: TenantConfig,
    table: TableConfig,
    manifest: ExtractManifest,
    quarantine_path: str,
    connector: Connector,
    catalog: Catalog,
) -> ReconcileResult:
    """Compare both sides; the result says whether they match and why not."""
    if is_versioned(table) and table.transform is None:
        return reconcile_versions(
            tenant, table, manifest, quarantine_path, connector, catalog
        )
    window = _window(manifest)
    source_rows, source_sum = source_figures(tenant, table, connector, window)
    quarantined, quarantined_sum = _parquet_figures(
        Lake(tenant), [quarantine_path], table.reconcile_sum
    )
    if table.transform is None:
        compared_with = "raw"
        raw_rows, raw_sum = _raw_figures(catalog, tenant, table, manifest)
    else:
        compared_with = "extract"
        rows, total = _parquet_figures(
            Lake(tenant), [f.path for f in manifest.files], table.reconcile_sum
        )
        raw_rows, raw_sum = rows - quarantined, _minus(total, quarantined_sum)
    sum_matched = table.reconcile_sum is None or _same_sum(
        table, source_sum, _plus(raw_sum, quarantined_sum)
    )
    result = ReconcileResult(
        tenant_id=tenant.tenant_id,
        table=table.name,
        extract_id=manifest.extract_id,
        compared_with=compared_with,
        source_rows=source_rows,
        raw_rows=raw_rows,
        quarantined_rows=quarantined,
        sum_column=table.reconcile_sum,
        source_sum=_text(source_sum),
        raw_sum=_text(_plus(raw_sum, quarantined_sum)),
        matched=source_rows == raw_rows + quarantined and sum_matched,
    )
    return _logged(result)


def _logged(result: ReconcileResult) -> ReconcileResult:
    log.info(
        "reconcile %s.%s: %s — %s",
        result.tenant_id,
        result.table,
        result.describe(),
        "match" if result.matched else "MISMATCH",
    )
    return result


def reconcile_versions(
    tenant: TenantConfig,
    table: TableConfig,
    manifest: ExtractManifest,
    quarantine_path: str,
    connector: Connector,
    catalog: Catalog,
) -> ReconcileResult:
    keys = list(table.primary_key)
    dated = is_dated(table)
    identity = [*keys, table.cursor] if dated and table.cursor else keys
    figures = [*identity, *([table.reconcile_sum] if table.reconcile_sum else [])]
    window = (
        Window(start=manifest.window_start, end=_read_by(manifest)) if dated else None
    )
    source = read_source(tenant, table, connector, names=figures, window=window)
    raw = catalog.load_table((tenant.raw_namespace, table.name))
    if dated:
        seen = _raw_versions(raw, figures, manifest.window_start)
    else:
        seen = live_rows(raw, table, columns=figures).select(figures)
    quarantined = _quarantined(Lake(tenant), quarantine_path, figures)
    missing, found_sum, found_odd = _missing(source, seen, quarantined, identity, table)
    source_sum, source_odd = (
        _finite_sum(source.column(table.reconcile_sum))
        if table.reconcile_sum
        else (None, NonFinite())
    )
    stale = _stale(tenant, table, connector, raw, keys)
    held_back = _count_in(quarantined, source, identity)
    sum_matched = table.reconcile_sum is None or (
        _same_sum(table, source_sum, found_sum) and source_odd == found_odd
    )
    result = ReconcileResult(
        tenant_id=tenant.tenant_id,
        table=table.name,
        extract_id=manifest.extract_id,
        compared_with="raw",
        source_rows=source.num_rows,
        raw_rows=source.num_rows - missing.num_rows - held_back,
        quarantined_rows=held_back,
        sum_column=table.reconcile_sum,
        source_sum=_text(source_sum, source_odd),
        raw_sum=_text(found_sum, found_odd),
        matched=not missing.num_rows and not stale.num_rows and sum_matched,
        missing_keys=_sample(missing, keys),
        stale_keys=_sample(stale, keys),
        missing_count=missing.num_rows,
        stale_count=stale.num_rows,
    )
    return _logged(result)


def _raw_versions(raw: Table, names: list[str], start: datetime | None) -> pa.Table:
    """Raw's versions valid from `start` on (a soft delete is a version too)."""
    row_filter: BooleanExpression = AlwaysTrue()
    if start is not None:
        # mypy builds pyiceberg's predicate __init__ from the pydantic fields
        # and misses the (term, literal) one pyiceberg writes.
        row_filter = GreaterThanOrEqual(VALID_FROM, start.isoformat())  # type: ignore[misc, call-arg, arg-type]
    return raw.scan(row_filter=row_filter, selected_fields=tuple(names)).to_arrow()


def _quarantined(lake: Lake, path: str, names: list[str]) -> pa.Table | None:
    if not path or not lake.fs.get_file_info(path).is_file:
        return None
    with lake.fs.open_input_file(path) as stream:
        return pq.read_table(stream, columns=names)


def _missing(
    source: pa.Table,
    seen: pa.Table,
    quarantined: pa.Table | None,
    identity: list[str],
    table: TableConfig,
) -> tuple[pa.Table, Decimal | float | None, NonFinite]:
    """Source rows neither in raw nor quarantined, and the declared sum over the
    source rows raw or the quarantine holds (their values as loaded): of a
    double column, the sum of its finite values and its non-finite counts."""
    with duckdb_cursor() as con:
        con.register("source", source)
        con.register("seen", seen)
        if quarantined is not None:
            con.register("quarantined", quarantined)
        found = _exists("seen", identity) + (
            f" or {_exists('quarantined', identity)}" if quarantined is not None else ""
        )
        missing = con.sql(
            f"select * from source as s where not ({found})"
        ).to_arrow_table()
        total: Decimal | float | None = None
        odd = NonFinite()
        if table.reconcile_sum:
            column = quote_identifier(table.reconcile_sum)
            floating = pa.types.is_floating(
                source.schema.field(table.reconcile_sum).type
            )
            figures = (
                "sum(v) filter (where isfinite(v)), count(*) filter (where isnan(v)), "
                "count(*) filter (where v = 'inf'::double), "
                "count(*) filter (where v = '-inf'::double)"
                if floating
                else "sum(v)"
            )
            held = con.sql(
                f"select {figures} from (select {column} as v from seen as k where "
                f"exists (select 1 from source as s where {_match('k', identity)}) "
                + (
                    f"union all select {column} as v from quarantined as k "
                    "where exists "
                    f"(select 1 from source as s where {_match('k', identity)})"
                    if quarantined is not None
                    else ""
                )
                + ") as x"
            ).fetchall()
            total = held[0][0] if held else None
            if held and floating:
                odd = NonFinite(*(int(count) for count in held[0][1:]))
    return missing, total, odd


def _finite_sum(values: pa.ChunkedArray) -> tuple[Decimal | float | None, NonFinite]:
    """The sum of a column (of a double column: of its finite values) and how
    many NaN and infinite values it holds."""
    if not pa.types.is_floating(values.type):
        return pc.sum(values).as_py(), NonFinite()
    finite = pc.filter(values, pc.is_finite(values))
    odd = NonFinite(
        nan=_count_true(pc.is_nan(values)),
        pos_inf=_count_true(pc.equal(values, math.inf)),
        neg_inf=_count_true(pc.equal(values, -math.inf)),
    )
    return pc.sum(finite).as_py(), odd


def _count_true(flags: pa.ChunkedArray) -> int:
    return int(pc.sum(flags.cast(pa.int64())).as_py() or 0)


def _exists(relation: str, identity: list[str]) -> str:
    return f"exists (select 1 from {relation} as k where {_match('k', identity)})"


def _match(alias: str, identity: list[str]) -> str:
    return " and ".join(
        f"s.{quote_identifier(name)} = {alias}.{quote_identifier(name)}"
        for name in identity
    )


def _count_in(part: pa.Table | None, source: pa.Table, identity: list[str]) -> int:
    if part is None or not part.num_rows:
        return 0
    with duckdb_cursor() as con:
        con.register("part", part)
        con.register("source", source)
        row = con.sql(
            f"select count(*) from source as s where {_exists('part', identity)}"
        ).fetchall()
    return int(row[0][0]) if row else 0


def _stale(
    tenant: TenantConfig,
    table: TableConfig,
    connector: Connector,
    raw: Table,
    keys: list[str],
) -> pa.Table:
    """Live raw keys the source no longer holds, looked up only when raw has
    more live rows than the source has rows.

    Raw's live rows are never more than the rows its snapshot summary counts
    (every version and deletion): when that count is within the source's, no
    key can be stale and raw's data files are not read (a first load's, or a
    table whose rows rarely change: ~0.5 s a million rows)."""
    source_count = _source_count(tenant, table, connector)
    held = summary_rows(raw)
    if held is not None and held <= source_count:
        return raw.schema().as_arrow().empty_table().select(keys)
    live = live_rows(raw, table, columns=keys).select(keys)
    if live.num_rows <= source_count:
        return live.slice(0, 0)
    present = read_source(tenant, table, connector, names=keys, window=None)
    with duckdb_cursor() as con:
        con.register("live", live)
        con.register("present", present)
        match = " and ".join(
            f"l.{quote_identifier(k)} = p.{quote_identifier(k)}" for k in keys
        )
        return con.sql(
            f"select * from live as l where not exists "
            f"(select 1 from present as p where {match})"
        ).to_arrow_table()


def _source_count(
    tenant: TenantConfig, table: TableConfig, connector: Connector
) -> int:
    count, _ = source_figures(
        tenant, table.model_copy(update={"reconcile_sum": None}), connector, None
    )
    return count


def _sample(rows: pa.Table, keys: list[str], limit: int = 5) -> list[dict[str, object]]:
    return [
        {key: _plain(value) for key, value in row.items()}
        for row in rows.select(keys).slice(0, limit).to_pylist()
    ]


def _plain(value: object) -> object:
    return (
        value
        if isinstance(value, int | float | str | bool) or value is None
        else str(value)
    )


def mismatch_error(
    result: ReconcileResult, manifest: ExtractManifest
) -> ReconcileMismatch:
    start = manifest.window_start.isoformat() if manifest.window_start else "-inf"
    end = manifest.window_end.isoformat() if manifest.window_end else "now"
    problems = []
    if result.missing_count:
        problems.append(
            f"{result.missing_count} source row(s) of the sync are neither in raw "
            f"nor quarantined (e.g. {result.missing_keys}): they were committed "
            "after the extract read past their cursor; raise the table's "
            "`lookback_hours` to cover such late commits and rerun"
        )
    if result.stale_count:
        problems.append(
            f"{result.stale_count} row(s) live in raw are gone from the source "
            f"(e.g. {result.stale_keys}): set `deletes: key_scan` (or a soft-delete "
            "column, `deletes: {column: …}`) for this table and rerun; the next "
            "sync closes them"
        )
    if not problems:
        problems.append(
            "rows changed in the source after the extract or the load missed "
            "some: rerun the production day"
        )
    return ReconcileMismatch(
        f"reconciliation of [{start}, {end}) failed: {result.describe()}. "
        + "; ".join(problems),
        tenant=result.tenant_id,
        table=result.table,
    )


def _window(manifest: ExtractManifest) -> Window | None:
    if manifest.window_start is None and manifest.window_end is None:
        return None
    end = manifest.window_end or _read_by(manifest)
    return Window(start=manifest.window_start, end=end)


def _read_by(manifest: ExtractManifest) -> datetime:
    """The end of what a sync read: rows dated at or before the instant it read
    the source (a row stamped that very instant included; the window's end is
    exclusive)."""
    captured = manifest.captured_at or manifest.started_at
    return captured + timedelta(microseconds=1)


def source_figures(
    tenant: TenantConfig,
    table: TableConfig,
    connector: Connector,
    window: Window | None,
) -> tuple[int, Decimal | float | None]:
    """COUNT(*) and SUM(column) of exactly what the extract's SELECT reads."""
    select = tenant_select(tenant, table, connector, window=window)
    rows = select.subquery("mozart_window")
    total: sa.ColumnElement[Any] = (
        sa.func.sum(rows.c[table.reconcile_sum]) if table.reconcile_sum else sa.null()
    )
    query = sa.select(sa.func.count(), total).select_from(rows)
    engine = connector.engine()
    try:
        with engine.connect() as conn:
            # Annotated: mypy unpacks a Row of unknown columns into `object`s.
            row: tuple[Any, ...] = conn.execute(query).one()
            count, value = row
    except sa.exc.SQLAlchemyError as exc:
        # Terminal (access, a missing table or column) or retryable by the
        # driver's error code, like the extract's read; never chained (the
        # driver's traceback may echo connection settings).
        raise source_error(
            exc, connector, doing="counting", tenant=tenant.tenant_id, table=table.name
        ) from None
    finally:
        engine.dispose()
    if isinstance(value, str):
        value = Decimal(value)
    return int(count), value


def _raw_figures(
    catalog: Catalog,
    tenant: TenantConfig,
    table: TableConfig,
    manifest: ExtractManifest,
) -> tuple[int, Decimal | float | None]:
    """Rows of raw in the extract's window (the whole table for full refresh;
    for snapshot tables, every row of the runs the extract read)."""
    row_filter: BooleanExpression = AlwaysTrue()
    run_key = getattr(table, "snapshot_key", None)
    if run_key is not None:
        runs = _distinct(Lake(tenant), [f.path for f in manifest.files], run_key)
        # mypy builds pyiceberg's predicate __init__ from the pydantic fields
        # and misses the (term, literal) one pyiceberg writes.
        row_filter = In(run_key, runs) if runs else AlwaysFalse()  # type: ignore[misc, call-arg, arg-type]
    column = table.reconcile_sum or table.primary_key[0]
    raw = catalog.load_table((tenant.raw_namespace, table.name))
    data = raw.scan(row_filter=row_filter, selected_fields=(column,)).to_arrow()
    total = pc.sum(data.column(column)).as_py() if table.reconcile_sum else None
    return data.num_rows, total


def _distinct(lake: Lake, paths: list[str], column: str) -> list[Any]:
    values: set[Any] = set()
    for path in paths:
        with lake.fs.open_input_file(path) as stream:
            data = pq.read_table(stream, columns=[column])
        values |= set(pc.unique(data.column(column)).to_pylist())
    return sorted(value for value in values if value is not None)


def _parquet_figures(
    lake: Lake, paths: list[str], column: str | None
) -> tuple[int, Decimal | float | None]:
    rows, total = 0, None
    for path in paths:
        if not lake.fs.get_file_info(path).is_file:
            continue
        with lake.fs.open_input_file(path) as stream:
            parquet = pq.ParquetFile(stream)
            rows += parquet.metadata.num_rows
            if column:
                values = parquet.read(columns=[column]).column(column)
                total = _plus(total, pc.sum(values).as_py())
    return rows, total


def _plus(
    a: Decimal | float | None, b: Decimal | float | None
) -> Decimal | float | None:
    if a is None:
        return b
    return a if b is None else a + b  # type: ignore[operator]


def _minus(
    a: Decimal | float | None, b: Decimal | float | None
) -> Decimal | float | None:
    if b is None:
        return a
    return -b if a is None else a - b  # type: ignore[operator]


def _same_sum(
    table: TableConfig, source: Decimal | float | None, raw: Decimal | float | None
) -> bool:
    if source is None or raw is None:  # no rows, or only nulls, on a side
        return (source or 0) == (raw or 0)
    if _non_finite(source) or _non_finite(raw):
        # A SQL SUM (tables compared by their source's total) holding a NaN or
        # an infinity on both sides: NaN agrees with NaN, an infinity with the
        # same infinity (the finite values behind them cannot be compared).
        a, b = float(source), float(raw)
        return (math.isnan(a) and math.isnan(b)) or a == b
    assert table.reconcile_sum is not None
    inexact = isinstance(source, float) or isinstance(raw, float)
    if inexact or table.column(table.reconcile_sum).type == ColumnType.DOUBLE:
        # Doubles, or a source that sums decimals as doubles (SQLite).
        scale = max(abs(float(source)), abs(float(raw)), 1.0)
        return abs(float(source) - float(raw)) <= FLOAT_TOLERANCE * scale
    return Decimal(str(source)) == Decimal(str(raw))


def _non_finite(value: Decimal | float) -> bool:
    if isinstance(value, Decimal):
        return not value.is_finite()
    return not math.isfinite(value)


def _text(value: Decimal | float | None, odd: NonFinite | None = None) -> str | None:
    extra = odd.describe() if odd is not None else ""
    if value is None:
        return extra.removeprefix(" + ") or None
    return f"{value}{extra}"


__all__ = ["ReconcileResult", "mismatch_error", "reconcile"]
