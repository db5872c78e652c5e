"""`row_count`: the extract holds between min and max rows (a table-level rule)."""

from __future__ import annotations

from mozart_etl.config.models import RowCountRule
from mozart_etl.validate.rules.base import Check, RuleContext, RuleScope


def compile_row_count(rule: RowCountRule, context: RuleContext) -> Check:
    conditions: list[str] = []
    params: list[int] = []
    expected: list[str] = []
    if rule.min is not None:
        conditions.append("count(*) < ?")
        params.append(rule.min)
        expected.append(f">= {rule.min}")
    if rule.max is not None:
        conditions.append("count(*) > ?")
        params.append(rule.max)
        expected.append(f"<= {rule.max}")
    return Check(
        name=rule.name or "row_count",
        kind=rule.type,
        severity=rule.severity,
        scope=RuleScope.TABLE,
        sql=" OR ".join(conditions),
        params=params,
        observed="count(*)",
        expected=f"rows {' and '.join(expected)}",
    )
