"""Rule kinds, one module each; `compile_rules` turns a table's rules into Checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mozart_etl.config.models import (
    AcceptedValuesRule,
    DecimalFitsRule,
    ExpressionRule,
    FreshnessRule,
    NotNullRule,
    PatternRule,
    RangeRule,
    RowCountRule,
    SequenceRule,
    TableConfig,
    UniqueRule,
)
from mozart_etl.validate.rules.accepted_values import compile_accepted_values
from mozart_etl.validate.rules.base import Check, RuleContext, RuleScope
from mozart_etl.validate.rules.decimal_fits import (
    compile_decimal_fits,
    decimal_fits_checks,
)
from mozart_etl.validate.rules.expression import compile_expression
from mozart_etl.validate.rules.freshness import compile_freshness
from mozart_etl.validate.rules.not_null import compile_not_null
from mozart_etl.validate.rules.pattern import compile_pattern
from mozart_etl.validate.rules.range import compile_range
from mozart_etl.validate.rules.row_count import compile_row_count
from mozart_etl.validate.rules.sequence import compile_sequence
from mozart_etl.validate.rules.unique import compile_unique

COMPILERS: dict[type, Callable[[Any, RuleContext], Check]] = {
    NotNullRule: compile_not_null,
    UniqueRule: compile_unique,
    AcceptedValuesRule: compile_accepted_values,
    RangeRule: compile_range,
    PatternRule: compile_pattern,
    RowCountRule: compile_row_count,
    FreshnessRule: compile_freshness,
    ExpressionRule: compile_expression,
    SequenceRule: compile_sequence,
    DecimalFitsRule: compile_decimal_fits,
}


def implicit_rules(table: TableConfig) -> list[NotNullRule | UniqueRule]:
    """What the declaration already promises: keys unique, required columns set."""
    required = [c.name for c in table.columns if not c.nullable]
    required += [key for key in table.primary_key if key not in required]
    return [
        NotNullRule(type="not_null", name="required_columns", columns=required),
        UniqueRule(type="unique", name="primary_key_unique", columns=table.primary_key),
    ]


def compile_rules(table: TableConfig, context: RuleContext) -> list[Check]:
    """The table's checks: the implicit ones (keys, required columns, decimals
    within their declared precision) and its declared rules."""
    implicit = [COMPILERS[type(rule)](rule, context) for rule in implicit_rules(table)]
    declared = [COMPILERS[type(rule)](rule, context) for rule in table.rules]
    return [*implicit, *decimal_fits_checks(table), *declared]


__all__ = ["Check", "RuleContext", "RuleScope", "compile_rules", "implicit_rules"]
