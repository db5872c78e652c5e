"""Raw's schema follows the rows a load writes: added columns and Iceberg's
legal type promotions evolve it; any other type change is refused.

Iceberg can widen a column in place because every old data file still reads
as the new type: int → long, float → double, and a decimal's precision up at
the same scale (the spec's promotions). Anything else (long → int, string →
int, a decimal's scale) would make old files unreadable or values wrong, so
the load stops with `SchemaChangeRefused` (terminal: a retry finds the same
types) before it writes a data file, naming the column and both types.

Without this a widened column (a declaration changed from `int` to `bigint`)
reached PyIceberg's writer, which raised a bare `ValueError: Mismatch in
fields` that the task retried uselessly.

PyIceberg's own `promote` (used by `union_by_name`) is not the judge here: in
0.12 it lets a decimal change its scale (its check compares the old scale
with itself) and treats string and binary as interchangeable.
"""

from __future__ import annotations

import logging

import pyarrow as pa
from pyiceberg.io.pyarrow import _pyarrow_to_schema_without_ids
from pyiceberg.table import Table
from pyiceberg.types import (
    DecimalType,
    DoubleType,
    FloatType,
    IcebergType,
    IntegerType,
    LongType,
)

from mozart_etl.config.models import TableConfig, TenantConfig
from mozart_etl.core.errors import LoadRejected
from mozart_etl.extract.types import arrow_type

log = logging.getLogger(__name__)

PROMOTIONS = "int → long, float → double, decimal(P,S) → decimal(P',S) with P' > P"
"""Iceberg's legal promotions, as the refusal names them."""


class SchemaChangeRefused(LoadRejected):
    """A column's type changed in a way Iceberg cannot widen in place; raw is
    untouched (no data file written, schema unchanged)."""

    terminal = True


def promotes(old: IcebergType, new: IcebergType) -> bool:
    """Whether a column of type `old` may become `new` with old files still
    read exactly (Iceberg spec, "Schema Evolution": type promotion)."""
    if isinstance(old, IntegerType):
        return isinstance(new, LongType)
    if isinstance(old, FloatType):
        return isinstance(new, DoubleType)
    if isinstance(old, DecimalType) and isinstance(new, DecimalType):
        return new.scale == old.scale and new.precision > old.precision
    return False


def evolve_schema(
    iceberg_table: Table,
    tenant: TenantConfig,
    table: TableConfig,
    schema: pa.Schema,
) -> Table:
    """Raw's table with every column of `schema` at a type its rows fit.

    Added columns are added (optional: old rows read null); a column whose
    type widens legally is promoted; a column already wider than the rows'
    type stays (an extract written before the declaration widened, loaded
    late: its values fit) as long as the declaration still says raw's type.
    Every column is judged before anything changes, so a refused load leaves
    the schema as it was."""
    current = iceberg_table.schema()
    names = {field.name for field in current.fields}
    incoming = _pyarrow_to_schema_without_ids(
        schema, format_version=iceberg_table.format_version
    )
    promoted: dict[str, IcebergType] = {}
    refused: list[tuple[str, IcebergType, IcebergType]] = []
    for field in incoming.fields:
        if field.name not in names:
            continue
        old = current.find_field(field.name).field_type
        new = field.field_type
        if old == new:
            continue
        if promotes(old, new):
            promoted[field.name] = new
        elif not (promotes(new, old) and _declared_as(table, field.name, old)):
            refused.append((field.name, old, new))
    if refused:
        raise _refusal(tenant, table, refused)
    added = [field for field in schema if field.name not in names]
    if not promoted and not added:
        return iceberg_table
    namespace, name = tenant.raw_namespace, table.name
    with iceberg_table.update_schema() as update:
        if added:
            log.info(
                "evolving %s.%s: adding column(s) %s",
                namespace,
                name,
                [field.name for field in added],
            )
            update.union_by_name(pa.schema(added))
        for column, new in promoted.items():
            log.warning(
                "evolving %s.%s: column %r widened from %s to %s (old data files "
                "read as the new type)",
                namespace,
                name,
                column,
                current.find_field(column).field_type,
                new,
            )
            update.update_column(column, field_type=new)
    return iceberg_table.refresh()


def _declared_as(table: TableConfig, name: str, raw: IcebergType) -> bool:
    """Whether tenant.yaml declares column `name` as raw's type now (so rows of
    a narrower type come from an extract older than the declaration)."""
    if name not in table.column_names:
        return False
    declared = pa.schema([pa.field(name, arrow_type(table.column(name)))])
    return _pyarrow_to_schema_without_ids(declared).fields[0].field_type == raw


def _refusal(
    tenant: TenantConfig,
    table: TableConfig,
    refused: list[tuple[str, IcebergType, IcebergType]],
) -> SchemaChangeRefused:
    changes = "; ".join(
        f"column {column!r} from {old} (raw) to {new} (this load)"
        for column, old, new in refused
    )
    return SchemaChangeRefused(
        f"{tenant.raw_namespace}.{table.name} cannot change {changes}: Iceberg "
        f"widens a column only {PROMOTIONS}; nothing was written and raw's "
        "schema is unchanged. Declare the column with raw's type again in "
        "tenant.yaml, or load the new type under a new column name",
        tenant=tenant.tenant_id,
        table=table.name,
        column=refused[0][0] if len(refused) == 1 else None,
    )


__all__ = ["PROMOTIONS", "SchemaChangeRefused", "evolve_schema", "promotes"]
