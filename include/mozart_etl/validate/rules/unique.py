"""`unique`: no two rows share the listed columns (every duplicate fails)."""

from __future__ import annotations

from mozart_etl.config.models import UniqueRule
from mozart_etl.validate.rules.base import Check, quote


def compile_unique(rule: UniqueRule) -> Check:
    key = ", ".join(quote(column) for column in rule.columns)
    return Check(
        name=rule.name or f"unique({','.join(rule.columns)})",
        kind=rule.type,
        severity=rule.severity,
        sql=f"count(*) OVER (PARTITION BY {key}) > 1",
        max_failures=rule.max_failures,
        max_fraction=rule.max_fraction,
    )
