"""dbt-duckdb plugin: raw Iceberg tables read by DuckDB where they lie.

dbt-duckdb's built-in `iceberg` plugin gives DuckDB `scan().to_arrow()`: the
whole raw table in memory, then DuckDB's copy of it into the warehouse file
(the 1M-row demo's staging peaked at 1.1 GB, and every run rewrote a copy of
raw into the warehouse). Here PyIceberg plans the scan (the snapshot's data
files, its schema) and the source becomes a DuckDB *view* over a pyarrow
dataset of those Parquet files: DuckDB reads only the columns a model needs,
on all its threads, as the model runs, and nothing of raw is copied.

The dataset is given the table's current Iceberg schema, so files written
before a legal promotion (int→long, float→double, a wider decimal) or before
a column was added read as the table reads today (pyarrow casts and fills
nulls). Columns are matched by name: raw's columns are never renamed (the
load refuses any schema change but those promotions). Where that shortcut
would not be exact — a delete file in the scan, scan options set on the
source, a FileIO that is not pyarrow's — the plugin falls back to PyIceberg's
own read (`to_arrow`, a re-scannable table: a view is read once per cursor).

Where every data file is on the local disk and was written under the table's
one schema (it never changed), the view reads the files with DuckDB's own
Parquet reader instead of through pyarrow: the same rows and column types
(tests/dbt/test_iceberg_source.py), without pyarrow's read-ahead of decoded
batches (on the 1M-row day the staging build's peak was ~170 MB lower and its
largest model faster: docs/performance.md).

Imported by dbt at run time only (the profile names it), never on the DAG
parse path.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
from dbt.adapters.duckdb.plugins.iceberg import Plugin as IcebergPlugin
from dbt.adapters.duckdb.utils import SourceConfig
from duckdb import DuckDBPyConnection, DuckDBPyRelation
from pyiceberg.io.pyarrow import PyArrowFileIO, schema_to_pyarrow
from pyiceberg.manifest import FileFormat
from pyiceberg.table import Table

from mozart_etl.core.identifiers import qualified_name, quote_identifier

log = logging.getLogger(__name__)

# The scan options dbt-duckdb's plugin passes on, all of them.
SCAN_KEYS = (
    "row_filter",
    "selected_fields",
    "case_sensitive",
    "snapshot_id",
    "options",
    "limit",
)


@dataclass(frozen=True)
class DataFiles:
    """The Parquet files of a table's current snapshot, as pyarrow opens them."""

    filesystem: pafs.FileSystem | None
    paths: list[str]


def data_files(table: Table) -> DataFiles | None:
    """The snapshot's data files, or None where reading them directly would
    not equal the table (a delete file, a format other than Parquet, a FileIO
    other than pyarrow's)."""
    if not isinstance(table.io, PyArrowFileIO):
        return None
    tasks = list(table.scan().plan_files())
    if any(task.delete_files for task in tasks):
        return None
    if any(task.file.file_format != FileFormat.PARQUET for task in tasks):
        return None
    filesystem, paths = None, []
    for task in tasks:
        scheme, netloc, path = PyArrowFileIO.parse_location(
            task.file.file_path, table.io.properties
        )
        filesystem = table.io.fs_by_scheme(scheme, netloc)
        paths.append(path)
    return DataFiles(filesystem, paths)


_UNPLANNED = DataFiles(None, [])
"""Stands for "not planned yet" (`files` arguments below)."""


def raw_dataset(
    table: Table, files: DataFiles | None = _UNPLANNED
) -> ds.Dataset | None:
    """The table's current snapshot as a pyarrow dataset of its Parquet files,
    or None where reading the files directly would not equal the table.
    `files`: the snapshot's `data_files`, when the caller planned them."""
    files = data_files(table) if files is _UNPLANNED else files
    if files is None:
        return None
    schema = schema_to_pyarrow(table.schema(), include_field_ids=False)
    if not files.paths:
        return ds.dataset(pa.Table.from_batches([], schema=schema))
    return ds.dataset(
        files.paths, schema=schema, format="parquet", filesystem=files.filesystem
    )


def local_parquet_files(
    table: Table, files: DataFiles | None = _UNPLANNED
) -> list[str] | None:
    """The snapshot's data files when DuckDB's own reader gives exactly the
    table: all on the local disk and written under its only schema (so each
    file holds the table's columns with their types). None otherwise."""
    if len(table.metadata.schemas) != 1:
        return None  # a promotion or an added column: the dataset reconciles
    files = data_files(table) if files is _UNPLANNED else files
    if files is None or not files.paths:
        return None
    if not isinstance(files.filesystem, pafs.LocalFileSystem):
        return None
    return files.paths


