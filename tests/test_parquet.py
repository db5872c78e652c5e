"""The lake's Parquet writer: what each column is encoded with."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mozart_etl.config.models import TenantConfig
from mozart_etl.core.lake import Lake
from mozart_etl.core.parquet import ROW_GROUP_BYTES, RollingParquetWriter
from tests.helpers import table_dict, tenant_dict

ROWS = 1_000
SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("lot_id", pa.string()),  # distinct on every row, like lot numbers
        ("plant", pa.string()),  # 3 values
        ("half", pa.string()),  # ROWS / 2 values: the limit, still a dictionary
    ]
)


def _rows(start: int) -> pa.RecordBatch:
    ids = range(start, start + ROWS // 2)
    return pa.record_batch(
        [
            pa.array(ids, pa.int64()),
            pa.array([f"LOT-{i:06d}" for i in ids]),
            pa.array([f"P{i % 3}" for i in ids]),
            pa.array([f"H{i // 2}" for i in ids]),
        ],
        schema=SCHEMA,
    )


def test_dictionaries_only_for_repeated_text_and_statistics_only_for_non_text(
    tmp_path: Path,
) -> None:
    columns = [{"name": "id", "type": "bigint"}]
    tenant = TenantConfig.model_validate(
        tenant_dict(tmp_path, [table_dict("t", columns)])
    )
    writer = RollingParquetWriter(Lake(tenant), str(tmp_path / "out"), SCHEMA, ROWS)
    Lake(tenant).make_dirs(str(tmp_path / "out"))
    writer.write(_rows(0))
    writer.write(_rows(ROWS // 2))
    (written,) = writer.close()

    columns = pq.ParquetFile(written.path).metadata.row_group(0)
    chunks = {columns.column(i).path_in_schema: columns.column(i) for i in range(4)}
    with_dictionary = {name for name, c in chunks.items() if c.has_dictionary_page}
    assert with_dictionary == {"plant", "half"}
    with_statistics = {name for name, c in chunks.items() if c.is_stats_set}
    assert with_statistics == {"id"}
    assert chunks["id"].statistics.min == 0
    assert chunks["id"].statistics.max == ROWS - 1
    assert pq.read_table(written.path).equals(
        pa.Table.from_batches([_rows(0), _rows(ROWS // 2)])
    )


def test_rows_of_large_values_end_a_row_group_by_bytes(tmp_path: Path) -> None:
    """Ten rows of 10 MB each: a row group closes at ROW_GROUP_BYTES, not at
    125k rows, so the writer never gathers all of them at once."""
    columns = [{"name": "id", "type": "bigint"}]
    tenant = TenantConfig.model_validate(
        tenant_dict(tmp_path, [table_dict("t", columns)])
    )
    schema = pa.schema([("id", pa.int64()), ("doc", pa.string())])
    folder = str(tmp_path / "out")
    Lake(tenant).make_dirs(folder)
    writer = RollingParquetWriter(Lake(tenant), folder, schema, 1_000_000)
    docs = [chr(ord("a") + i) * (10 << 20) for i in range(10)]
    for i, doc in enumerate(docs):
        writer.write(pa.record_batch([pa.array([i]), pa.array([doc])], schema=schema))
    (written,) = writer.close()

    metadata = pq.ParquetFile(written.path).metadata
    per_group = ROW_GROUP_BYTES // (10 << 20) + 1  # the batch crossing the limit
    sizes = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    assert sizes == [per_group, 10 - per_group]
    assert pq.read_table(written.path).column("doc").to_pylist() == docs
