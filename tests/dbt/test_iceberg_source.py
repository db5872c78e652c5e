"""The dbt-duckdb plugin reads raw where it lies and equals PyIceberg's read.

dbt-duckdb's own environment loads the source (as a model's compile does): the
source becomes a view over the snapshot's Parquet files, a warehouse that
holds the copy an earlier version made (a table of that name) is taken over,
and the rows equal PyIceberg's scan of the table: files from before a legal
promotion and a column added later included. A table whose schema never
changed, on the local disk, is read by DuckDB's own Parquet reader: the same
rows and column types as through the pyarrow dataset (an identity partition's
folder name is not read as its column).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from dbt.adapters.duckdb.credentials import DuckDBCredentials, PluginConfig
from dbt.adapters.duckdb.environments.local import LocalEnvironment
from dbt.adapters.duckdb.utils import SourceConfig
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.expressions import EqualTo
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.transforms import IdentityTransform
from pyiceberg.types import (
    DateType,
    IntegerType,
    LongType,
    NestedField,
    StringType,
    TimestamptzType,
)

from mozart_etl.dbt.iceberg_source import Plugin, local_parquet_files, raw_dataset

NAMESPACE, NAME = "plant_raw", "lot_history"


def _settings(tmp_path: Path) -> dict[str, str]:
    return {
        "catalog": "plant",
        "type": "sql",
        "uri": f"sqlite:///{tmp_path / 'catalog.db'}",
        "warehouse": f"file://{tmp_path / 'warehouse'}",
    }


@pytest.fixture
def raw(tmp_path: Path) -> Table:
    """Three appends: int32 qty, then qty promoted to long, then a column added."""
    settings = _settings(tmp_path)
    (tmp_path / "warehouse").mkdir()
    catalog = SqlCatalog(settings["catalog"], **settings)
    catalog.create_namespace(NAMESPACE)
    first = pa.table(
        {
            "lot_id": ["L1", "L2"],
            "qty": pa.array([10, 20], pa.int32()),
        }
    )
    table = catalog.create_table(f"{NAMESPACE}.{NAME}", schema=first.schema)
    table.append(first)
    with table.update_schema() as update:
        update.update_column("qty", LongType())
    table.append(
        pa.table({"lot_id": ["L3"], "qty": pa.array([3_000_000_000], pa.int64())})
    )
    with table.update_schema() as update:
        update.add_column("grade", StringType())
    table.append(
        pa.table(
            {
                "lot_id": ["L4"],
                "qty": pa.array([4], pa.int64()),
                "grade": ["A"],
            }
        )
    )
    return catalog.load_table(f"{NAMESPACE}.{NAME}")


def _rows(data: pa.Table) -> list[tuple]:
    columns = data.column_names
    return sorted(tuple(row[c] for c in columns) for row in data.to_pylist())


def test_the_dataset_equals_pyicebergs_read(raw: Table) -> None:
    dataset = raw_dataset(raw)
    assert dataset is not None
    assert _rows(dataset.to_table()) == _rows(raw.scan().to_arrow())
    assert _rows(dataset.to_table()) == [
        ("L1", 10, None),
        ("L2", 20, None),
        ("L3", 3_000_000_000, None),
        ("L4", 4, "A"),
    ]


def _environment(tmp_path: Path, warehouse: Path) -> LocalEnvironment:
    plugin = PluginConfig(
        module="mozart_etl.dbt.iceberg_source",
        alias="iceberg",
        config=_settings(tmp_path),
    )
    credentials = DuckDBCredentials(path=str(warehouse), plugins=[plugin])
    return LocalEnvironment(credentials)


def _source(**meta: object) -> SourceConfig:
    return SourceConfig(
        name=NAME,
        identifier=NAME,
        schema=NAMESPACE,
        database=None,
        meta={"plugin": "iceberg", **meta},
        tags=[],
    )


def test_the_source_is_a_view_that_takes_over_an_earlier_copy(
    raw: Table, tmp_path: Path
) -> None:
    warehouse = tmp_path / "marts.duckdb"
    with duckdb.connect(str(warehouse)) as earlier:
        earlier.execute(f"create schema {NAMESPACE}")
        earlier.execute(f"create table {NAMESPACE}.{NAME} as select 'stale' as lot_id")
    environment = _environment(tmp_path, warehouse)
    try:
        environment.load_source("iceberg", _source())
        handle = environment.handle()
        cursor = handle.cursor()
        kind = cursor.execute(
            "select table_type from information_schema.tables "
            "where table_schema = ? and table_name = ?",
            [NAMESPACE, NAME],
        ).fetchall()
        rows = cursor.execute(
            f"select lot_id, qty, grade from {NAMESPACE}.{NAME} order by lot_id"
        ).fetchall()
        # A model reads only the columns it needs.
        total = cursor.execute(f"select sum(qty) from {NAMESPACE}.{NAME}").fetchone()
        handle.close()
    finally:
        environment.close()
    assert kind == [("VIEW",)]
    assert rows == [
        ("L1", 10, None),
        ("L2", 20, None),
        ("L3", 3_000_000_000, None),
        ("L4", 4, "A"),
    ]
    assert total == (3_000_000_034,)


def test_scan_options_fall_back_to_pyicebergs_read(raw: Table, tmp_path: Path) -> None:
    environment = _environment(tmp_path, tmp_path / "marts.duckdb")
    try:
        environment.load_source("iceberg", _source(row_filter=EqualTo("lot_id", "L3")))
        handle = environment.handle()
        rows = (
            handle.cursor()
            .execute(f"select lot_id, qty from {NAMESPACE}.{NAME}")
            .fetchall()
        )
        handle.close()
    finally:
        environment.close()
    assert rows == [("L3", 3_000_000_000)]


@pytest.fixture
def one_schema(tmp_path: Path) -> Table:
    """Two appends under the table's only schema, partitioned by a column
    itself (folders `line=…`, which a hive-style reader would type anew)."""
    settings = _settings(tmp_path)
    (tmp_path / "warehouse").mkdir()
    catalog = SqlCatalog(settings["catalog"], **settings)
    catalog.create_namespace(NAMESPACE)
    schema = Schema(
        NestedField(1, "lot_id", StringType(), required=False),
        NestedField(2, "qty", LongType(), required=False),
        NestedField(3, "day", DateType(), required=False),
        NestedField(4, "at", TimestamptzType(), required=False),
        NestedField(5, "line", IntegerType(), required=False),
    )
    spec = PartitionSpec(PartitionField(5, 1000, IdentityTransform(), "line"))
    table = catalog.create_table(
        f"{NAMESPACE}.{NAME}", schema=schema, partition_spec=spec
    )
    arrow = schema.as_arrow()
    for day, lots in ((date(2026, 11, 18), ["L1", "L2"]), (date(2026, 11, 19), ["L3"])):
        at = datetime(day.year, day.month, day.day, 9, tzinfo=UTC)
        table.append(
            pa.table(
                {
                    "lot_id": lots,
                    "qty": [len(lot) * 10 for lot in lots],
                    "day": [day] * len(lots),
                    "at": [at] * len(lots),
                    "line": [day.day - 15] * len(lots),
                },
                schema=arrow,
            )
        )
    return catalog.load_table(f"{NAMESPACE}.{NAME}")


def test_one_schema_on_local_disk_is_read_by_duckdb_as_the_dataset_reads_it(
    one_schema: Table, tmp_path: Path
) -> None:
    files = local_parquet_files(one_schema)
    assert files is not None and len(files) == 2
    assert {Path(path).parent.name for path in files} == {"line=3", "line=4"}
    environment = _environment(tmp_path, tmp_path / "marts.duckdb")
    try:
        first = environment.handle()  # the plugin is given the connection
        plugin = environment._plugins["iceberg"]
        assert isinstance(plugin, Plugin)
        assert isinstance(plugin.load(_source()), duckdb.DuckDBPyRelation)
        first.close()
        environment.load_source("iceberg", _source())
        handle = environment.handle()  # a model's: the source registered
        cursor = handle.cursor()
        cursor.register("through_pyarrow", raw_dataset(one_schema))
        types = {
            view: [row[:2] for row in cursor.execute(f"describe {view}").fetchall()]
            for view in (f"{NAMESPACE}.{NAME}", "through_pyarrow")
        }
        rows = cursor.execute(
            f"select * from {NAMESPACE}.{NAME} order by lot_id"
        ).fetchall()
        handle.close()
    finally:
        environment.close()
    assert types[f"{NAMESPACE}.{NAME}"] == types["through_pyarrow"]
    assert [(row[0], row[1], row[2], row[4]) for row in rows] == [
        ("L1", 20, date(2026, 11, 18), 3),
        ("L2", 20, date(2026, 11, 18), 3),
        ("L3", 20, date(2026, 11, 19), 4),
    ]
    assert _rows(one_schema.scan().to_arrow()) == sorted(rows)


def test_a_changed_schema_is_read_through_the_dataset(raw: Table) -> None:
    assert local_parquet_files(raw) is None
