"""Run a table's transform over the accepted rows, batch by batch, into the lake.

Layout (a rerun of the same run deletes its folder first, then rewrites it;
the manifest is written last, so a folder without one is never read)::

    <lake_root>/<prefix>/transform/<table>/day=<D>/run=<run_id>/
        part-00000.parquet …     the function's output, checked against its schema
        _manifest.json           TransformManifest
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
from pydantic import BaseModel, ConfigDict

from mozart_etl.config.models import TableConfig, TenantConfig
from mozart_etl.core.errors import TransformFailed
from mozart_etl.core.lake import MANIFEST, ExtractedFile, Lake
from mozart_etl.core.parquet import ParquetRows, RollingParquetWriter
from mozart_etl.extract.types import arrow_schema
from mozart_etl.transform import SCHEMA_ATTRIBUTE
from mozart_etl.transform.importer import load_function
from mozart_etl.transform.reference import TransformRef
from mozart_etl.validate.validator import ValidationReport, accepted_rows

log = logging.getLogger(__name__)

BATCH_ROWS = 100_000
ROWS_PER_FILE = 1_000_000
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


class TransformManifest(BaseModel):
    """What one transform run wrote; the load reads its files through it."""

    model_config = ConfigDict(frozen=True)

    tenant_id: str
    table: str
    production_day: date
    extract_id: str
    run_id: str
    transform: str
    folder: str
    input_path: str
    rows_in: int
    rows: int
    files: list[ExtractedFile]
    columns: dict[str, str]
    started_at: datetime
    finished_at: datetime


def transform_folder(lake: Lake, table: str, day: date, run_id: str) -> str:
    """The run's own folder (run ids like `manual__2026-…+00:00` made path-safe)."""
    run = _UNSAFE.sub("_", run_id)
    return f"{lake.root}/transform/{table}/day={day.isoformat()}/run={run}"


def run_transform(
    tenant: TenantConfig,
    table: TableConfig,
    folder: Path,
    report: ValidationReport,
    *,
    run_id: str,
    batch_rows: int = BATCH_ROWS,
    rows_per_file: int = ROWS_PER_FILE,
) -> TransformManifest:
    """Stream the accepted rows through the table's function into a fresh folder."""
    ref = TransformRef.of(table)
    function = load_function(folder, tenant, table)
    schema, required = _expected_schema(function, table)
    _check_keys(tenant, table, ref, schema)
    lake = Lake(tenant)
    out = transform_folder(lake, table.name, report.production_day, run_id)
    if lake.fs.get_file_info(out).type == pafs.FileType.Directory:
        lake.fs.delete_dir(out)  # a rerun replaces this run's output
    lake.make_dirs(out)
    started = datetime.now(UTC)
    source = _Counted(accepted_rows(lake, report).to_batches(batch_rows))
    writer = RollingParquetWriter(lake, out, schema, rows_per_file)
    context = _Context(tenant, table, ref, source)
    try:
        for index, batch in enumerate(_call(function, source, context)):
            writer.write(_conform(batch, schema, required, index, context))
        files = writer.close()
    except BaseException:
        writer.abort()
        raise
    manifest = TransformManifest(
        tenant_id=tenant.tenant_id,
        table=table.name,
        production_day=report.production_day,
        extract_id=report.extract_id,
        run_id=run_id,
        transform=str(ref),
        folder=out,
        input_path=report.accepted_path,
        rows_in=source.rows,
        rows=sum(f.rows for f in files),
        files=files,
        columns={field.name: str(field.type) for field in schema},
        started_at=started,
        finished_at=datetime.now(UTC),
    )
    lake.write_json(f"{out}/{MANIFEST}", manifest.model_dump_json(indent=2))
    log.info(
        "transformed %s.%s with %s: %d rows in, %d out, %.2f s, into %s",
        tenant.tenant_id,
        table.name,
        ref,
        manifest.rows_in,
        manifest.rows,
        (manifest.finished_at - started).total_seconds(),
        lake.uri(out),
    )
    return manifest


def output_rows(lake: Lake, manifest: TransformManifest) -> ParquetRows:
    """Every file of a transform run (at least one), unread: what the load
    writes, slice by slice."""
    return ParquetRows(lake.fs, [f.path for f in manifest.files])


def read_output(lake: Lake, manifest: TransformManifest) -> pa.Table:
    return output_rows(lake, manifest).to_table()


def read_manifest(lake: Lake, folder: str) -> TransformManifest:
    """The manifest of a transform run's folder (absent: the run did not finish)."""
    path = f"{folder}/{MANIFEST}"
    if lake.fs.get_file_info(path).type != pafs.FileType.File:
        raise FileNotFoundError(f"no transform manifest {lake.uri(path)}")
    return TransformManifest.model_validate(lake.read_json(path))


