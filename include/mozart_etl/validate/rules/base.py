"""What every rule kind is: a config model that also knows the columns it
reads, how it fits the declared columns, and what it compiles to.

A rule kind is one module under `validate/rules/` with one class deriving from
`RuleBase` (row rules) or `TableRuleBase` (rules over the whole extract):

- `type: Literal["<kind>"]` and its settings (pydantic: tenant.yaml's syntax);
- `columns_read()`: the declared columns it names (unknown ones are refused
  when tenant.yaml loads);
- `check_types(table, where)`: raise ValueError when its settings do not suit
  the declared columns' types (optional);
- `compile(context)`: its `Check` (`validate/rules/checks.py`).

`validate/rules/registry.py` lists the classes once, in the `Rule` union.

Rule modules are imported with the config schema (`config/models.py` builds
`TableConfig.rules` from the registry), so at module level they import only
pydantic, `config.base`, `config.constants` and this package's `base` and
`checks`: anything importing `mozart_etl.config` back would be an import circle
(`tests/validate/test_rule_kinds.py` imports each module first to prove it).
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import Field, model_validator

from mozart_etl.config.base import FrozenModel, Name
from mozart_etl.config.constants import Severity
from mozart_etl.validate.rules.checks import Check

if TYPE_CHECKING:
    from mozart_etl.config.models import TableConfig


@dataclass(frozen=True)
class RuleContext:
    """What a rule may depend on besides its own settings."""

    table: TableConfig
    window_end: datetime
    """The UTC instant the extract's window ends (the production day's end for
    full-refresh tables)."""


class RuleBase(FrozenModel):
    """Common to every rule: severity and how many failing rows are tolerated."""

    name: Name | None = None
    severity: Severity = Severity.ERROR
    max_failures: int | None = Field(default=None, ge=0)
    max_fraction: float | None = Field(default=None, ge=0, le=1)

    def columns_read(self) -> list[str]:
        """The declared columns the rule names (each must be declared)."""
        return []

    def check_types(self, table: TableConfig, where: str) -> None:
        """Raise ValueError, starting with `where`, when the rule's settings do
        not suit the table's declared columns (run when tenant.yaml loads, so
        `mozart validate` names the rule instead of a run failing)."""

    @abstractmethod
    def compile(self, context: RuleContext) -> Check:
        """The rule, ready to run over an extract."""


class TableRuleBase(RuleBase):
    """A rule over the whole extract: it fails once (failed=1) or not at all and
    quarantines nothing, so row tolerances do not apply (use `severity: warn`)."""

    @model_validator(mode="after")
    def _no_row_tolerance(self) -> TableRuleBase:
        if self.max_failures is not None or self.max_fraction is not None:
            raise ValueError(
                f"{getattr(self, 'type', 'table')} is a table-level rule: "
                "max_failures/max_fraction do not apply (use `severity: warn`)"
            )
        return self
