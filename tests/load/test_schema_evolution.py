"""A column's type changed between loads: Iceberg's legal promotions widen raw
in place, anything else is refused (terminal) before a data file is written.

Every load but the refused ones goes through the real validator; the values
expected are the rows the test wrote, never what the pipeline read.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from pyiceberg.catalog import Catalog
from pyiceberg.table import Table
from pyiceberg.types import DecimalType, DoubleType, FloatType, IntegerType, LongType

from mozart_etl.config.models import TableConfig, TenantConfig
from mozart_etl.core.errors import LoadRejected
from mozart_etl.core.lake import ExtractManifest, Lake
from mozart_etl.dbt.iceberg_source import raw_dataset
from mozart_etl.extract.types import arrow_schema
from mozart_etl.load.catalog import open_catalog
from mozart_etl.load.iceberg import LoadResult, load_partition
from mozart_etl.load.schema import SchemaChangeRefused, promotes
from mozart_etl.validate.validator import accepted_rows, validate_extract
from tests.helpers import (
    Row,
    make_tenant,
    read_extract,
    seoul_day,
    table_dict,
    write_extract,
)

D1, D2 = date(2026, 11, 14), date(2026, 11, 15)
RAW = ("acme_raw", "lots")


def _columns(value: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"name": "lot", "type": "string", "nullable": False},
        {"name": "value", **value},
        {"name": "updated_at", "type": "timestamptz", "nullable": False},
    ]


def _tenant(tmp_path: Path, value: dict[str, Any], mode: str = "merge") -> TenantConfig:
    extra: dict[str, Any] = {"mode": mode}
    if mode != "full_refresh":
        extra["cursor"] = "updated_at"
    lots = table_dict("lots", _columns(value), primary_key=["lot"], **extra)
    return make_tenant(tmp_path, [lots])


def _rows(day: date, values: list[Any], first: int = 0) -> list[Row]:
    start = seoul_day(day).start
    return [
        {"lot": f"L{first + i}", "value": v, "updated_at": start + timedelta(hours=i)}
        for i, v in enumerate(values)
    ]


def _manifest(
    tenant: TenantConfig, rows: list[Row], day: date, run_id: str
) -> ExtractManifest:
    table = tenant.table("lots")
    manifest = write_extract(
        tenant, table, rows, seoul_day(day), extract_id=f"{day:%Y%m%d}-{run_id}"
    )
    captured = seoul_day(day).end + timedelta(hours=1)
    return manifest.model_copy(update={"captured_at": captured})


def _load(
    catalog: Catalog, tenant: TenantConfig, rows: list[Row], day: date, run_id: str
) -> LoadResult:
    """Extract (as Parquet), validate and load, as a run does."""
    table = tenant.table("lots")
    manifest = _manifest(tenant, rows, day, run_id)
    report = validate_extract(tenant, table, manifest)
    accepted = accepted_rows(Lake(tenant), report)
    return load_partition(catalog, tenant, table, manifest, accepted, run_id=run_id)


def _values(raw: Table) -> dict[str, Any]:
    """Each lot's latest value in raw, read through a PyIceberg scan."""
    data = raw.scan(selected_fields=("lot", "value", "updated_at")).to_arrow()
    latest: dict[str, tuple[datetime, Any]] = {}
    for row in data.to_pylist():
        if row["lot"] not in latest or row["updated_at"] > latest[row["lot"]][0]:
            latest[row["lot"]] = (row["updated_at"], row["value"])
    return {lot: value for lot, (_, value) in latest.items()}


def _duckdb_values(raw: Table) -> tuple[str, dict[str, Any]]:
    """What dbt-duckdb reads: the plugin's dataset of the snapshot's Parquet
    files (`mozart_etl/dbt/iceberg_source.py`) behind a DuckDB view; the
    column's DuckDB type and each lot's latest value."""
    dataset = raw_dataset(raw)
    assert dataset is not None, "raw read through the fallback, not its files"
    con = duckdb.connect()
    try:
        con.register("raw_lots", dataset)
        con.execute("CREATE VIEW staged AS SELECT * FROM raw_lots")
        ((kind,),) = con.execute(
            "SELECT DISTINCT typeof(value) FROM staged WHERE value IS NOT NULL"
        ).fetchall()
        rows = con.execute(
            "SELECT lot, arg_max(value, updated_at) FROM staged GROUP BY lot"
        ).fetchall()
    finally:
        con.close()
    return kind, dict(rows)


