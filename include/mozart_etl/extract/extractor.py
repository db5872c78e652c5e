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
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from mozart_etl.config.models import KEY_SCAN, TableConfig, TenantConfig
from mozart_etl.core.calendar import ProductionDay
from mozart_etl.core.errors import (
    LakeWriteError,
    SourceError,
    SourceValueRejected,
    SourceValueTooLarge,
)
from mozart_etl.core.lake import ExtractedFile, ExtractManifest, Lake
from mozart_etl.core.parquet import RollingParquetWriter
from mozart_etl.core.progress import Progress, human_bytes
from mozart_etl.extract.connectors import Connector, DriverNotInstalled
from mozart_etl.extract.connectors.base import (
    MAX_VALUE_SETTING,
    ColumnConversionError,
    ValueTooLargeError,
    max_value_bytes,
)
from mozart_etl.extract.introspect import (
    SourceSchemaError,
    check_declared,
    table_columns,
)
from mozart_etl.extract.query import Window, tenant_select
from mozart_etl.extract.snapshot import split_runs
from mozart_etl.extract.source_errors import source_error
from mozart_etl.extract.types import arrow_schema, to_arrow_column

log = logging.getLogger(__name__)

BATCH_ROWS = 50_000
BATCH_BYTES = 64 << 20
"""What one batch of the generic path holds at most (about): rows of large
values come fewer at a time."""
ROWS_PER_FILE = 1_000_000


