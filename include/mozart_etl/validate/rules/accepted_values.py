"""`accepted_values`: a non-null value must be one of a list (values are bound)."""

from __future__ import annotations

from mozart_etl.config.models import AcceptedValuesRule
from mozart_etl.validate.rules.base import Check, RuleContext, quote


def compile_accepted_values(rule: AcceptedValuesRule, context: RuleContext) -> Check:
    placeholders = ", ".join("?" for _ in rule.values)
    column = quote(rule.column)
    return Check(
        name=rule.name or f"accepted_values({rule.column})",
        kind=rule.type,
        severity=rule.severity,
        sql=f"{column} IS NOT NULL AND {column} NOT IN ({placeholders})",
        params=list(rule.values),
        max_failures=rule.max_failures,
        max_fraction=rule.max_fraction,
    )
