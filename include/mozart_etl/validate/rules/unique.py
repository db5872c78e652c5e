"""`unique`: no two rows share the listed columns (every duplicate fails).

NULLs compare equal, as in a GROUP BY. Evaluated as a join of the extract on
its duplicated keys (a spilling hash aggregate over the key columns only), so
memory does not grow with the extract's width.
"""

from __future__ import annotations

from mozart_etl.config.models import UniqueRule
from mozart_etl.validate.rules.base import Check, RuleContext


def compile_unique(rule: UniqueRule, context: RuleContext) -> Check:
    return Check(
        name=rule.name or f"unique({','.join(rule.columns)})",
        kind=rule.type,
        severity=rule.severity,
        duplicate_key=list(rule.columns),
        max_failures=rule.max_failures,
        max_fraction=rule.max_fraction,
    )