def new_extract_id(now: datetime | None = None) -> str:
    """Sortable by time, unique across concurrent attempts."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}"


def extract_table(
    tenant: TenantConfig,
    table: TableConfig,
    day: ProductionDay,
    connector: Connector,
    *,
    window: Window | None,
    captured_at: datetime | None = None,
    extract_id: str | None = None,
    batch_rows: int = BATCH_ROWS,
    rows_per_file: int = ROWS_PER_FILE,
    fast_path: bool = True,
) -> ExtractManifest:
    """Extract one table's `window` (None: the whole table) into a new immutable
    folder; the manifest, written last, is what makes it visible
    (`lake.latest_manifest`). `captured_at` is the instant the read stands for
    (default: now); a `key_scan` table also records every source key then."""
    lake = Lake(tenant)
    extract_id = extract_id or new_extract_id()
    folder = lake.extract_folder(table.name, day.day, extract_id)
    select = tenant_select(tenant, table, connector, window=window)
    started = datetime.now(UTC)
    captured_at = captured_at or started
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
    key_files = (
        _scan_keys(tenant, table, connector, folder, batch_rows, fast_path)
        if table.deletes == KEY_SCAN
        else []
    )
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
        captured_at=captured_at,
        key_files=key_files,
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


def _scan_keys(
    tenant: TenantConfig,
    table: TableConfig,
    connector: Connector,
    folder: str,
    batch_rows: int,
    fast_path: bool,
) -> list[ExtractedFile]:
    """Every key the source holds now (key columns only, the whole table), into
    `<folder>/keys/`: the load closes raw's live rows whose key is missing.

    Read after the rows, so a row inserted in between is a key without a
    version yet (harmless: nothing is closed for it), never a closed live row."""
    keys = key_table(table)
    select = tenant_select(
        tenant, table, connector, window=None, only=keys.column_names
    )
    lake = Lake(tenant)
    target = f"{folder}/keys"
    lake.make_dirs(target)
    writer = RollingParquetWriter(lake, target, arrow_schema(keys), ROWS_PER_FILE)
    _stream_to_parquet(
        tenant,
        table,
        connector,
        select,
        writer,
        batch_rows,
        fast_path=fast_path,
        read_as=keys,
    )
    log.info(
        "key scan %s.%s: %d key(s)",
        tenant.tenant_id,
        table.name,
        sum(f.rows for f in writer.files),
    )
    return writer.files


def narrowed(table: TableConfig, names: list[str]) -> TableConfig:
    """The table as a SELECT of only `names` reads it (a key scan, a reconcile)."""
    columns = [table.column(name) for name in dict.fromkeys(names)]
    return table.model_copy(update={"columns": columns, "rules": []})


def key_table(table: TableConfig) -> TableConfig:
    """The table narrowed to its primary key columns (what a key scan reads)."""
    return narrowed(table, list(table.primary_key))


class _BatchSink(Protocol):
    """Where `_stream_to_parquet` writes: a RollingParquetWriter into the lake,
    or a _Collector in memory (no lake)."""

    @property
    def lake(self) -> Lake | None: ...
    @property
    def folder(self) -> str: ...
    @property
    def schema(self) -> pa.Schema: ...
    def write(self, batch: pa.RecordBatch) -> None: ...
    def close(self) -> object: ...
    def abort(self) -> None: ...


class _Collector:
    """A writer that keeps the batches in memory (small reads: keys, figures)."""

    def __init__(self, schema: pa.Schema) -> None:
        self.schema = schema
        self.batches: list[pa.RecordBatch] = []
        self.lake: Lake | None = None
        self.folder = ""

    def write(self, batch: pa.RecordBatch) -> None:
        self.batches.append(batch)

    def close(self) -> None:
        return None

    def abort(self) -> None:
        self.batches.clear()


def read_source(
    tenant: TenantConfig,
    table: TableConfig,
    connector: Connector,
    *,
    names: list[str],
    window: Window | None,
) -> pa.Table:
    """Columns `names` of the table's rows in `window`, typed as an extract
    types them (so they compare with raw's values), held in memory."""
    shape = narrowed(table, names)
    select = tenant_select(
        tenant, table, connector, window=window, only=shape.column_names
    )
    collector = _Collector(arrow_schema(shape))
    _stream_to_parquet(
        tenant,
        table,
        connector,
        select,
        collector,
        BATCH_ROWS,
        fast_path=True,
        read_as=shape,
    )
    return pa.Table.from_batches(collector.batches, schema=collector.schema)


def _stream_to_parquet(
    tenant: TenantConfig,
    table: TableConfig,
    connector: Connector,
    select: sa.Select[*tuple[Any, ...]],
    writer: _BatchSink,
    batch_rows: int,
    *,
    fast_path: bool,
    read_as: TableConfig | None = None,
) -> dict[str, str] | None:
    """Write every row; returns the source's columns (introspected first).
    `read_as` is the table as the SELECT reads it (its key columns alone for a
    key scan)."""
    shape = read_as or table
    try:
        engine = connector.engine()
    except DriverNotInstalled as exc:
        raise DriverNotInstalled(
            exc.message, tenant=tenant.tenant_id, table=table.name
        ) from exc.__cause__
    errors: tuple[type[Exception], ...] = (
        sa.exc.SQLAlchemyError,
        *connector.driver_errors(),
    )
    try:
        with engine.connect() as conn:
            source_columns = _introspect(tenant, table, connector, conn)
            batches = (
                connector.fast_batches(conn, select, writer.schema)
                if fast_path
                else None
            )
            if batches is None:
                batches = _generic_batches(tenant, shape, conn, select, batch_rows)
            progress = Progress(f"extract {tenant.tenant_id}.{table.name}", log)
            for batch in _named(tenant, shape, batches):
                writer.write(batch)
                progress.add(batch.num_rows, batch.nbytes)
        writer.close()
    except errors as exc:
        writer.abort()
        # The driver's exception is not chained: a traceback could echo connection
        # settings; its message is kept, scrubbed of the password. Terminal or
        # retryable by its error code (source_errors.py).
        raise source_error(
            exc, connector, doing="reading", tenant=tenant.tenant_id, table=table.name
        ) from None
    except OSError as exc:  # the lake's filesystem: a full disk, permissions
        writer.abort()
        if writer.lake is not None:  # give a full disk its space back
            _discard(writer.lake, writer.folder)
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
    select: sa.Select[*tuple[Any, ...]],
    batch_rows: int,
) -> Iterator[pa.RecordBatch]:
    """Rows through SQLAlchemy (server-side cursor), converted per column.

    The batch's row count follows the rows' size: one row first, then as many
    as fit BATCH_BYTES at the size seen so far (at most `batch_rows`), so a
    table of large values holds about BATCH_BYTES plus its largest value, not
    `batch_rows` of them. `max_row_buffer=1`: SQLAlchemy's buffer fetches
    exactly what `fetchmany` asks (it would read ahead up to 1 000 rows)."""
    schema = arrow_schema(table)
    result = conn.execution_options(stream_results=True, max_row_buffer=1).execute(
        select
    )
    size = 1
    while rows := result.fetchmany(size):
        batch = _to_batch(tenant, table, schema, rows)
        yield batch
        size = _rows_per_batch(batch, batch_rows)


