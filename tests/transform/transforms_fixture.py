"""The test tenant's transforms.py (copied into its folder by the tests)."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc

from mozart_etl.transform import output_schema

Batches = Iterator[pa.RecordBatch]


def _ids(batch: pa.RecordBatch, function: object) -> pa.RecordBatch:
    index = batch.schema.get_field_index("equipment_id")
    return batch.set_column(index, "equipment_id", function(batch.column(index)))


def normalise(batches: Batches) -> Batches:
    for batch in batches:
        yield _ids(batch, lambda ids: pc.utf8_upper(pc.utf8_trim_whitespace(ids)))


def lower(batches: Batches) -> Batches:
    for batch in batches:
        yield _ids(batch, lambda ids: pc.utf8_lower(pc.utf8_trim_whitespace(ids)))


def explode(batches: Batches) -> Batches:
    for index, batch in enumerate(batches):
        if index == 1:
            raise ValueError("vendor status 0x7f cannot be decoded")
        yield batch


def wrong_type(batches: Batches) -> Batches:
    for batch in batches:
        index = batch.schema.get_field_index("event_id")
        yield batch.set_column(index, "event_id", batch.column(index).cast(pa.string()))


def drops_column(batches: Batches) -> Batches:
    for batch in batches:
        yield batch.drop_columns(["value"])


def null_ids(batches: Batches) -> Batches:
    for batch in batches:
        yield _ids(batch, lambda ids: pa.nulls(len(ids), pa.string()))


def returns_table(batches: Batches) -> pa.Table:
    return pa.Table.from_batches(list(batches))


GROUPED = pa.schema(
    [
        pa.field("event_id", pa.int64(), nullable=False),
        pa.field("equipment_group", pa.string(), nullable=False),
        pa.field("equipment_id", pa.string()),
        pa.field("value", pa.float64()),
        pa.field("updated_at", pa.timestamp("us", tz="UTC")),
    ]
)


@output_schema(GROUPED)
def with_group(batches: Batches) -> Batches:
    """Adds `equipment_group` (the id's prefix); columns in another order."""
    for batch in batches:
        ids = pc.utf8_upper(pc.utf8_trim_whitespace(batch.column("equipment_id")))
        group = pc.list_element(pc.split_pattern(ids, "-"), 0)
        yield pa.RecordBatch.from_arrays(
            [
                batch.column("updated_at"),
                batch.column("value"),
                ids,
                group,
                batch.column("event_id"),
            ],
            names=[
                "updated_at",
                "value",
                "equipment_id",
                "equipment_group",
                "event_id",
            ],
        )


@output_schema(pa.schema([pa.field("event_id", pa.int64())]))
def keys_only(batches: Batches) -> Batches:
    for batch in batches:
        yield batch.select(["event_id"])
