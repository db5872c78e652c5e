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

from mozart_etl.config.constants import ColumnType
from mozart_etl.config.models import ColumnConfig, DecimalFitsRule, TableConfig
from mozart_etl.validate.rules.base import Check, RuleContext, quote

KIND = "decimal_fits"


def decimal_fits_checks(table: TableConfig) -> list[Check]:
    """One error check per decimal column with no rule of its own, no
    tolerance (like the other implicit rules: the declaration itself is broken
    by such a row)."""
    declared = {
        rule.column for rule in table.rules if isinstance(rule, DecimalFitsRule)
    }
    return [
        _check(column, DecimalFitsRule(type=KIND, column=column.name))
        for column in table.columns
        if column.type == ColumnType.DECIMAL and column.name not in declared
    ]


def compile_decimal_fits(rule: DecimalFitsRule, context: RuleContext) -> Check:
    """A declared `decimal_fits`: the column's own severity and tolerance."""
    return _check(context.table.column(rule.column), rule)


def _check(column: ColumnConfig, rule: DecimalFitsRule) -> Check:
    assert column.precision is not None and column.scale is not None
    digits = column.precision - column.scale
    whole = f"trunc(abs({quote(column.name)}))"
    shape = f"decimal({column.precision},{column.scale})"
    return Check(
        name=rule.name or f"{KIND}({column.name})",
        kind=KIND,
        severity=rule.severity,
        sql=(
            f"{whole} IS NOT NULL AND {whole} <> 0 "
            f"AND length(CAST({whole} AS VARCHAR)) > {digits}"
        ),
        column=column.name,
        broken=(
            f"more than {digits} integer digit(s): {column.name!r} is declared {shape}"
        ),
        max_failures=rule.max_failures,
        max_fraction=rule.max_fraction,
    )