def _rows_per_batch(batch: pa.RecordBatch, ceiling: int) -> int:
    """Rows of the batch's average size that fit BATCH_BYTES, within 1..ceiling."""
    per_row = max(1.0, batch.nbytes / max(1, batch.num_rows))
    return max(1, min(ceiling, int(BATCH_BYTES / per_row)))


def _named(
    tenant: TenantConfig, table: TableConfig, batches: Iterator[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    """A fast path's conversion error, as a SourceError naming the column; a
    value over a size limit, as SourceValueTooLarge naming the limit."""
    try:
        yield from batches
    except ValueTooLargeError as exc:
        raise _too_large(tenant, table, exc) from None
    except ColumnConversionError as exc:
        if not exc.type_error:
            raise SourceError(
                f"the source's rows did not parse: {exc}",
                tenant=tenant.tenant_id,
                table=table.name,
                column=exc.column,
            ) from exc
        declared = arrow_schema(table).field(exc.column).type if exc.column else ""
        raise SourceValueRejected(
            f"value does not fit the declared type {declared}: {exc}",
            tenant=tenant.tenant_id,
            table=table.name,
            column=exc.column,
        ) from exc


def _too_large(
    tenant: TenantConfig, table: TableConfig, exc: ValueTooLargeError
) -> SourceValueTooLarge:
    return SourceValueTooLarge(
        f"{exc}; raise {MAX_VALUE_SETTING} (bytes) to extract it"
        if exc.what.endswith(f"({MAX_VALUE_SETTING})")
        else str(exc),
        tenant=tenant.tenant_id,
        table=table.name,
        column=exc.column,
    )


def _to_batch(
    tenant: TenantConfig, table: TableConfig, schema: pa.Schema, rows: Sequence[Any]
) -> pa.RecordBatch:
    columns = list(zip(*rows, strict=True))
    arrays = []
    limit = max_value_bytes()
    for index, field in enumerate(schema):
        try:
            arrays.append(to_arrow_column(columns[index], field.type))
            _check_sizes(field, arrays[-1], limit)
        except ValueTooLargeError as exc:
            raise _too_large(tenant, table, exc) from None
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
            raise SourceValueRejected(
                f"value does not fit the declared type {field.type}: {exc}",
                tenant=tenant.tenant_id,
                table=table.name,
                column=field.name,
            ) from exc
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _check_sizes(field: pa.Field, array: pa.Array, limit: int) -> None:
    """The generic path's values arrive whole from the driver (its own limits,
    e.g. MariaDB's max_allowed_packet, apply first); one over the extract's
    maximum is refused here, as on the COPY path. Only text can be that large,
    and only a batch whose text buffer exceeds the limit is looked into."""
    if not pa.types.is_string(field.type) or array.buffers()[2] is None:
        return
    if array.buffers()[2].size <= limit:
        return
    largest = pc.max(pc.binary_length(array)).as_py() or 0
    if largest > limit:
        raise ValueTooLargeError(
            field.name, largest, limit, f"the extract's maximum ({MAX_VALUE_SETTING})"
        )


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
    end = window.end.isoformat() if window.end else "now"
    return f"[{start}, {end})"
