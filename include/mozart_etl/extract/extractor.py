"""Stream a source table into immutable Parquet files plus a manifest.

Rows leave the database in batches (server-side cursors where the driver has
them) and go straight to a Parquet writer, so memory stays flat as tables grow.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from mozart_etl.calendar import ProductionDay
from mozart_etl.config.constants import LoadMode
from mozart_etl.config.models import TableConfig, TenantConfig
from mozart_etl.errors import SourceError
from mozart_etl.extract.connectors import Connector
from mozart_etl.extract.query import Window, build_select
from mozart_etl.extract.types import arrow_schema, to_arrow_column
from mozart_etl.lake import ExtractedFile, ExtractManifest, Lake

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
    the day's end, so the raw table starts complete.
    """
    if table.mode == LoadMode.FULL_REFRESH:
        return None
    return Window(start=None if initial else day.start, end=day.end)


def extract_table(
    tenant: TenantConfig,
    table: TableConfig,
    day: ProductionDay,
    connector: Connector,
    *,
    initial: bool = False,
    extract_id: str | None = None,
    batch_rows: int = BATCH_ROWS,
) -> ExtractManifest:
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
    files = _stream_to_parquet(
        tenant, table, connector, select, lake, folder, batch_rows
    )
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
        started_at=started,
        finished_at=datetime.now(UTC),
    )
    lake.write_manifest(manifest)
    log.info(
        "extracted %s.%s: %d rows in %d file(s), %.2f s",
        tenant.tenant_id,
        table.name,
        manifest.rows,
        len(files),
        (manifest.finished_at - started).total_seconds(),
    )
    return manifest


def _stream_to_parquet(
    tenant: TenantConfig,
    table: TableConfig,
    connector: Connector,
    select: sa.Select,
    lake: Lake,
    folder: str,
    batch_rows: int,
) -> list[ExtractedFile]:
    schema = arrow_schema(table)
    writer = _RollingParquetWriter(lake, folder, schema)
    engine = connector.engine()
    try:
        with engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=batch_rows)
            for rows in result.execute(select).partitions(batch_rows):
                writer.write(_to_batch(tenant, table, schema, rows))
    except sa.exc.SQLAlchemyError as exc:
        writer.abort()
        # The driver's exception is not chained: a traceback could echo connection
        # settings; its message is kept above, scrubbed of the password.
        raise SourceError(
            f"reading {connector.describe()} failed: {_scrub(exc, connector)}",
            tenant=tenant.tenant_id,
            table=table.name,
        ) from None
    finally:
        engine.dispose()
    return writer.close()


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


class _RollingParquetWriter:
    """Writes zstd Parquet, one row group per batch, a new file every N rows."""

    def __init__(self, lake: Lake, folder: str, schema: pa.Schema) -> None:
        self.lake, self.folder, self.schema = lake, folder, schema
        self.files: list[ExtractedFile] = []
        self._writer: pq.ParquetWriter | None = None
        self._path = ""
        self._rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        if self._writer is None or self._rows >= ROWS_PER_FILE:
            self._finish_file()
            self._path = f"{self.folder}/part-{len(self.files):05d}.parquet"
            self._writer = pq.ParquetWriter(
                self._path, self.schema, filesystem=self.lake.fs, compression="zstd"
            )
        self._writer.write_batch(batch)
        self._rows += batch.num_rows

    def close(self) -> list[ExtractedFile]:
        if self._writer is None and not self.files:
            # An empty window still yields one file with the declared schema.
            self._path = f"{self.folder}/part-00000.parquet"
            self._writer = pq.ParquetWriter(
                self._path, self.schema, filesystem=self.lake.fs, compression="zstd"
            )
        self._finish_file()
        return self.files

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _finish_file(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        size = self.lake.fs.get_file_info(self._path).size or 0
        self.files.append(ExtractedFile(path=self._path, rows=self._rows, bytes=size))
        self._writer, self._rows = None, 0


def _describe_window(window: Window | None) -> str:
    if window is None:
        return "full table"
    start = window.start.isoformat() if window.start else "-inf"
    return f"[{start}, {window.end.isoformat()})"


def _scrub(exc: Exception, connector: Connector) -> str:
    """The driver's message without the password, should a driver echo it."""
    message = str(getattr(exc, "orig", None) or exc).strip()
    password = connector.credentials.password
    if password is not None and password.get_secret_value():
        message = message.replace(password.get_secret_value(), "***")
    return message
