"""Parquet in the lake: a rolling zstd writer shared by the stages that write
(extract, transform: batches in, large row groups out, on a background thread),
and the reader of a stage's files for the next one (`ParquetRows`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from mozart_etl.core.lake import ExtractedFile, Lake

log = logging.getLogger(__name__)

# Two row groups are in memory at once (one gathering, one being written). With
# dictionaries on text only, 125k-row groups are within 6 % of the size of 1M-row
# groups on the bench table (13.5 vs 12.8 MB; 250k: 13.1): extracting 5M rows
# peaked at 245-258 MB instead of 276-294 with 250k, and the last group, written
# after the stream ends, takes half as long.
ROW_GROUP_ROWS = 125_000
ROW_GROUP_BYTES = 64 << 20
"""A row group also ends once its batches hold this many bytes: rows of large
values (documents, images as text) would otherwise gather 125k at a time, and
memory would grow with their count, not with the largest one. The bench table's
125k-row groups hold ~14 MB in Arrow, far below."""


class RollingParquetWriter:
    """Zstd Parquet on a background thread: batches are gathered into row groups
    of ROW_GROUP_ROWS (or ROW_GROUP_BYTES, whichever comes first), a new file
    starts every `rows_per_file` rows. At most one row group is being written
    while the next one gathers."""

    def __init__(
        self, lake: Lake, folder: str, schema: pa.Schema, rows_per_file: int
    ) -> None:
        self.lake, self.folder, self.schema = lake, folder, schema
        self.rows_per_file = rows_per_file
        self.files: list[ExtractedFile] = []
        self._writer: pq.ParquetWriter | None = None
        self._path = ""
        self._rows = 0
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._pending_bytes = 0
        self._text = [field.name for field in schema if pa.types.is_string(field.type)]
        self._dictionary: list[str] | None = None  # chosen on the first row group
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="parquet")
        self._inflight: Future[None] | None = None

    def write(self, batch: pa.RecordBatch) -> None:
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        self._pending_bytes += batch.nbytes
        limit = min(ROW_GROUP_ROWS, self.rows_per_file)
        if self._pending_rows >= limit or self._pending_bytes >= ROW_GROUP_BYTES:
            self._submit()

    def close(self) -> list[ExtractedFile]:
        self._submit()
        self._wait()
        self._thread.shutdown()
        if self._writer is None and not self.files:
            self._open()  # an empty window still yields one file with the schema
        self._finish_file()
        return self.files

    def abort(self) -> None:
        try:
            self._wait()
        except Exception:  # the first error is the one being raised
            log.debug("parquet writer failed while aborting", exc_info=True)
        self._thread.shutdown()
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _submit(self) -> None:
        if not self._pending:
            return
        data = pa.Table.from_batches(self._pending, schema=self.schema)
        self._pending, self._pending_rows, self._pending_bytes = [], 0, 0
        self._wait()
        self._inflight = self._thread.submit(self._write_table, data)

    def _wait(self) -> None:
        if self._inflight is not None:
            inflight, self._inflight = self._inflight, None
            inflight.result()

    def _write_table(self, data: pa.Table) -> None:
        offset = 0
        while offset < data.num_rows:
            if self._writer is None or self._rows >= self.rows_per_file:
                self._finish_file()
                self._open(data)
            take = min(data.num_rows - offset, self.rows_per_file - self._rows)
            assert self._writer is not None
            self._writer.write_table(data.slice(offset, take), row_group_size=take)
            self._rows += take
            offset += take

    def _open(self, sample: pa.Table | None = None) -> None:
        self._path = f"{self.folder}/part-{len(self.files):05d}.parquet"
        if self._dictionary is None:
            self._dictionary = _dictionary_columns(self._text, sample)
        self._writer = pq.ParquetWriter(
            self._path,
            self.schema,
            filesystem=self.lake.fs,
            compression="zstd",
            use_dictionary=self._dictionary,
            # Min/max of text cost a fifth of the writer's CPU on the bench table
            # and serve nobody: every reader of the lake scans whole files.
            write_statistics=[
                name for name in self.schema.names if name not in self._text
            ],
        )

    def _finish_file(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        size = self.lake.fs.get_file_info(self._path).size or 0
        self.files.append(ExtractedFile(path=self._path, rows=self._rows, bytes=size))
        self._writer, self._rows = None, 0


def _dictionary_columns(text: list[str], sample: pa.Table | None) -> list[str]:
    """Text columns worth a dictionary, judged on the first row group. It pays off
    on repeated text (plant, equipment codes); on numbers and instants zstd alone
    is as small with less CPU and memory, and on text of mostly distinct values
    (lot and serial numbers) the dictionary fills up, overflows and is dropped
    for the rest of each row group: on the bench table, leaving `lot_id` out
    made the file 6 % smaller and the writer 10 % faster."""
    if sample is None or sample.num_rows == 0:
        return text
    return [
        name
        for name in text
        if len(sample.column(name).unique()) * 2 <= sample.num_rows
    ]


class ParquetRows:
    """Parquet files read in file and row order, one row group at a time, less
    the rows at `excluded` positions (0-based across the files, ascending).

    What the load and a transform read: a validated extract is its own files less
    its quarantined rows, so validation never copies the rows it accepts (copying
    1M rows took 43 % of validating them). Per row group, because `iter_batches`
    over a whole file (or a dataset scan, which reads ahead) grows with the file,
    +25 MB per 1M rows here; per row group it stays flat.
    """

    def __init__(
        self,
        fs: pafs.FileSystem,
        paths: list[str],
        excluded: np.ndarray | None = None,
    ) -> None:
        self.fs = fs
        self.paths = paths
        self.excluded = np.empty(0, np.int64) if excluded is None else excluded

    @cached_property
    def _footers(self) -> list[pq.FileMetaData]:
        """Each file's footer, read once: the load asks for the schema and the
        row count before reading the rows (on S3 each read is a round trip)."""
        return [pq.read_metadata(path, filesystem=self.fs) for path in self.paths]

    @property
    def schema(self) -> pa.Schema:
        if not self._footers:
            return pa.schema([])
        return self._footers[0].schema.to_arrow_schema()

    def count_rows(self) -> int:
        return sum(self.file_rows()) - len(self.excluded)

    def largest_column_chunk(self) -> int:
        """Uncompressed bytes of the largest column chunk (one column of one
        row group): an upper bound of the largest value, from the footers."""
        return max(
            (
                group.column(index).total_uncompressed_size
                for footer in self._footers
                for group in (footer.row_group(i) for i in range(footer.num_row_groups))
                for index in range(group.num_columns)
            ),
            default=0,
        )

    def to_table(self, columns: list[str] | None = None) -> pa.Table:
        schema = self.schema
        if columns is not None:
            schema = pa.schema([schema.field(name) for name in columns])
        return pa.Table.from_batches(list(self.to_batches(columns=columns)), schema)

    def to_batches(
        self, batch_size: int = 131_072, columns: list[str] | None = None
    ) -> Iterator[pa.RecordBatch]:
        offset = 0
        for batch in self._row_groups(batch_size, columns):
            end = offset + batch.num_rows
            low, high = np.searchsorted(self.excluded, [offset, end])
            if low == high:
                yield batch
            else:
                keep = np.ones(batch.num_rows, dtype=bool)
                keep[self.excluded[low:high] - offset] = False
                yield batch.filter(pa.array(keep))
            offset = end

    def file_rows(self) -> list[int]:
        """Each file's row count."""
        return [footer.num_rows for footer in self._footers]

    def _row_groups(
        self, batch_size: int, columns: list[str] | None
    ) -> Iterator[pa.RecordBatch]:
        for path, footer in zip(self.paths, self._footers, strict=True):
            with self.fs.open_input_file(path) as source:
                parquet = pq.ParquetFile(source, metadata=footer)
                for group in range(parquet.num_row_groups):
                    yield from parquet.iter_batches(
                        batch_size=batch_size, row_groups=[group], columns=columns
                    )
