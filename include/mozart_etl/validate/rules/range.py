"""`range`: a non-null value lies within min/max (inclusive unless told)."""

from __future__ import annotations

from mozart_etl.config.models import RangeRule
from mozart_etl.validate.rules.base import Check, Param, RuleContext, quote


def compile_range(rule: RangeRule, context: RuleContext) -> Check:
    column = quote(rule.column)
    below, above = ("<", ">") if rule.inclusive else ("<=", ">=")
    conditions: list[str] = []
    params: list[Param] = []
    if rule.min is not None:
        conditions.append(f"{column} {below} ?")
        params.append(rule.min)
    if rule.max is not None:
        conditions.append(f"{column} {above} ?")
        params.append(rule.max)
    return Check(
        name=rule.name or f"range({rule.column})",
        kind=rule.type,
        severity=rule.severity,
        sql=f"{column} IS NOT NULL AND ({' OR '.join(conditions)})",
        params=params,
        max_failures=rule.max_failures,
        max_fraction=rule.max_fraction,
    )
