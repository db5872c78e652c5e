"""`expression`: a row-level SQL condition; like a CHECK constraint, NULL passes."""

from __future__ import annotations

from mozart_etl.config.models import ExpressionRule
from mozart_etl.validate.rules.base import Check, RuleContext


def compile_expression(rule: ExpressionRule, context: RuleContext) -> Check:
    return Check(
        name=rule.name,
        kind=rule.type,
        severity=rule.severity,
        sql=f"NOT coalesce(({rule.expr}), TRUE)",
        max_failures=rule.max_failures,
        max_fraction=rule.max_fraction,
    )