class _Counted:
    """The input batches, counting what the function has pulled so far."""

    def __init__(self, batches: Iterator[pa.RecordBatch]) -> None:
        self._batches = batches
        self.index = -1
        self.rows = 0
        self.last_rows = 0

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        for batch in self._batches:
            self.index += 1
            self.last_rows = batch.num_rows
            self.rows += batch.num_rows
            yield batch

    def describe(self) -> str:
        if self.index < 0:
            return "before its first input batch"
        first = self.rows - self.last_rows
        return f"on input batch {self.index} (rows {first}..{self.rows - 1})"


class _Context:
    def __init__(
        self,
        tenant: TenantConfig,
        table: TableConfig,
        ref: TransformRef,
        source: _Counted,
    ) -> None:
        self.tenant, self.table, self.ref, self.source = tenant, table, ref, source

    def error(self, message: str, column: str | None = None) -> TransformFailed:
        return TransformFailed(
            f"transform {self.ref}: {message}",
            tenant=self.tenant.tenant_id,
            table=self.table.name,
            column=column,
        )


def _call(
    function: Callable[..., Any], source: _Counted, context: _Context
) -> Iterator[pa.RecordBatch | pa.Table]:
    """The function's output batches; its exceptions name it and the input batch."""
    try:
        output = function(iter(source))
        if output is None or isinstance(output, pa.RecordBatch | pa.Table):
            raise context.error(
                "must return an iterator of pyarrow.RecordBatch (e.g. `yield` "
                f"each batch), not {type(output).__name__}"
            )
        iterator = iter(output)
    except TransformFailed:
        raise
    except Exception as exc:
        raise _raised(context, exc) from exc
    while True:
        try:
            item = next(iterator)
        except StopIteration:
            return
        except Exception as exc:
            raise _raised(context, exc) from exc
        yield from _batches_of(item, context)


def _raised(context: _Context, exc: Exception) -> TransformFailed:
    return context.error(
        f"raised {context.source.describe()}: {type(exc).__name__}: {exc}"
    )


def _batches_of(item: object, context: _Context) -> Iterable[pa.RecordBatch]:
    if isinstance(item, pa.RecordBatch):
        return [item]
    if isinstance(item, pa.Table):
        return item.to_batches()
    raise context.error(
        f"yielded a {type(item).__name__}; expected pyarrow.RecordBatch "
        f"({context.source.describe()})"
    )


def _expected_schema(
    function: Callable[..., Any], table: TableConfig
) -> tuple[pa.Schema, set[str]]:
    """The declared output schema and its non-null columns."""
    declared = getattr(function, SCHEMA_ATTRIBUTE, None)
    if declared is not None:
        required = {field.name for field in declared if not field.nullable}
        nullable = [field.with_nullable(True) for field in declared]
        return pa.schema(nullable, metadata=declared.metadata), required
    required = {column.name for column in table.columns if not column.nullable}
    return arrow_schema(table), required


def _check_keys(
    tenant: TenantConfig, table: TableConfig, ref: TransformRef, schema: pa.Schema
) -> None:
    """The load needs the primary key (merge) and the cursor (window) columns."""
    needed = [*table.primary_key, *([table.cursor] if table.cursor else [])]
    missing = [name for name in needed if name not in schema.names]
    if missing:
        raise TransformFailed(
            f"transform {ref}: its output schema lacks {missing}, which the load "
            "needs (primary key and cursor)",
            tenant=tenant.tenant_id,
            table=table.name,
        )


def _conform(
    batch: pa.RecordBatch,
    schema: pa.Schema,
    required: set[str],
    index: int,
    context: _Context,
) -> pa.RecordBatch:
    """The batch with the expected columns in order, or an error naming the column."""
    where = f"output batch {index}"
    names = set(batch.schema.names)
    missing = [name for name in schema.names if name not in names]
    extra = [name for name in batch.schema.names if name not in schema.names]
    if missing or extra:
        raise context.error(
            f"{where} has columns {batch.schema.names}: missing {missing}, "
            f"unexpected {extra} (expected {schema.names})"
        )
    for field in schema:
        got = batch.schema.field(field.name).type
        if not got.equals(field.type):
            raise context.error(
                f"{where}: column {field.name!r} is {got}, expected {field.type}",
                column=field.name,
            )
        if field.name in required and batch.column(field.name).null_count:
            raise context.error(
                f"{where}: column {field.name!r} is not nullable but holds "
                f"{batch.column(field.name).null_count} null(s)",
                column=field.name,
            )
    return pa.RecordBatch.from_arrays(
        [batch.column(name) for name in schema.names], schema=schema
    )
