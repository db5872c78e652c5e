"""`not_null`: each listed column has a value."""

from __future__ import annotations

from mozart_etl.config.models import NotNullRule
from mozart_etl.validate.rules.base import Check, RuleContext, quote


def compile_not_null(rule: NotNullRule, context: RuleContext) -> Check:
    failing = " OR ".join(f"{quote(column)} IS NULL" for column in rule.columns)
    return Check(
        name=rule.name or f"not_null({','.join(rule.columns)})",
        kind=rule.type,
        severity=rule.severity,
        sql=failing,
        max_failures=rule.max_failures,
        max_fraction=rule.max_fraction,
    )
