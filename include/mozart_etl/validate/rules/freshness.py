"""`freshness`: the newest cursor value is recent enough (a table-level rule).

The threshold is the extract window's end minus `max_age_hours`, as a value of
the cursor's type (see `calendar.cursor_bound`: a naive timestamp holds UTC
wall time; a date compares as the UTC date of the threshold). An empty extract
has no newest value and fails.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from mozart_etl.config.constants import ColumnType
from mozart_etl.core.identifiers import quote_identifier
from mozart_etl.validate.rules.base import RuleContext, TableRuleBase
from mozart_etl.validate.rules.checks import TableAggregate

if TYPE_CHECKING:
    from mozart_etl.config.models import TableConfig


class FreshnessRule(TableRuleBase):
    """The newest cursor value is at most `max_age_hours` before the window's end
    (the production day's end for full-refresh tables); an empty extract fails."""

    type: Literal["freshness"]
    max_age_hours: float = Field(gt=0)

    def check_types(self, table: TableConfig, where: str) -> None:
        if table.cursor is None:
            raise ValueError(f"{where}: freshness needs the table's `cursor` column")

    def compile(self, context: RuleContext) -> TableAggregate:
        # Imported here: calendar imports the config package, which imports
        # this module (see validate/rules/base.py).
        from mozart_etl.core.calendar import cursor_bound

        cursor = context.table.cursor
        if cursor is None:  # rejected at config load; kept for type narrowing
            raise ValueError("freshness needs the table's `cursor` column")
        kind = context.table.column(cursor).type
        threshold = context.window_end - timedelta(hours=self.max_age_hours)
        bound: date | datetime = (
            threshold.date()
            if kind == ColumnType.DATE
            else cursor_bound(threshold, kind)
        )
        newest = f"max({quote_identifier(cursor)})"
        return TableAggregate(
            name=self.name or f"freshness({cursor})",
            kind=self.type,
            severity=self.severity,
            sql=f"{newest} IS NULL OR {newest} < ?",
            params=[bound],
            observed=newest,
            expected=f"max({cursor}) >= {bound.isoformat()}",
        )
