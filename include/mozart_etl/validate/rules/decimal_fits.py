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

from typing import TYPE_CHECKING, Literal

from mozart_etl.config.base import SourceIdent
from mozart_etl.config.constants import ColumnType
from mozart_etl.core.identifiers import quote_identifier
from mozart_etl.validate.rules.base import RuleBase, RuleContext
from mozart_etl.validate.rules.checks import RowPredicate

if TYPE_CHECKING:
    import pyarrow as pa

    from mozart_etl.config.models import ColumnConfig, TableConfig

KIND = "decimal_fits"


class DecimalFitsRule(RuleBase):
    """A decimal column's values have at most P - S integer digits, as
    `decimal(P,S)` promises. Implicit on every decimal column with no
    tolerance; declared, it gives one column a tolerance (`max_failures`,
    `max_fraction`: rows past the bound are quarantined, the run goes on) or
    `severity: warn`."""

    type: Literal["decimal_fits"]
    column: SourceIdent

    def columns_read(self) -> list[str]:
        return [self.column]

    def check_types(self, table: TableConfig, where: str) -> None:
        kind = table.column(self.column).type
        if kind != ColumnType.DECIMAL:
            raise ValueError(
                f"{where}: decimal_fits needs a decimal column; {self.column!r} is "
                f"{kind}"
            )

    def compile(self, context: RuleContext) -> DecimalFitsPredicate:
        """A declared `decimal_fits`: the column's own severity and tolerance."""
        return self._check(context.table.column(self.column))

    def _check(self, column: ColumnConfig) -> DecimalFitsPredicate:
        assert column.precision is not None and column.scale is not None
        digits = column.precision - column.scale
        whole = f"trunc(abs({quote_identifier(column.name)}))"
        shape = f"decimal({column.precision},{column.scale})"
        return DecimalFitsPredicate(
            name=self.name or f"{KIND}({column.name})",
            kind=KIND,
            severity=self.severity,
            sql=(
                f"{whole} IS NOT NULL AND {whole} <> 0 "
                f"AND length(CAST({whole} AS VARCHAR)) > {digits}"
            ),
            column=column.name,
            broken=(
                f"more than {digits} integer digit(s): {column.name!r} is "
                f"declared {shape}"
            ),
            max_failures=self.max_failures,
            max_fraction=self.max_fraction,
        )


class DecimalFitsPredicate(RowPredicate):
    """Evaluated as any row predicate, on an extract that holds its column as a
    decimal."""

    def runs_on(self, schema: pa.Schema) -> bool:
        """A column dropped or retyped in the extract is drift, which blocks and
        names it (a check that cannot bind would stop validation as a config
        error instead)."""
        # Imported here: rule modules load with the config schema, on the DAG
        # parse path, where pyarrow must not be imported.
        import pyarrow as pa

        column = self.column
        if column is None:
            return True
        return column in schema.names and pa.types.is_decimal(schema.field(column).type)


def decimal_fits_checks(table: TableConfig) -> list[RowPredicate]:
    """One error check per decimal column with no rule of its own, no
    tolerance (like the other implicit rules: the declaration itself is broken
    by such a row)."""
    declared = {
        rule.column for rule in table.rules if isinstance(rule, DecimalFitsRule)
    }
    return [
        DecimalFitsRule(type="decimal_fits", column=column.name)._check(column)
        for column in table.columns
        if column.type == ColumnType.DECIMAL and column.name not in declared
    ]
