"""Reconcile a load: the source's count (and a declared sum) over the window
against what raw holds for it, quarantined rows included.

Run after the load, it catches what no single stage sees: rows that reached
the source after the extract read the window (late commits), a load that
replaced the wrong window, a source read that silently stopped short. Raw
rows of the window + quarantined rows must equal the source's; a table with a
Python transform (which may change the row count) compares the source with
the extract instead.
"""

from __future__ import annotations

import logging
from decimal import Decimal

import pyarrow.compute as pc
import pyarrow.parquet as pq
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import AlwaysFalse, AlwaysTrue, BooleanExpression, In

from mozart_etl.config.constants import ColumnType
from mozart_etl.config.models import TableConfig, TenantConfig
from mozart_etl.errors import ReconcileMismatch, SourceError
from mozart_etl.extract.connectors import Connector
from mozart_etl.extract.query import Window, build_select
from mozart_etl.lake import ExtractManifest, Lake
from mozart_etl.load.iceberg import window_filter

log = logging.getLogger(__name__)

FLOAT_TOLERANCE = 1e-9
"""Relative tolerance of a double column's sum (databases add in any order)."""


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
    """Compare both sides; raise ReconcileMismatch naming both figures."""
    window = _window(manifest)
    source_rows, source_sum = _source_figures(tenant, table, connector, window)
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
    log.info(
        "reconcile %s.%s: %s — %s",
        tenant.tenant_id,
        table.name,
        result.describe(),
        "match" if result.matched else "MISMATCH",
    )
    return result


def mismatch_error(
    result: ReconcileResult, manifest: ExtractManifest
) -> ReconcileMismatch:
    start = manifest.window_start.isoformat() if manifest.window_start else "-inf"
    end = manifest.window_end.isoformat() if manifest.window_end else "+inf"
    return ReconcileMismatch(
        f"reconciliation of window [{start}, {end}) failed: {result.describe()}. "
        "Rows changed in the source after the extract (late commits) or the load "
        "missed some: rerun the production day",
        tenant=result.tenant_id,
        table=result.table,
    )


def _window(manifest: ExtractManifest) -> Window | None:
    if manifest.window_end is None:
        return None
    return Window(start=manifest.window_start, end=manifest.window_end)


def _source_figures(
    tenant: TenantConfig,
    table: TableConfig,
    connector: Connector,
    window: Window | None,
) -> tuple[int, Decimal | float | None]:
    """COUNT(*) and SUM(column) of exactly what the extract's SELECT reads."""
    select = build_select(table, connector, window=window, params=tenant.params)
    rows = select.subquery("mozart_window")
    total = sa.func.sum(rows.c[table.reconcile_sum]) if table.reconcile_sum else None
    query = sa.select(
        sa.func.count(), total if total is not None else sa.null()
    ).select_from(rows)
    engine = connector.engine()
    try:
        with engine.connect() as conn:
            count, value = conn.execute(query).one()
    except sa.exc.SQLAlchemyError as exc:
        raise SourceError(
            f"counting {connector.describe()} failed: "
            f"{connector.credentials.scrub(str(getattr(exc, 'orig', None) or exc))}",
            tenant=tenant.tenant_id,
            table=table.name,
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
        row_filter = In(run_key, runs) if runs else AlwaysFalse()
    elif table.cursor is not None and manifest.window_end is not None:
        row_filter = window_filter(table, manifest)
    column = table.reconcile_sum or table.primary_key[0]
    raw = catalog.load_table((tenant.raw_namespace, table.name))
    data = raw.scan(row_filter=row_filter, selected_fields=(column,)).to_arrow()
    total = pc.sum(data.column(column)).as_py() if table.reconcile_sum else None
    return data.num_rows, total


def _distinct(lake: Lake, paths: list[str], column: str) -> list[object]:
    values: set[object] = set()
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
    assert table.reconcile_sum is not None
    inexact = isinstance(source, float) or isinstance(raw, float)
    if inexact or table.column(table.reconcile_sum).type == ColumnType.DOUBLE:
        # Doubles, or a source that sums decimals as doubles (SQLite).
        scale = max(abs(float(source)), abs(float(raw)), 1.0)
        return abs(float(source) - float(raw)) <= FLOAT_TOLERANCE * scale
    return Decimal(str(source)) == Decimal(str(raw))


def _text(value: Decimal | float | None) -> str | None:
    return None if value is None else str(value)


__all__ = ["ReconcileResult", "mismatch_error", "reconcile"]
