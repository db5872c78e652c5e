"""`accepted_values`: a non-null value must be one of a list (values are bound)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from mozart_etl.config.base import NUMERIC_TYPES, SourceIdent
from mozart_etl.config.constants import ColumnType
from mozart_etl.core.identifiers import quote_identifier
from mozart_etl.validate.rules.base import RuleBase, RuleContext
from mozart_etl.validate.rules.checks import RowPredicate

if TYPE_CHECKING:
    from mozart_etl.config.models import TableConfig

Value = str | int | float | bool


class AcceptedValuesRule(RuleBase):
    type: Literal["accepted_values"]
    column: SourceIdent
    values: list[Value] = Field(min_length=1)

    def columns_read(self) -> list[str]:
        return [self.column]

    def check_types(self, table: TableConfig, where: str) -> None:
        """Each value must have the column's type: YAML reads `1` as a number,
        which never equals a string column's '1'."""
        kind = table.column(self.column).type
        wrong = [v for v in self.values if not _value_fits(v, kind)]
        if wrong:
            raise ValueError(
                f"{where}: values {wrong!r} do not fit {kind} column {self.column!r}"
                + (" (quote them in YAML)" if kind == ColumnType.STRING else "")
            )

    def compile(self, context: RuleContext) -> RowPredicate:
        placeholders = ", ".join("?" for _ in self.values)
        column = quote_identifier(self.column)
        return RowPredicate(
            name=self.name or f"accepted_values({self.column})",
            kind=self.type,
            severity=self.severity,
            sql=f"{column} IS NOT NULL AND {column} NOT IN ({placeholders})",
            params=list(self.values),
            max_failures=self.max_failures,
            max_fraction=self.max_fraction,
        )


def _value_fits(value: Value, kind: ColumnType) -> bool:
    if kind == ColumnType.STRING:
        return isinstance(value, str)
    if kind == ColumnType.BOOLEAN:
        return isinstance(value, bool)
    if isinstance(value, bool) or kind not in NUMERIC_TYPES:
        return False
    if kind in (ColumnType.INT, ColumnType.BIGINT):
        return isinstance(value, int)
    return isinstance(value, int | float)