def _data_files(raw: Table) -> int:
    """Parquet files under the table's data folder (referenced or not)."""
    folder = Path(raw.location().removeprefix("file://")) / "data"
    return sum(1 for _ in folder.rglob("*.parquet"))


LEGAL = {
    "int → bigint": (
        {"type": "int"},
        {"type": "bigint"},
        [2_147_483_647, -2_147_483_648],
        [9_007_199_254_740_993, -5],
        LongType(),
        "BIGINT",
    ),
    "decimal(9,2) → decimal(20,2) (past 64-bit storage)": (
        {"type": "decimal", "precision": 9, "scale": 2},
        {"type": "decimal", "precision": 20, "scale": 2},
        [Decimal("9999999.99"), Decimal("-0.01")],
        [Decimal("123456789012345678.91"), Decimal("-999999999999999999.99")],
        DecimalType(20, 2),
        "DECIMAL(20,2)",
    ),
    "decimal(20,4) → decimal(38,4)": (
        {"type": "decimal", "precision": 20, "scale": 4},
        {"type": "decimal", "precision": 38, "scale": 4},
        [Decimal("9999999999999999.9999")],
        [Decimal("1234567890123456789012345678901234.5678")],
        DecimalType(38, 4),
        "DECIMAL(38,4)",
    ),
}


@pytest.mark.parametrize("mode", ["merge", "full_refresh"])
@pytest.mark.parametrize("change", sorted(LEGAL))
def test_a_legal_promotion_widens_raw_and_every_value_reads_back(
    tmp_path: Path, change: str, mode: str
) -> None:
    before, after, old_values, new_values, iceberg_type, duck_type = LEGAL[change]
    tenant = _tenant(tmp_path, before, mode)
    catalog = open_catalog(tenant)
    old = _rows(D1, old_values)
    _load(catalog, tenant, old, D1, "r1")

    widened = _tenant(tmp_path, after, mode)
    new = _rows(D2, new_values, first=len(old))
    rows = old + new if mode == "full_refresh" else new  # a full refresh: all
    result = _load(catalog, widened, rows, D2, "r2")

    raw = catalog.load_table(RAW)
    assert raw.schema().find_field("value").field_type == iceberg_type
    expected = {row["lot"]: row["value"] for row in old + new}
    assert _values(raw) == expected
    kind, seen = _duckdb_values(raw)
    assert kind == duck_type
    assert seen == expected
    # The old rows did not change: no new version of them (a full refresh
    # compares them, read back as the wider type, with the same rows).
    assert result.rows_in_table == len(old) + len(new)


def test_float_widens_to_double(tmp_path: Path) -> None:
    """Rows of a `float` column (a caller of load_partition: the extract writes
    `double` only) then `double`: raw's column widens, float values read back
    as the doubles they were."""
    tenant = _tenant(tmp_path, {"type": "double"})
    table = tenant.table("lots")
    catalog = open_catalog(tenant)
    old = _rows(D1, [0.5, -1.25])
    narrow = _schema(table, pa.float32())
    load_partition(
        catalog,
        tenant,
        table,
        _manifest(tenant, old, D1, "r1"),
        pa.Table.from_pylist(old, schema=narrow),
        run_id="r1",
    )
    assert catalog.load_table(RAW).schema().find_field("value").field_type == (
        FloatType()
    )
    new = _rows(D2, [1e300, 0.1], first=2)
    load_partition(
        catalog,
        tenant,
        table,
        _manifest(tenant, new, D2, "r2"),
        pa.Table.from_pylist(new, schema=_schema(table, pa.float64())),
        run_id="r2",
    )

    raw = catalog.load_table(RAW)
    assert raw.schema().find_field("value").field_type == DoubleType()
    assert _values(raw) == {"L0": 0.5, "L1": -1.25, "L2": 1e300, "L3": 0.1}


