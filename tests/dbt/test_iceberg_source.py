"""The dbt-duckdb plugin reads raw where it lies and equals PyIceberg's read.

dbt-duckdb's own environment loads the source (as a model's compile does): the
source becomes a view over the snapshot's Parquet files, a warehouse that
holds the copy an earlier version made (a table of that name) is taken over,
and the rows equal PyIceberg's scan of the table: files from before a legal
promotion and a column added later included.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from dbt.adapters.duckdb.credentials import DuckDBCredentials, PluginConfig
from dbt.adapters.duckdb.environments.local import LocalEnvironment
from dbt.adapters.duckdb.utils import SourceConfig
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.expressions import EqualTo
from pyiceberg.table import Table
from pyiceberg.types import LongType, StringType

from mozart_etl.dbt.iceberg_source import raw_dataset

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
