"""Every rule kind, listed once: the `Rule` union tenant.yaml's `rules:` is
read with (by its `type`), and `compile_rules`, a table's checks.

Adding a kind: its module here (see `base.py`) and one line in `Rule`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, get_args

from pydantic import Field

from mozart_etl.validate.rules.accepted_values import AcceptedValuesRule
from mozart_etl.validate.rules.base import RuleBase, RuleContext
from mozart_etl.validate.rules.checks import Check
from mozart_etl.validate.rules.decimal_fits import (
    DecimalFitsRule,
    decimal_fits_checks,
)
from mozart_etl.validate.rules.expression import ExpressionRule
from mozart_etl.validate.rules.freshness import FreshnessRule
from mozart_etl.validate.rules.not_null import NotNullRule
from mozart_etl.validate.rules.pattern import PatternRule
from mozart_etl.validate.rules.range import RangeRule
from mozart_etl.validate.rules.row_count import RowCountRule
from mozart_etl.validate.rules.sequence import SequenceRule
from mozart_etl.validate.rules.unique import UniqueRule

if TYPE_CHECKING:
    from mozart_etl.config.models import TableConfig

Rule = Annotated[
    NotNullRule
    | UniqueRule
    | AcceptedValuesRule
    | RangeRule
    | PatternRule
    | RowCountRule
    | FreshnessRule
    | ExpressionRule
    | SequenceRule
    | DecimalFitsRule,
    Field(discriminator="type"),
]

RULE_KINDS: tuple[type[RuleBase], ...] = get_args(get_args(Rule)[0])
"""The rule classes, in the order of `Rule`."""


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
    implicit = [rule.compile(context) for rule in implicit_rules(table)]
    declared = [rule.compile(context) for rule in table.rules]
    return [*implicit, *decimal_fits_checks(table), *declared]
