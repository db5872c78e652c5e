"""A compiled rule: SQL that is TRUE where the rule is broken, and its context."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from mozart_etl.config.constants import Severity
from mozart_etl.config.models import TableConfig

Param = str | int | float | bool | date | datetime


class RuleScope(StrEnum):
    """What a rule is evaluated over, and so what its failure count means."""

    ROW = "row"
    """Each row: `failed` counts broken rows; an error rule quarantines them."""
    TABLE = "table"
    """The whole extract: `failed` is 1 or 0 and no row is quarantined; an error
    rule that fails stops the load."""


class RuleContext(BaseModel):
    """What a rule may depend on besides its own settings."""

    model_config = ConfigDict(frozen=True)

    table: TableConfig
    window_end: datetime
    """The UTC instant the extract's window ends (the production day's end for
    full-refresh tables)."""


class Check(BaseModel):
    """One rule, ready to run; `?` placeholders in `sql` are bound to `params`.

    ROW scope: `sql` is a predicate over one row, or `duplicate_key` names the
    columns whose repeated values break the rule (evaluated by a join on the
    duplicated keys, so no window holds the whole extract). TABLE scope: `sql`
    is an aggregate predicate and `observed` the aggregate the report shows.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    kind: str
    severity: Severity
    scope: RuleScope = RuleScope.ROW
    sql: str = ""
    params: list[Param] = []
    duplicate_key: list[str] = []
    observed: str | None = None
    flag_rows_sql: str = ""
    """ROW scope: a query over `extract_rows` (the extract) giving
    the `flag_key` values of the broken rows (rules across rows: `sequence`)."""
    flag_key: list[str] = []
    expected: str | None = None
    column: str | None = None
    """The one column a row check is about (the failure names it)."""
    broken: str | None = None
    """ROW scope: what a broken row holds, for the report and the failure."""
    max_failures: int | None = None
    max_fraction: float | None = None

    def tolerated(self, failed: int, rows: int) -> bool:
        """Within tolerance; without one, an error rule tolerates no failure."""
        if self.max_failures is None and self.max_fraction is None:
            return failed == 0
        if self.max_failures is not None and failed > self.max_failures:
            return False
        return not (
            self.max_fraction is not None and rows and failed / rows > self.max_fraction
        )


def quote(identifier: str) -> str:
    """DuckDB identifier quoting; config validation already rejects `"`."""
    return '"' + identifier.replace('"', '""') + '"'
