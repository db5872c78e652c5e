"""`sequence`: rows of a group follow each other in time (MES route order).

Evaluated like `unique`: one windowed query over the extract (DuckDB reads its
few columns, spilling under the memory limit) finds the primary keys of the
broken rows, then the flag query marks the rows with those keys. A row breaks the
rule when the row before it in its group (`order_by`) has no `previous_end`,
or when its `start` is earlier than that end.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mozart_etl.config.base import SourceIdent
from mozart_etl.core.identifiers import quote_identifier
from mozart_etl.validate.rules.base import RuleBase, RuleContext
from mozart_etl.validate.rules.checks import BrokenKeys


class SequenceRule(RuleBase):
    """Within each `partition_by` group taken in `order_by` order, a row's `start`
    is at or after the previous row's `previous_end`, which is set (route order:
    a lot's next step arrives at or after the previous step's track-out). The
    later row of a broken pair fails. Checked among the extract's rows."""

    type: Literal["sequence"]
    partition_by: list[SourceIdent] = Field(min_length=1)
    order_by: SourceIdent
    start: SourceIdent
    previous_end: SourceIdent

    def columns_read(self) -> list[str]:
        return [*self.partition_by, self.order_by, self.start, self.previous_end]

    def compile(self, context: RuleContext) -> BrokenKeys:
        keys = list(context.table.primary_key)
        group = ", ".join(quote_identifier(c) for c in self.partition_by)
        order = quote_identifier(self.order_by)
        key_list = ", ".join(quote_identifier(c) for c in keys)
        start, end = quote_identifier(self.start), quote_identifier(self.previous_end)
        window = f"OVER (PARTITION BY {group} ORDER BY {order})"
        sql = (
            f"SELECT {key_list} FROM (SELECT {key_list}, {start} AS s, "
            f"lag({end}) {window} AS previous_end, "
            f"row_number() {window} AS n FROM extract_rows) "
            "WHERE n > 1 AND (previous_end IS NULL OR s < previous_end)"
        )
        return BrokenKeys(
            name=self.name or f"sequence({','.join(self.partition_by)})",
            kind=self.type,
            severity=self.severity,
            sql=sql,
            key=keys,
            max_failures=self.max_failures,
            max_fraction=self.max_fraction,
        )
