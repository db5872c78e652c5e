"""`sequence`: rows of a group follow each other in time (MES route order).

Evaluated like `unique`: one windowed query over the extract (DuckDB reads its
few columns, spilling under the memory limit) finds the primary keys of the
broken rows, then the flag query marks the rows with those keys. A row breaks the
rule when the row before it in its group (`order_by`) has no `previous_end`,
or when its `start` is earlier than that end.
"""

from __future__ import annotations

from mozart_etl.config.models import SequenceRule
from mozart_etl.validate.rules.base import Check, RuleContext, quote


def compile_sequence(rule: SequenceRule, context: RuleContext) -> Check:
    keys = list(context.table.primary_key)
    group = ", ".join(quote(c) for c in rule.partition_by)
    order = quote(rule.order_by)
    key_list = ", ".join(quote(c) for c in keys)
    window = f"OVER (PARTITION BY {group} ORDER BY {order})"
    sql = (
        f"SELECT {key_list} FROM (SELECT {key_list}, {quote(rule.start)} AS s, "
        f"lag({quote(rule.previous_end)}) {window} AS previous_end, "
        f"row_number() {window} AS n FROM extract_rows) "
        "WHERE n > 1 AND (previous_end IS NULL OR s < previous_end)"
    )
    return Check(
        name=rule.name or f"sequence({','.join(rule.partition_by)})",
        kind=rule.type,
        severity=rule.severity,
        flag_rows_sql=sql,
        flag_key=keys,
        max_failures=rule.max_failures,
        max_fraction=rule.max_fraction,
    )
