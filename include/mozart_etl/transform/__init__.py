"""Per-table Python transforms: a tenant's own function between validate and load.

A table declares `transform: <module>:<function>`; the module is a file in the
tenant's folder (`tenants/<tid>/transforms.py`). The function takes an iterator
of `pyarrow.RecordBatch` (the validated, accepted rows) and yields record
batches, so memory stays flat however large the day is::

    from mozart_etl.transform import output_schema

    def normalise(batches):
        for batch in batches:
            yield batch  # …changed

Its output must have the table's declared columns (names, types, order free),
unless the function declares its own with `@output_schema(pa.schema(...))`.
This module stays light (no pyarrow): the DAG parse path imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import pyarrow as pa

F = TypeVar("F", bound=Callable[..., object])

SCHEMA_ATTRIBUTE = "mozart_output_schema"


def output_schema(schema: pa.Schema) -> Callable[[F], F]:
    """Declare a transform's output schema (default: the table's declared columns).

    A field declared `nullable=False` must hold no nulls.
    """

    def declare(function: F) -> F:
        setattr(function, SCHEMA_ATTRIBUTE, schema)
        return function

    return declare


__all__ = ["SCHEMA_ATTRIBUTE", "output_schema"]
