"""`unique`: no two rows share the listed columns (every duplicate fails).

NULLs compare equal, as in a GROUP BY. Evaluated as a join of the extract on
its duplicated keys (a spilling hash aggregate over the key columns only), so
memory does not grow with the extract's width.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mozart_etl.config.base import SourceIdent
from mozart_etl.validate.rules.base import RuleBase, RuleContext
from mozart_etl.validate.rules.checks import DuplicateKey


class UniqueRule(RuleBase):
    type: Literal["unique"]
    columns: list[SourceIdent] = Field(min_length=1)

    def columns_read(self) -> list[str]:
        return list(self.columns)

    def compile(self, context: RuleContext) -> DuplicateKey:
        return DuplicateKey(
            name=self.name or f"unique({','.join(self.columns)})",
            kind=self.type,
            severity=self.severity,
            key=list(self.columns),
            max_failures=self.max_failures,
            max_fraction=self.max_fraction,
        )
