"""`not_null`: each listed column has a value."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mozart_etl.config.base import SourceIdent
from mozart_etl.core.identifiers import quote_identifier
from mozart_etl.validate.rules.base import RuleBase, RuleContext
from mozart_etl.validate.rules.checks import RowPredicate


class NotNullRule(RuleBase):
    type: Literal["not_null"]
    columns: list[SourceIdent] = Field(min_length=1)

    def columns_read(self) -> list[str]:
        return list(self.columns)

    def compile(self, context: RuleContext) -> RowPredicate:
        failing = " OR ".join(
            f"{quote_identifier(column)} IS NULL" for column in self.columns
        )
        return RowPredicate(
            name=self.name or f"not_null({','.join(self.columns)})",
            kind=self.type,
            severity=self.severity,
            sql=failing,
            max_failures=self.max_failures,
            max_fraction=self.max_fraction,
        )