def test_an_extract_older_than_the_widening_still_loads(tmp_path: Path) -> None:
    """An `int` extract loaded after raw became `long` (a day's load retried
    late): its values fit, so it loads, as long as tenant.yaml says `bigint`."""
    tenant = _tenant(tmp_path, {"type": "int"})
    catalog = open_catalog(tenant)
    late = _manifest(tenant, _rows(D1, [7, 8]), D1, "late")  # written as int
    report = validate_extract(tenant, tenant.table("lots"), late)  # then
    widened = _tenant(tmp_path, {"type": "bigint"})
    _load(catalog, widened, _rows(D2, [3_000_000_000], first=2), D2, "r2")

    load_partition(
        catalog,
        widened,
        widened.table("lots"),
        late,
        accepted_rows(Lake(widened), report),
        run_id="late",
    )

    raw = catalog.load_table(RAW)
    assert raw.schema().find_field("value").field_type == LongType()
    assert _values(raw) == {"L0": 7, "L1": 8, "L2": 3_000_000_000}


def _schema(table: TableConfig, value: pa.DataType) -> pa.Schema:
    schema = arrow_schema(table)
    index = schema.get_field_index("value")
    return schema.set(index, pa.field("value", value))


ILLEGAL = {
    "bigint → int": ({"type": "bigint"}, {"type": "int"}, 5, "long", "int"),
    "string → int": ({"type": "string"}, {"type": "int"}, 5, "string", "int"),
    "int → string": ({"type": "int"}, {"type": "string"}, "5", "int", "string"),
    "double → decimal": (
        {"type": "double"},
        {"type": "decimal", "precision": 12, "scale": 2},
        Decimal("5.00"),
        "double",
        "decimal(12, 2)",
    ),
    "decimal scale 2 → 4": (
        {"type": "decimal", "precision": 12, "scale": 2},
        {"type": "decimal", "precision": 14, "scale": 4},
        Decimal("5.0000"),
        "decimal(12, 2)",
        "decimal(14, 4)",
    ),
    "decimal precision down": (
        {"type": "decimal", "precision": 12, "scale": 2},
        {"type": "decimal", "precision": 10, "scale": 2},
        Decimal("5.00"),
        "decimal(12, 2)",
        "decimal(10, 2)",
    ),
}
FIRST = {
    "bigint": 4,
    "int": 4,
    "string": "4",
    "double": 4.0,
}


@pytest.mark.parametrize("change", sorted(ILLEGAL))
def test_an_illegal_type_change_is_refused_before_anything_is_written(
    tmp_path: Path, change: str
) -> None:
    """Loaded without validation (whose drift check stops such a change when
    the previous extract is still in the lake): the load's own guard."""
    before, after, value, old_type, new_type = ILLEGAL[change]
    tenant = _tenant(tmp_path, before)
    catalog = open_catalog(tenant)
    first = FIRST.get(before["type"], Decimal("4.00"))
    _load(catalog, tenant, _rows(D1, [first]), D1, "r1")
    raw = catalog.load_table(RAW)
    schema, snapshot, files = raw.schema(), raw.current_snapshot(), _data_files(raw)

    changed = _tenant(tmp_path, after)
    table = changed.table("lots")
    rows = _rows(D2, [value], first=1)
    manifest = _manifest(changed, rows, D2, "r2")
    with pytest.raises(SchemaChangeRefused) as caught:
        load_partition(
            catalog, changed, table, manifest, read_extract(manifest), run_id="r2"
        )

    message = str(caught.value)
    assert message.startswith("[tenant=acme table=lots column=value] "), message
    assert f"column 'value' from {old_type} (raw) to {new_type} (this load)" in message
    assert isinstance(caught.value, LoadRejected)
    assert caught.value.terminal
    raw = catalog.load_table(RAW)
    assert raw.schema() == schema
    assert raw.current_snapshot() == snapshot
    assert _data_files(raw) == files


def test_the_promotion_rule_is_iceberg_s_and_no_wider() -> None:
    assert promotes(IntegerType(), LongType())
    assert promotes(FloatType(), DoubleType())
    assert promotes(DecimalType(10, 2), DecimalType(11, 2))
    assert not promotes(LongType(), IntegerType())
    assert not promotes(DoubleType(), FloatType())
    assert not promotes(DecimalType(10, 2), DecimalType(12, 3))  # PyIceberg allows
    assert not promotes(DecimalType(10, 2), DecimalType(10, 2))
    assert not promotes(IntegerType(), DoubleType())
