"""`pattern`: a non-null string matches a regular expression as a whole (bound)."""

from __future__ import annotations

from mozart_etl.config.models import PatternRule
from mozart_etl.validate.rules.base import Check, RuleContext, quote


def compile_pattern(rule: PatternRule, context: RuleContext) -> Check:
    column = quote(rule.column)
    return Check(
        name=rule.name or f"pattern({rule.column})",
        kind=rule.type,
        severity=rule.severity,
        sql=f"{column} IS NOT NULL AND NOT regexp_full_match({column}, ?)",
        params=[rule.pattern],
        max_failures=rule.max_failures,
        max_fraction=rule.max_fraction,
    )
