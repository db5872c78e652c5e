"""`row_count`: the extract holds between min and max rows (a table-level rule)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from mozart_etl.validate.rules.base import RuleContext, TableRuleBase
from mozart_etl.validate.rules.checks import Param, TableAggregate


class RowCountRule(TableRuleBase):
    """The extract holds between `min` and `max` rows (inclusive)."""

    type: Literal["row_count"]
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _bounds(self) -> RowCountRule:
        if self.min is None and self.max is None:
            raise ValueError("a row_count rule needs `min`, `max` or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"row_count: min {self.min} > max {self.max}")
        return self

    def compile(self, context: RuleContext) -> TableAggregate:
        conditions: list[str] = []
        params: list[Param] = []
        expected: list[str] = []
        if self.min is not None:
            conditions.append("count(*) < ?")
            params.append(self.min)
            expected.append(f">= {self.min}")
        if self.max is not None:
            conditions.append("count(*) > ?")
            params.append(self.max)
            expected.append(f"<= {self.max}")
        return TableAggregate(
            name=self.name or "row_count",
            kind=self.type,
            severity=self.severity,
            sql=" OR ".join(conditions),
            params=params,
            observed="count(*)",
            expected=f"rows {' and '.join(expected)}",
        )
