"""`decimal_fits` (implicit, one per decimal column): a value has at most
P - S integer digits, as `decimal(P,S)` promises.

Why a rule: a source whose numbers are wider than declared (a PostgreSQL
`numeric` without a declared shape, a 21-digit integer in `decimal(38,18)`)
passes the extract (its parser checks only what fits 128 bits) and the
Parquet files, then fails the load with PyIceberg's serializer error ("Cannot
serialize value, precision of value is greater than precision of type") and
no column named. Checked here, the row is quarantined and the run says which
column and what it allows.

Counted on the text of the integer part: `abs(x) >= 10^(P-S)` cannot be
written in `decimal(P,S)` itself (the bound is exactly what does not fit),
and as a double it is inexact next to the bound.
"""

from __future__ import annotations

from mozart_etl.config.constants import ColumnType, Severity
from mozart_etl.config.models import ColumnConfig, TableConfig
from mozart_etl.validate.rules.base import Check, quote

KIND = "decimal_fits"


def decimal_fits_checks(table: TableConfig) -> list[Check]:
    """One error check per declared decimal column, no tolerance (like the
    other implicit rules: the declaration itself is broken by such a row)."""
    return [
        _check(column) for column in table.columns if column.type == ColumnType.DECIMAL
    ]


def _check(column: ColumnConfig) -> Check:
    assert column.precision is not None and column.scale is not None
    digits = column.precision - column.scale
    whole = f"trunc(abs({quote(column.name)}))"
    shape = f"decimal({column.precision},{column.scale})"
    return Check(
        name=f"{KIND}({column.name})",
        kind=KIND,
        severity=Severity.ERROR,
        sql=(
            f"{whole} IS NOT NULL AND {whole} <> 0 "
            f"AND length(CAST({whole} AS VARCHAR)) > {digits}"
        ),
        column=column.name,
        broken=(
            f"more than {digits} integer digit(s): {column.name!r} is declared {shape}"
        ),
    )
