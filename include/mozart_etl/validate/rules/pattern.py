"""`pattern`: a non-null string matches a regular expression as a whole (bound)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator

from mozart_etl.config.base import SourceIdent
from mozart_etl.config.constants import ColumnType
from mozart_etl.core.identifiers import quote_identifier
from mozart_etl.validate.rules.base import RuleBase, RuleContext
from mozart_etl.validate.rules.checks import RowPredicate

if TYPE_CHECKING:
    from mozart_etl.config.models import TableConfig

# Perl/PCRE constructs that Python's `re` accepts but DuckDB's RE2 does not.
_RE2_UNSUPPORTED = re.compile(r"\\[1-9]|\(\?[=!]|\(\?<[=!]|\(\?P=|\\[gk]<")


class PatternRule(RuleBase):
    """A non-null string matches `pattern` as a whole (RE2, DuckDB's
    `regexp_full_match`); the pattern is bound, never spliced into SQL."""

    type: Literal["pattern"]
    column: SourceIdent
    pattern: str = Field(min_length=1)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"pattern {value!r} does not compile: {exc}") from exc
        if _RE2_UNSUPPORTED.search(value):
            raise ValueError(
                f"pattern {value!r} uses lookaround or a backreference, which "
                "DuckDB's RE2 engine does not support"
            )
        return value

    def columns_read(self) -> list[str]:
        return [self.column]

    def check_types(self, table: TableConfig, where: str) -> None:
        kind = table.column(self.column).type
        if kind != ColumnType.STRING:
            raise ValueError(
                f"{where}: pattern needs a string column; {self.column!r} is {kind}"
            )

    def compile(self, context: RuleContext) -> RowPredicate:
        column = quote_identifier(self.column)
        return RowPredicate(
            name=self.name or f"pattern({self.column})",
            kind=self.type,
            severity=self.severity,
            sql=f"{column} IS NOT NULL AND NOT regexp_full_match({column}, ?)",
            params=[self.pattern],
            max_failures=self.max_failures,
            max_fraction=self.max_fraction,
        )
