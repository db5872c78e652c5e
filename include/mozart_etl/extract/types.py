"""Declared column types → Arrow, and DB-API values → exactly typed Arrow arrays."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pyarrow as pa

from mozart_etl.config.constants import ColumnType
from mozart_etl.config.models import ColumnConfig, TableConfig

_SIMPLE: dict[ColumnType, pa.DataType] = {
    ColumnType.STRING: pa.string(),
    ColumnType.BIGINT: pa.int64(),
    ColumnType.INT: pa.int32(),
    ColumnType.DOUBLE: pa.float64(),
    ColumnType.BOOLEAN: pa.bool_(),
    ColumnType.DATE: pa.date32(),
    ColumnType.TIMESTAMP: pa.timestamp("us"),
    ColumnType.TIMESTAMPTZ: pa.timestamp("us", tz="UTC"),
}


def arrow_type(column: ColumnConfig) -> pa.DataType:
    if column.type == ColumnType.DECIMAL:
        return pa.decimal128(column.precision, column.scale)
    return _SIMPLE[column.type]


def arrow_schema(table: TableConfig) -> pa.Schema:
    return pa.schema([pa.field(c.name, arrow_type(c)) for c in table.columns])


def to_arrow_column(values: Sequence[Any], target: pa.DataType) -> pa.Array:
    """Build one column, converting what drivers return (text from SQLite, …).

    Conversions are exact: text and floats become decimals through their
    decimal text, never through binary floating point.
    """
    sample = next((value for value in values if value is not None), None)
    if sample is None:
        return pa.nulls(len(values), target)
    if isinstance(sample, str) and not pa.types.is_string(target):
        return pa.array(values, pa.string()).cast(target)
    if isinstance(sample, float) and pa.types.is_decimal(target):
        return pa.array(
            [None if v is None else Decimal(repr(v)) for v in values], target
        )
    if (
        isinstance(sample, int)
        and not isinstance(sample, bool)  # drivers with a real bool type
        and pa.types.is_boolean(target)
    ):
        # 0/1 from SQLite and MySQL's TINYINT(1)
        return pa.array(values, pa.int64()).cast(target)
    return pa.array(values, target)
