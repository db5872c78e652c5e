"""`freshness`: the newest cursor value is recent enough (a table-level rule).

The threshold is the extract window's end minus `max_age_hours`, as a value of
the cursor's type (see `calendar.cursor_bound`: a naive timestamp holds UTC
wall time; a date compares as the UTC date of the threshold). An empty extract
has no newest value and fails.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from mozart_etl.calendar import cursor_bound
from mozart_etl.config.constants import ColumnType
from mozart_etl.config.models import FreshnessRule
from mozart_etl.validate.rules.base import Check, RuleContext, RuleScope, quote


def compile_freshness(rule: FreshnessRule, context: RuleContext) -> Check:
    cursor = context.table.cursor
    if cursor is None:  # rejected at config load; kept for type narrowing
        raise ValueError("freshness needs the table's `cursor` column")
    kind = context.table.column(cursor).type
    threshold = context.window_end - timedelta(hours=rule.max_age_hours)
    bound: date | datetime = (
        threshold.date() if kind == ColumnType.DATE else cursor_bound(threshold, kind)
    )
    newest = f"max({quote(cursor)})"
    return Check(
        name=rule.name or f"freshness({cursor})",
        kind=rule.type,
        severity=rule.severity,
        scope=RuleScope.TABLE,
        sql=f"{newest} IS NULL OR {newest} < ?",
        params=[bound],
        observed=newest,
        expected=f"max({cursor}) >= {bound.isoformat()}",
    )
