"""Rule kinds, one module each (`base.py` says what a kind is made of);
`registry.py` lists them and compiles a table's rules into checks.

The config schema is imported first: `config/models.py` imports the registry
(`TableConfig.rules`), so a process whose first import is a rule module must
load the config package before the rule modules, not halfway through one.
"""

from __future__ import annotations

import mozart_etl.config.models  # noqa: F401  (see above: import order)
from mozart_etl.validate.rules.base import RuleBase, RuleContext, TableRuleBase
from mozart_etl.validate.rules.checks import Check, RuleScope
from mozart_etl.validate.rules.registry import (
    RULE_KINDS,
    Rule,
    compile_rules,
    implicit_rules,
)

__all__ = [
    "RULE_KINDS",
    "Check",
    "Rule",
    "RuleBase",
    "RuleContext",
    "RuleScope",
    "TableRuleBase",
    "compile_rules",
    "implicit_rules",
]
