"""Stream a source table into immutable Parquet files plus a manifest.

Rows leave the database in batches — Arrow batches straight from a COPY on
PostgreSQL (connectors/pg_copy.py), server-side cursors elsewhere — and go to a
Parquet writer on its own thread, gathered into large row groups, so memory
stays flat as tables grow. The source's catalog is read first: a declared
column that is missing or cannot be extracted exactly fails before any row.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import sqlalchemy as sa

from mozart_etl.calendar import ProductionDay
from mozart_etl.config.constants import LoadMode
from mozart_etl.config.models import TableConfig, TenantConfig
from mozart_etl.errors import LakeWriteError, SourceError
from mozart_etl.extract.connectors import Connector, DriverNotInstalled
from mozart_etl.extract.connectors.base import ColumnConversionError
from mozart_etl.extract.introspect import (
    SourceSchemaError,
    check_declared,
    table_columns,
)
from mozart_etl.extract.query import Window, build_select
from mozart_etl.extract.snapshot import split_runs
from mozart_etl.extract.types import arrow_schema, to_arrow_column
from mozart_etl.lake import ExtractManifest, Lake
from mozart_etl.parquet import RollingParquetWriter
from mozart_etl.progress import Progress, human_bytes

log = logging.getLogger(__name__)

BATCH_ROWS = 50_000
ROWS_PER_FILE = 1_000_000


def new_extract_id(now: datetime | None = None) -> str:
    """Sortable by time, unique across concurrent attempts."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}"


def extract_window(
    table: TableConfig, day: ProductionDay, *, initial: bool
) -> Window | None:
    """Full-refresh tables read everything; others read the production day.

    The first load of an incremental table (`initial`) reads all history before
    the day's end, so the raw table starts complete. `lookback_hours` widens the
    start to re-read late rows; the manifest records the widened window, and the
    load replaces exactly that window.
    """
    if table.mode == LoadMode.FULL_REFRESH or table.cursor is None:
        return None  # a snapshot table without a cursor reads every run
    if initial:
        return Window(start=None, end=day.end)
    start = day.start - timedelta(hours=table.lookback_hours)
    return Window(start=start, end=day.end)


def extract_table(
    tenant: TenantConfig,
    table: TableConfig,
    day: ProductionDay,
    connector: Connector,
    *,
    initial: bool = False,
    extract_id: str | None = None,
    batch_rows: int = BATCH_ROWS,
    rows_per_file: int = ROWS_PER_FILE,
    fast_path: bool = True,
) -> ExtractManifest:
    """Extract one table's window into a new immutable folder; the manifest,
    written last, is what makes it visible (`lake.latest_manifest`)."""
    lake = Lake(tenant)
    extract_id = extract_id or new_extract_id()
    folder = lake.extract_folder(table.name, day.day, extract_id)
    window = extract_window(table, day, initial=initial)
    select = build_select(table, connector, window=window, params=tenant.params)
    started = datetime.now(UTC)
    log.info(
        "extract %s.%s from %s, window %s, into %s",
        tenant.tenant_id,
        table.name,
        connector.describe(),
        _describe_window(window),
        lake.uri(folder),
    )
    lake.make_dirs(folder)
    writer = RollingParquetWriter(lake, folder, arrow_schema(table), rows_per_file)
    source_columns = _stream_to_parquet(
        tenant, table, connector, select, writer, batch_rows, fast_path=fast_path
    )
    files = writer.files
    if table.snapshot_key is not None:
        files = split_runs(lake, table, files, extract_id, rows_per_file)
    manifest = ExtractManifest(
        tenant_id=tenant.tenant_id,
        table=table.name,
        production_day=day.day,
        extract_id=extract_id,
        folder=folder,
        window_start=window.start if window else None,
        window_end=window.end if window else None,
        rows=sum(f.rows for f in files),
        files=files,
        columns={c.name: str(c.type) for c in table.columns},
        source_columns=source_columns,
        started_at=started,
        finished_at=datetime.now(UTC),
    )
    try:
        lake.write_manifest(manifest)
    except OSError as exc:
        raise _lake_error(tenant, table, folder, exc) from exc
    seconds = (manifest.finished_at - started).total_seconds()
    log.info(
        "extracted %s.%s: %d rows in %d file(s) (%s Parquet), %.2f s, %.0f rows/s",
        tenant.tenant_id,
        table.name,
        manifest.rows,
        len(files),
        human_bytes(sum(f.bytes for f in files)),
        seconds,
        manifest.rows / max(seconds, 1e-9),
    )
    return manifest


