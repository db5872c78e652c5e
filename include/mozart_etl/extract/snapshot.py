"""Lay a snapshot table's extract out per run: `<table>/<key>=<value>/extract=<id>/`.

The extract streams into the day's folder as any other; then, for a table in
`snapshot` mode, its rows are rewritten into one folder per run (value of
`snapshot_key`) and the day-folder files removed, so the lake shows each
immutable plan run on its own. Runs are small (a plan run is thousands of
lines), so the extract is read whole.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mozart_etl.config.models import TableConfig
from mozart_etl.core.lake import ExtractedFile, Lake
from mozart_etl.core.parquet import RollingParquetWriter


def split_runs(
    lake: Lake,
    table: TableConfig,
    files: list[ExtractedFile],
    extract_id: str,
    rows_per_file: int,
) -> list[ExtractedFile]:
    """The extract's rows rewritten one folder per run; returns the new files
    (the original ones when the extract is empty: they carry the schema)."""
    key = table.snapshot_key
    assert key is not None
    data = pa.concat_tables(
        pq.read_table(f.path, filesystem=lake.fs) for f in files
    ).combine_chunks()
    if not data.num_rows:
        return files
    runs = pc.unique(data.column(key)).to_pylist()
    written: list[ExtractedFile] = []
    for run in sorted(runs, key=str):
        rows = data.filter(_is_run(data.column(key), run))
        folder = lake.run_folder(table.name, key, run, extract_id)
        lake.make_dirs(folder)
        writer = RollingParquetWriter(lake, folder, data.schema, rows_per_file)
        for batch in rows.to_batches():
            writer.write(batch)
        written.extend(writer.close())
    for f in files:
        lake.fs.delete_file(f.path)
    return written


def _is_run(column: pa.Array, run: object) -> pa.Array:
    """Rows of one run; rows without a key form their own run (validation
    quarantines them: a primary-key column is required)."""
    if run is None:
        return pc.is_null(column)
    return pc.fill_null(pc.equal(column, pa.scalar(run, column.type)), False)
