"""`range`: a non-null value lies within min/max (inclusive unless told).

The bounds are numbers, dates or timestamps, and must suit the column: a
number for a numeric column, a date for a date, a naive timestamp or a date for
a timestamp, a timestamp with an offset for a timestamptz.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Literal

from pydantic import model_validator

from mozart_etl.config.base import NUMERIC_TYPES, SourceIdent
from mozart_etl.config.constants import ColumnType
from mozart_etl.core.identifiers import quote_identifier
from mozart_etl.validate.rules.base import RuleBase, RuleContext
from mozart_etl.validate.rules.checks import Param, RowPredicate

if TYPE_CHECKING:
    from mozart_etl.config.models import TableConfig

# A range bound: a number, a date, or a timestamp (with an offset for timestamptz).
Bound = float | datetime | date

# Which bound kinds a range on a column of each type takes.
_RANGE_BOUNDS: dict[ColumnType, set[str]] = {
    **{kind: {"number"} for kind in NUMERIC_TYPES},
    ColumnType.DATE: {"date"},
    ColumnType.TIMESTAMP: {"timestamp", "date"},
    ColumnType.TIMESTAMPTZ: {"aware timestamp"},
}


class RangeRule(RuleBase):
    """A non-null value lies within min/max; the bounds' type must suit the column."""

    type: Literal["range"]
    column: SourceIdent
    min: Bound | None = None
    max: Bound | None = None
    inclusive: bool = True

    @model_validator(mode="after")
    def _bounds(self) -> RangeRule:
        if self.min is None and self.max is None:
            raise ValueError("a range rule needs `min`, `max` or both")
        if self.min is None or self.max is None:
            return self
        if _bound_kind(self.min) != _bound_kind(self.max):
            raise ValueError(
                f"range on {self.column!r}: min {self.min!r} and max {self.max!r} "
                "are not of the same type"
            )
        if self.min > self.max:  # type: ignore[operator]
            raise ValueError(
                f"range on {self.column!r}: min {self.min} > max {self.max}"
            )
        return self

    def columns_read(self) -> list[str]:
        return [self.column]

    def check_types(self, table: TableConfig, where: str) -> None:
        kind = table.column(self.column).type
        allowed = _RANGE_BOUNDS.get(kind)
        if allowed is None:
            raise ValueError(
                f"{where}: range needs a numeric, date or timestamp "
                f"column; {self.column!r} is {kind}"
            )
        for label, bound in (("min", self.min), ("max", self.max)):
            if bound is not None and _bound_kind(bound) not in allowed:
                raise ValueError(
                    f"{where}: {label} {bound!r} is a {_bound_kind(bound)}, but "
                    f"{self.column!r} is {kind} (takes: {', '.join(sorted(allowed))})"
                )

    def compile(self, context: RuleContext) -> RowPredicate:
        column = quote_identifier(self.column)
        below, above = ("<", ">") if self.inclusive else ("<=", ">=")
        conditions: list[str] = []
        params: list[Param] = []
        if self.min is not None:
            conditions.append(f"{column} {below} ?")
            params.append(self.min)
        if self.max is not None:
            conditions.append(f"{column} {above} ?")
            params.append(self.max)
        return RowPredicate(
            name=self.name or f"range({self.column})",
            kind=self.type,
            severity=self.severity,
            sql=f"{column} IS NOT NULL AND ({' OR '.join(conditions)})",
            params=params,
            max_failures=self.max_failures,
            max_fraction=self.max_fraction,
        )


def _bound_kind(value: Bound) -> str:
    if isinstance(value, datetime):
        return "aware timestamp" if value.utcoffset() is not None else "timestamp"
    return "date" if isinstance(value, date) else "number"
