"""Load accepted rows into `<tid>_raw.<table>`: every write is one atomic snapshot.

A failed load leaves the previous snapshot current (Iceberg commits are
atomic), and a rerun of the same production day gives the same table:
full refresh replaces the table, incremental replaces the day's cursor window,
merge upserts by primary key.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, date, datetime

import pyarrow as pa
from pydantic import BaseModel, ConfigDict
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.expressions import And, BooleanExpression, GreaterThanOrEqual, LessThan
from pyiceberg.table import Table
from pyiceberg.table.upsert_util import create_match_filter
from pyiceberg.transforms import DayTransform

from mozart_etl.calendar import cursor_bound
from mozart_etl.config.constants import ColumnType, LoadMode
from mozart_etl.config.models import TableConfig, TenantConfig
from mozart_etl.lake import ExtractManifest

log = logging.getLogger(__name__)

AUDIT_COLUMNS = ("_mozart_run_id", "_mozart_loaded_at", "_mozart_partition")


class LoadResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    tenant_id: str
    table: str
    identifier: str
    mode: LoadMode
    production_day: date
    rows_loaded: int
    rows_in_table: int
    snapshot_id: int | None
    seconds: float


def raw_table_exists(
    catalog: Catalog, tenant: TenantConfig, table: TableConfig
) -> bool:
    return catalog.table_exists((tenant.raw_namespace, table.name))


def load_partition(
    catalog: Catalog,
    tenant: TenantConfig,
    table: TableConfig,
    manifest: ExtractManifest,
    rows: pa.Table,
    *,
    run_id: str,
) -> LoadResult:
    started = time.perf_counter()
    data = with_audit_columns(rows, run_id=run_id, partition=manifest.production_day)
    iceberg_table = _ensure_table(catalog, tenant, table, data.schema)
    if table.mode == LoadMode.FULL_REFRESH:
        iceberg_table.overwrite(data)
    elif table.mode == LoadMode.INCREMENTAL:
        iceberg_table.overwrite(data, overwrite_filter=_window_filter(table, manifest))
    else:
        _merge(iceberg_table, data, list(table.primary_key))
    iceberg_table = iceberg_table.refresh()
    snapshot = iceberg_table.current_snapshot()
    result = LoadResult(
        tenant_id=tenant.tenant_id,
        table=table.name,
        identifier=f"{tenant.raw_namespace}.{table.name}",
        mode=table.mode,
        production_day=manifest.production_day,
        rows_loaded=data.num_rows,
        rows_in_table=_row_count(iceberg_table),
        snapshot_id=snapshot.snapshot_id if snapshot else None,
        seconds=round(time.perf_counter() - started, 3),
    )
    log.info(
        "loaded %s (%s): %d rows, table now %d rows, snapshot %s, %.2f s",
        result.identifier,
        result.mode,
        result.rows_loaded,
        result.rows_in_table,
        result.snapshot_id,
        result.seconds,
    )
    return result


def with_audit_columns(rows: pa.Table, *, run_id: str, partition: date) -> pa.Table:
    count = rows.num_rows
    loaded_at = datetime.now(UTC)
    return (
        rows.append_column("_mozart_run_id", pa.array([run_id] * count, pa.string()))
        .append_column(
            "_mozart_loaded_at",
            pa.array([loaded_at] * count, pa.timestamp("us", tz="UTC")),
        )
        .append_column(
            "_mozart_partition", pa.array([partition.isoformat()] * count, pa.string())
        )
    )


def _ensure_table(
    catalog: Catalog, tenant: TenantConfig, table: TableConfig, schema: pa.Schema
) -> Table:
    identifier = (tenant.raw_namespace, table.name)
    catalog.create_namespace_if_not_exists(tenant.raw_namespace)
    try:
        iceberg_table = catalog.load_table(identifier)
    except NoSuchTableError:
        log.info("creating raw table %s.%s", *identifier)
        iceberg_table = catalog.create_table_if_not_exists(identifier, schema=schema)
        if table.cursor is not None and table.mode != LoadMode.FULL_REFRESH:
            with iceberg_table.update_spec() as spec:
                spec.add_field(table.cursor, DayTransform(), f"{table.cursor}_day")
        return iceberg_table.refresh()
    missing = [name for name in schema.names if name not in _field_names(iceberg_table)]
    if missing:
        log.info("evolving %s.%s: adding column(s) %s", *identifier, missing)
        with iceberg_table.update_schema() as update:
            update.union_by_name(schema)
        iceberg_table = iceberg_table.refresh()
    return iceberg_table


def _field_names(iceberg_table: Table) -> set[str]:
    return {field.name for field in iceberg_table.schema().fields}


def _merge(iceberg_table: Table, data: pa.Table, keys: list[str]) -> None:
    """Upsert by primary key in one commit: drop the rows whose key is in `data`,
    then append `data` (every row of it differs: the audit columns change).

    Not `Table.upsert`: it reads the matched rows with the schema of the branch's
    last snapshot, so it fails right after a column was added
    (apache/iceberg-python#2467), and compares them row by row in Python.
    """
    with iceberg_table.transaction() as tx:
        if data.num_rows:
            tx.delete(create_match_filter(data, keys))
        tx.append(data)


def _window_filter(table: TableConfig, manifest: ExtractManifest) -> BooleanExpression:
    """Exactly the rows this extract re-read: the rest of the table stays."""
    assert table.cursor is not None and manifest.window_end is not None
    kind = table.column(table.cursor).type
    end = LessThan(table.cursor, _cursor_bound(manifest.window_end, kind))
    if manifest.window_start is None:
        return end
    start = _cursor_bound(manifest.window_start, kind)
    return And(GreaterThanOrEqual(table.cursor, start), end)


def _cursor_bound(instant: datetime, kind: ColumnType) -> str:
    return cursor_bound(instant, kind).isoformat()


def _row_count(iceberg_table: Table) -> int:
    snapshot = iceberg_table.current_snapshot()
    if snapshot is None or snapshot.summary is None:
        return 0
    return int(snapshot.summary.get("total-records", 0))


__all__ = ["AUDIT_COLUMNS", "LoadResult", "load_partition", "raw_table_exists"]