def local_relation(
    conn: DuckDBPyConnection, table: Table, files: DataFiles | None = _UNPLANNED
) -> DuckDBPyRelation | None:
    """The table read by DuckDB's own Parquet reader on `conn`, its columns in
    its order, where that is exact (`local_parquet_files`); else None. Not
    hive partitioning: an identity partition's folder name would stand in for
    the column the file holds (and type it anew)."""
    paths = local_parquet_files(table, files)
    if paths is None:
        return None
    columns = ", ".join(quote_identifier(f.name) for f in table.schema().fields)
    return conn.read_parquet(paths, hive_partitioning=False).select(columns)


CONNECTION_KEYS = ("conn_id", "aws_conn_id", "s3_endpoint", "s3_region")
"""The profile's settings that name connections or the object store
(dbt/profiles.yml), resolved here into PyIceberg properties."""


def catalog_config(config: dict[str, Any]) -> dict[str, Any]:
    """The profile's catalog settings as PyIceberg's properties: the REST
    catalog's connection and the lake's AWS connection resolved in this (the
    dbt task's) process, as the load task resolves them, so dbt reads raw with
    the keys the load wrote it with, and no key ever sits in the profile or
    the task's environment."""
    from mozart_etl.config.models import S3Config
    from mozart_etl.core.credentials import S3Access
    from mozart_etl.factory.connections import aws_s3_access, rest_catalog_properties

    named = {key: str(config.get(key) or "") or None for key in CONNECTION_KEYS}
    resolved = {k: v for k, v in config.items() if k not in CONNECTION_KEYS}
    if named["conn_id"]:
        resolved.update(rest_catalog_properties(named["conn_id"], tenant=None))
    region = named["s3_region"] or "us-east-1"
    if named["aws_conn_id"]:
        settings = S3Config(
            aws_conn_id=named["aws_conn_id"],
            endpoint_url=named["s3_endpoint"],
            region=region,
        )
        resolved.update(aws_s3_access(settings, tenant=None).pyiceberg_properties())
    elif named["s3_endpoint"]:
        access = S3Access(endpoint_url=named["s3_endpoint"], region=region)
        resolved.update(access.pyiceberg_properties())
    return resolved


class Plugin(IcebergPlugin):
    def initialize(self, config: dict[str, Any]) -> None:
        super().initialize(catalog_config(config))
        self._connection: DuckDBPyConnection | None = None

    def configure_connection(self, conn: DuckDBPyConnection) -> None:
        super().configure_connection(conn)
        self._connection = conn

    def default_materialization(self) -> str:
        return "view"

    def load(
        self, source_config: SourceConfig
    ) -> DuckDBPyRelation | ds.Dataset | pa.Table:
        table_format = source_config.get("iceberg_table", "{schema}.{identifier}")
        table = self._catalog.load_table(table_format.format(**source_config.as_dict()))
        self._drop_copied_table(source_config)
        scan: dict[str, Any] = {
            key: source_config[key] for key in SCAN_KEYS if key in source_config
        }
        if not scan:  # the snapshot's files, planned once for both readers
            files = data_files(table)
            if self._connection is not None:
                relation = local_relation(self._connection, table, files)
                if relation is not None:
                    return relation
            dataset = raw_dataset(table, files)
            if dataset is not None:
                return dataset
        log.info(
            "raw %s read through PyIceberg (delete files, scan options or "
            "another FileIO): the table is loaded into memory",
            source_config.table_name(),
        )
        return table.scan(**scan).to_arrow()

    def _drop_copied_table(self, source_config: SourceConfig) -> None:
        """Drop the copy of raw an earlier version materialized as a table:
        dbt-duckdb's `CREATE OR REPLACE VIEW` refuses to replace a table."""
        if self._connection is None:
            return
        cursor = self._connection.cursor()
        try:
            found = cursor.execute(
                "select 1 from information_schema.tables where table_schema = ? "
                "and table_name = ? and table_type = 'BASE TABLE'",
                [source_config.schema, source_config.identifier],
            ).fetchall()
            if found:
                name = qualified_name(source_config.schema, source_config.identifier)
                cursor.execute(f"drop table {name}")
        finally:
            cursor.close()
