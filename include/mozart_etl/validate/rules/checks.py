"""What a rule compiles to: one class per way of evaluating it, and the result
each gives.

The validator tells the strategies apart by class (`match`), never by which
optional fields are filled:

- `RowPredicate`: SQL over one row, TRUE where the row breaks the rule;
- `DuplicateKey`: the rows whose `key` values repeat break it (`unique`);
- `BrokenKeys`: a query over the whole extract gives the `key` values of the
  broken rows (rules across rows: `sequence`);
- `TableAggregate`: an aggregate over the whole extract, TRUE when the extract
  breaks it (`row_count`, `freshness`); nothing is quarantined.

A check makes its own result (`result`) where its count is read, so a result
always names the check it came from; results are tagged by `scope` (the same
field report.json and the XCom have always held).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from mozart_etl.config.constants import Severity

if TYPE_CHECKING:
    import pyarrow as pa

Param = str | int | float | bool | date | datetime


class RuleScope(StrEnum):
    """What a rule is evaluated over, and so what its failure count means."""

    ROW = "row"
    """Each row: `failed` counts broken rows; an error rule quarantines them."""
    TABLE = "table"
    """The whole extract: `failed` is 1 or 0 and no row is quarantined; an error
    rule that fails stops the load."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


# --- results ---------------------------------------------------------------------


class RowRuleResult(_Frozen):
    """A row rule's outcome: how many rows broke it."""

    name: str
    kind: str
    severity: Severity
    failed: int
    tolerated: bool
    scope: Literal[RuleScope.ROW] = RuleScope.ROW
    detail: str | None = None
    """What a broken row holds, when the rule says (`decimal_fits`)."""
    column: str | None = None
    """The one column the rule is about, when it is about one."""

    def summary(self) -> str:
        if self.detail:
            return f"{self.name}: {self.failed} row(s) with {self.detail}"
        return f"{self.name}: {self.failed} row(s)"


class TableRuleResult(_Frozen):
    """A table rule's outcome: failed 1 or 0, and what was observed."""

    name: str
    kind: str
    severity: Severity
    failed: int
    tolerated: bool
    scope: Literal[RuleScope.TABLE] = RuleScope.TABLE
    detail: str
    """The observed aggregate against the expected one."""

    def summary(self) -> str:
        return f"{self.name}: {self.detail}"


RuleResult = Annotated[RowRuleResult | TableRuleResult, Field(discriminator="scope")]


# --- checks ----------------------------------------------------------------------


class _CheckBase(_Frozen):
    name: str
    kind: str
    severity: Severity

    def runs_on(self, schema: pa.Schema) -> bool:
        """Whether the extract can be checked at all (see `decimal_fits`)."""
        return True


class _RowCheck(_CheckBase):
    """A check that judges rows: it counts broken rows, an error check
    quarantines them, and a tolerance lets some through."""

    scope: ClassVar[RuleScope] = RuleScope.ROW

    column: str | None = None
    """The one column the check is about (the failure names it)."""
    broken: str | None = None
    """What a broken row holds, for the report and the failure."""
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

    def result(self, failed: int, rows: int) -> RowRuleResult:
        return RowRuleResult(
            name=self.name,
            kind=self.kind,
            severity=self.severity,
            failed=failed,
            tolerated=self.tolerated(failed, rows),
            detail=self.broken,
            column=self.column,
        )


class RowPredicate(_RowCheck):
    """`sql` is TRUE where a row breaks the rule (NULL counts as not broken);
    its `?` placeholders are bound to `params`."""

    sql: str
    params: list[Param] = []


class DuplicateKey(_RowCheck):
    """Rows whose `key` values repeat break the rule (NULLs compare equal).
    Evaluated by a join on the duplicated keys, so no window holds the extract."""

    key: list[str]


class BrokenKeys(_RowCheck):
    """`sql`, a query over `extract_rows` (the extract), gives the `key` values
    of the broken rows (rules across rows)."""

    sql: str
    key: list[str]


class TableAggregate(_CheckBase):
    """`sql` is an aggregate over the extract, TRUE when the extract breaks the
    rule; `observed` is the aggregate the report shows against `expected`."""

    scope: ClassVar[RuleScope] = RuleScope.TABLE

    sql: str
    params: list[Param] = []
    observed: str
    expected: str

    def tolerated(self, failed: int, rows: int) -> bool:
        """A table rule takes no tolerance (config refuses one)."""
        return failed == 0

    def result(self, broken: bool, observed: object) -> TableRuleResult:
        shown = observed.isoformat() if hasattr(observed, "isoformat") else observed
        failed = int(broken)
        return TableRuleResult(
            name=self.name,
            kind=self.kind,
            severity=self.severity,
            failed=failed,
            tolerated=self.tolerated(failed, 0),
            detail=f"{self.observed} = {shown}, expected {self.expected}",
        )


RowCheck = RowPredicate | DuplicateKey | BrokenKeys
Check = RowCheck | TableAggregate