def _stream_to_parquet(
    tenant: TenantConfig,
    table: TableConfig,
    connector: Connector,
    select: sa.Select,
    writer: RollingParquetWriter,
    batch_rows: int,
    *,
    fast_path: bool,
) -> dict[str, str] | None:
    """Write every row; returns the source's columns (introspected first)."""
    try:
        engine = connector.engine()
    except DriverNotInstalled as exc:
        raise DriverNotInstalled(
            exc.message, tenant=tenant.tenant_id, table=table.name
        ) from exc.__cause__
    try:
        with engine.connect() as conn:
            source_columns = _introspect(tenant, table, connector, conn)
            batches = (
                connector.fast_batches(conn, select, writer.schema)
                if fast_path
                else None
            )
            if batches is None:
                batches = _generic_batches(tenant, table, conn, select, batch_rows)
            progress = Progress(f"extract {tenant.tenant_id}.{table.name}", log)
            for batch in _named(tenant, table, batches):
                writer.write(batch)
                progress.add(batch.num_rows, batch.nbytes)
        writer.close()
    except (sa.exc.SQLAlchemyError, *connector.driver_errors()) as exc:
        writer.abort()
        # The driver's exception is not chained: a traceback could echo connection
        # settings; its message is kept above, scrubbed of the password.
        raise SourceError(
            f"reading {connector.describe()} failed: {_scrub(exc, connector)}",
            tenant=tenant.tenant_id,
            table=table.name,
        ) from None
    except OSError as exc:  # the lake's filesystem: a full disk, permissions
        writer.abort()
        _discard(writer.lake, writer.folder)  # give a full disk its space back
        raise _lake_error(tenant, table, writer.folder, exc) from exc
    except BaseException:
        writer.abort()
        raise
    finally:
        engine.dispose()
    return source_columns


def _introspect(
    tenant: TenantConfig, table: TableConfig, connector: Connector, conn: sa.Connection
) -> dict[str, str] | None:
    try:
        source_columns = table_columns(conn, table, connector)
    except sa.exc.NoSuchTableError:
        raise SourceSchemaError(
            f"source table {table.source.table!r} does not exist in "
            f"{connector.describe()}",
            tenant=tenant.tenant_id,
            table=table.name,
        ) from None
    if source_columns is not None:
        check_declared(tenant.tenant_id, table, source_columns, connector)
    return source_columns


def _generic_batches(
    tenant: TenantConfig,
    table: TableConfig,
    conn: sa.Connection,
    select: sa.Select,
    batch_rows: int,
) -> Iterator[pa.RecordBatch]:
    """Rows through SQLAlchemy (server-side cursor), converted per column."""
    schema = arrow_schema(table)
    result = conn.execution_options(stream_results=True, yield_per=batch_rows)
    for rows in result.execute(select).partitions(batch_rows):
        yield _to_batch(tenant, table, schema, rows)


def _named(
    tenant: TenantConfig, table: TableConfig, batches: Iterator[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    """A fast path's conversion error, as a SourceError naming the column."""
    try:
        yield from batches
    except ColumnConversionError as exc:
        declared = arrow_schema(table).field(exc.column).type if exc.column else ""
        raise SourceError(
            f"value does not fit the declared type {declared}: {exc}",
            tenant=tenant.tenant_id,
            table=table.name,
            column=exc.column,
        ) from exc


def _to_batch(
    tenant: TenantConfig, table: TableConfig, schema: pa.Schema, rows: list
) -> pa.RecordBatch:
    columns = list(zip(*rows, strict=True))
    arrays = []
    for index, field in enumerate(schema):
        try:
            arrays.append(to_arrow_column(columns[index], field.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
            raise SourceError(
                f"value does not fit the declared type {field.type}: {exc}",
                tenant=tenant.tenant_id,
                table=table.name,
                column=field.name,
            ) from exc
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _discard(lake: Lake, folder: str) -> None:
    """Remove a failed attempt's folder (no manifest: nobody reads it anyway)."""
    try:
        lake.fs.delete_dir(folder)
    except OSError:
        log.warning("could not remove the failed attempt's folder %s", folder)


def _lake_error(
    tenant: TenantConfig, table: TableConfig, folder: str, exc: OSError
) -> LakeWriteError:
    return LakeWriteError(
        f"writing the lake at {Lake(tenant).uri(folder)} failed: {exc}; the "
        "attempt wrote no manifest, the previous extract stays current",
        tenant=tenant.tenant_id,
        table=table.name,
    )


def _describe_window(window: Window | None) -> str:
    if window is None:
        return "full table"
    start = window.start.isoformat() if window.start else "-inf"
    return f"[{start}, {window.end.isoformat()})"


def _scrub(exc: Exception, connector: Connector) -> str:
    """The driver's message without the password, should a driver echo it."""
    return connector.credentials.scrub(str(getattr(exc, "orig", None) or exc).strip())
