"""`expression`: a row-level SQL condition; like a CHECK constraint, NULL passes.

Its columns are not known before DuckDB binds it: an expression naming an
unknown column fails at validate with a ConfigError naming the rule.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mozart_etl.config.base import Name
from mozart_etl.validate.rules.base import RuleBase, RuleContext
from mozart_etl.validate.rules.checks import RowPredicate


class ExpressionRule(RuleBase):
    """A SQL boolean over one row (DuckDB dialect); rows where it is false fail."""

    type: Literal["expression"]
    name: Name
    expr: str = Field(min_length=1)

    def compile(self, context: RuleContext) -> RowPredicate:
        return RowPredicate(
            name=self.name,
            kind=self.type,
            severity=self.severity,
            sql=f"NOT coalesce(({self.expr}), TRUE)",
            max_failures=self.max_failures,
            max_fraction=self.max_fraction,
        )
