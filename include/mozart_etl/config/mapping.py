"""Onboarding by mapping: a source table mapped column by column onto the
standard staging model of a product mart (`mapping:` of a table in tenant.yaml).

`mozart sync` turns a mapping into the tenant's staging and mart models, so a
table with a plain mapping needs no hand-written SQL. Each standard column
takes a raw column, a SQL expression over the raw columns, or a constant, and
is cast to the standard type (or to `cast`). Identifiers are quoted and
constants rendered as escaped literals; expressions and the filter are SQL the
tenant writes, parsed by sqlglot when the models are generated.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SQL_TYPE_PATTERN = (
    r"^(varchar|bigint|integer|double|boolean|date|timestamp"
    r"|timestamp with time zone|decimal\(\d{1,2}, ?\d{1,2}\))$"
)
_NAME = r"^[a-z][a-z0-9_]{0,62}$"
_NO_STATEMENT_BREAK = re.compile(r";|--|/\*")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnMapping(_Frozen):
    """Where one standard column comes from: exactly one of column/expr/constant."""

    column: str | None = Field(default=None, description="A raw column of the table.")
    expr: str | None = Field(
        default=None, description="A SQL expression over the table's raw columns."
    )
    constant: str | int | float | bool | None = None
    cast: str | None = Field(
        default=None,
        pattern=SQL_TYPE_PATTERN,
        description="The SQL type of the column (default: the standard type).",
    )

    @model_validator(mode="after")
    def _one_source(self) -> ColumnMapping:
        given = [
            k for k in ("column", "expr", "constant") if getattr(self, k) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of `column`, `expr`, `constant` "
                f"(got {given or 'none'})"
            )
        if self.expr is not None:
            _single_expression(self.expr, "expr")
        return self


class MartMapping(_Frozen):
    """A table mapped onto the standard staging model of `mart`."""

    mart: str = Field(pattern=_NAME)
    columns: dict[str, ColumnMapping] = Field(min_length=1)
    filter: str | None = Field(
        default=None, description="A SQL boolean over the raw columns: rows kept."
    )

    @field_validator("columns", mode="before")
    @classmethod
    def _shorthand(cls, value: object) -> object:
        """`item_id: ITEM_CD` is short for `item_id: {column: ITEM_CD}`."""
        if isinstance(value, dict):
            return {
                key: {"column": item} if isinstance(item, str) else item
                for key, item in value.items()
            }
        return value

    @field_validator("columns")
    @classmethod
    def _standard_names(
        cls, value: dict[str, ColumnMapping]
    ) -> dict[str, ColumnMapping]:
        for name in value:
            if not re.match(_NAME, name):
                raise ValueError(f"standard column name {name!r} is not {_NAME}")
        return value

    @field_validator("filter")
    @classmethod
    def _filter_expression(cls, value: str | None) -> str | None:
        return None if value is None else _single_expression(value, "filter")

    def raw_columns(self) -> list[str]:
        return [m.column for m in self.columns.values() if m.column is not None]


def _single_expression(text: str, label: str) -> str:
    """One expression, no statement break or comment (they would swallow SQL)."""
    if not text.strip() or _NO_STATEMENT_BREAK.search(text):
        raise ValueError(f"{label} {text!r}: one SQL expression, no ';' or comments")
    return text
