"""Onboarding by mapping: a source table mapped column by column onto a
standard staging model (`mapping:` of a table in tenant.yaml).

`mozart sync` turns a mapping into the tenant's staging model, and into every
product mart whose standard staging models are then all present, so a plant
whose tables map plainly needs no hand-written SQL. Each standard column takes
one source: a raw column, a SQL expression over the raw columns, a constant,
or a key generated from raw columns (for a source without one); a `map`
translates the plant's codes, `zone` reads naive timestamps in the plant's
wall-clock zone, and `filter` / `deleted` drop rows of the version valid at
the day's end.

Identifiers are quoted and constants rendered as escaped literals where the
models are generated; expressions and the filter are SQL the tenant writes,
so `check_mapping` parses each one as DuckDB and as Trino and checks every
column it names against the table's declared columns. TableConfig calls it,
so a typo fails `mozart validate`, not a run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mozart_etl.config.constants import ColumnType
from mozart_etl.config.paths import project_root

SQL_TYPE_PATTERN = (
    r"^(varchar|bigint|integer|double|boolean|date|timestamp"
    r"|timestamp with time zone|decimal\(\d{1,2}, ?\d{1,2}\))$"
)
_NAME = r"^[a-z][a-z0-9_]{0,62}$"
# A statement break or comment would swallow the SQL after it; Jinja markers
# would run template code inside the generated dbt model.
_UNSAFE_SQL = re.compile(r";|--|/\*|\{\{|\{%|\{#")
_JINJA = re.compile(r"\{\{|\{%|\{#")
DIALECTS = ("duckdb", "trino")
VALID_FROM = "_mozart_valid_from"

Scalar = str | int | float | bool


class MappingError(ValueError):
    """A mapping that does not fit its table or the standard; `column` is the
    standard column (or `filter`) at fault, when one is."""

    def __init__(self, message: str, column: str | None = None) -> None:
        super().__init__(message)
        self.column = column


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnMapping(_Frozen):
    """Where one standard column comes from: exactly one of column, expr,
    constant (`null` allowed) and key; `map`, `default` and `zone` refine a
    column or expression."""

    column: str | None = Field(default=None, description="A raw column of the table.")
    expr: str | None = Field(
        default=None, description="A SQL expression over the table's raw columns."
    )
    constant: Scalar | None = Field(
        default=None, description="A literal; `constant: null` gives a null column."
    )
    key: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Raw columns whose values make a deterministic key (an md5 "
        "hex text) where the source has no id of its own.",
    )
    map: dict[str, Scalar | None] | None = Field(
        default=None,
        min_length=1,
        description="The plant's codes → standard values (e.g. WT: WAIT).",
    )
    default: Scalar | None = Field(
        default=None,
        description="With `map`: the value of a code the map does not name "
        "(null when unset).",
    )
    zone: str | None = Field(
        default=None,
        description="IANA zone of a naive timestamp (the plant's wall clock); "
        "a naive `timestamp` column defaults to the source's zone.",
    )
    cast: str | None = Field(
        default=None,
        pattern=SQL_TYPE_PATTERN,
        description="The SQL type of the column (default: the standard type).",
    )

    @model_validator(mode="after")
    def _one_source(self) -> ColumnMapping:
        given = [
            name
            for name in ("column", "expr", "constant", "key")
            if getattr(self, name) is not None
            or (name == "constant" and name in self.model_fields_set)
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of `column`, `expr`, `constant`, `key` "
                f"(got {given or 'none'})"
            )
        if self.expr is not None:
            _single_expression(self.expr, "expr")
        if (self.map is not None or self.zone is not None) and given[0] not in (
            "column",
            "expr",
        ):
            raise ValueError("`map` and `zone` apply to a `column` or an `expr`")
        if "default" in self.model_fields_set and self.map is None:
            raise ValueError("`default` applies with `map` only")
        if self.map is not None and self.zone is not None:
            raise ValueError("give `map` or `zone`, not both")
        for value in self.literals():
            _no_jinja(value, "value")
        return self

    @field_validator("map", mode="before")
    @classmethod
    def _text_codes(cls, value: object) -> object:
        """Codes are text: YAML reads `01` as the number 1 and `ON` as true."""
        if isinstance(value, dict):
            odd = [code for code in value if not isinstance(code, str)]
            if odd:
                raise ValueError(
                    f"map codes {odd!r} are not text: quote them in YAML "
                    "(e.g. '01': RUN)"
                )
        return value

    @field_validator("zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @property
    def source_kind(self) -> str:
        """Which of column/expr/constant/key this column is taken from."""
        for name in ("column", "expr", "key"):
            if getattr(self, name) is not None:
                return name
        return "constant"

    def named(self) -> list[str]:
        """Raw columns named outright (as `column` or in `key`)."""
        return [self.column] if self.column is not None else list(self.key or [])

    def literals(self) -> list[Any]:
        """Every value rendered as a SQL literal (codes, values, constant)."""
        values: list[Any] = [self.constant, self.default]
        if self.map is not None:
            values += [*self.map, *self.map.values()]
        return [value for value in values if isinstance(value, str)]


class SoftDeleteFilter(_Frozen):
    """Rows whose `column` holds one of `values` in the version valid at the
    day's end are deleted (values bound as escaped literals)."""

    column: str
    values: list[Scalar] = Field(min_length=1)

    @field_validator("values")
    @classmethod
    def _plain(cls, value: list[Scalar]) -> list[Scalar]:
        for item in value:
            if isinstance(item, str):
                _no_jinja(item, "deleted value")
        return value


class MartMapping(_Frozen):
    """A table mapped onto a standard staging model: named by `model`
    (stg_lot_history …) or by the product `mart` that reads only it."""

    mart: str | None = Field(default=None, pattern=_NAME)
    model: str | None = Field(
        default=None,
        pattern=_NAME,
        description="The standard staging model (dbt/product_standard.yml, "
        "`staging:`), e.g. stg_lot_history.",
    )
    columns: dict[str, ColumnMapping] = Field(min_length=1)
    filter: str | None = Field(
        default=None, description="A SQL boolean over the raw columns: rows kept."
    )
    deleted: SoftDeleteFilter | None = Field(
        default=None, description="A soft-delete flag: flagged rows are dropped."
    )

    @model_validator(mode="after")
    def _one_target(self) -> MartMapping:
        if (self.mart is None) == (self.model is None):
            raise ValueError(
                "give exactly one of `model` (a standard staging model) or `mart`"
            )
        return self

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

    @property
    def target(self) -> str:
        """What the mapping names: its staging model, else its mart."""
        return self.model or str(self.mart)

    def raw_columns(self) -> list[str]:
        """Raw columns the mapping names outright (expressions aside)."""
        names = [raw for column in self.columns.values() for raw in column.named()]
        if self.deleted is not None:
            names.append(self.deleted.column)
        return names


def standard_staging_models() -> dict[str, dict[str, str]]:
    """Standard staging models (name → column → SQL type), from
    dbt/product_standard.yml, the one place the product standard is written."""
    return product_standard_document().get("staging", {})


def staging_model_of(mapping: MartMapping) -> str:
    """The staging model a mapping generates: `model`, or the one the mart reads."""
    if mapping.model is not None:
        if mapping.model not in standard_staging_models():
            raise MappingError(
                f"mapping onto {mapping.model!r}: not a standard staging model "
                f"(standard: {sorted(standard_staging_models())})"
            )
        return mapping.model
    marts = product_standard_document()["marts"]
    reads = mart_reads(marts.get(mapping.mart or "", {}))
    if len(reads) != 1:
        mappable = sorted(name for name, spec in marts.items() if spec.get("reads"))
        hint = (
            f"it reads {reads}: name one with `model:`"
            if reads
            else f"not a product mart (marts: {mappable})"
        )
        raise MappingError(f"mapping onto {mapping.mart!r}: {hint}")
    return reads[0]


def mart_reads(spec: Mapping[str, Any]) -> list[str]:
    """The standard staging models a product mart reads (`reads:` of its spec)."""
    reads = spec.get("reads") or []
    return [reads] if isinstance(reads, str) else list(reads)


def check_mapping(mapping: MartMapping, columns: Mapping[str, ColumnType]) -> None:
    """What `mozart validate` checks of a mapping, without a warehouse: its
    staging model is standard and every standard column is mapped once; every
    raw column it names, inside expressions and the filter too (parsed as
    DuckDB and as Trino SQL), is declared; codes fit their column's type; a
    zone is given to naive timestamps only. Raises ValueError naming the
    mapped column and the unknown one."""
    staging = staging_model_of(mapping)
    where = f"mapping onto {mapping.target}"
    standard = standard_staging_models()[staging]
    unknown = sorted(set(mapping.columns) - set(standard))
    missing = [name for name in standard if name not in mapping.columns]
    if unknown or missing:
        raise MappingError(
            f"{where} ({staging}): unknown standard column(s) {unknown}, unmapped "
            f"{missing} (standard: {list(standard)})"
        )
    declared = {name.lower(): name for name in columns}
    named = [(name, raw) for name, c in mapping.columns.items() for raw in c.named()]
    if mapping.deleted is not None:
        named.append(("deleted", mapping.deleted.column))
    for name, raw in named:
        if raw not in columns:
            raise MappingError(
                f"{where}: unknown column {raw!r} in {name} "
                f"(declared: {list(columns)})",
                name,
            )
    for name, column in mapping.columns.items():
        if column.expr is not None:
            _check_expression(
                column.expr, declared, f"{where}: column {name} expr", name
            )
        _check_column_options(column, columns, f"{where}: column {name}", name)
    if mapping.filter is not None:
        _check_expression(mapping.filter, declared, f"{where}: filter", "filter")


@cache
def sql_columns(text: str, dialect: str) -> frozenset[str]:
    """The column names a SQL expression reads, as sqlglot parses it in
    `dialect` (lambda parameters are not columns). Raises ValueError when the
    text is not one expression of that dialect. Cached: tenants made from one
    template repeat their expressions, and validation runs at DAG parse."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError, TokenError

    try:
        parsed = sqlglot.parse_one(f"SELECT {text}", read=dialect)
    except (ParseError, TokenError) as exc:
        detail = exc.errors[0]["description"] if isinstance(exc, ParseError) else exc
        message = f"{text!r} is not a {dialect} SQL expression: {detail}"
        raise MappingError(message) from None
    if not isinstance(parsed, exp.Select) or len(parsed.expressions) != 1:
        raise MappingError(f"{text!r} is not one {dialect} SQL expression")
    return frozenset(column.name for column in parsed.find_all(exp.Column))


def _check_expression(
    text: str, declared: Mapping[str, str], where: str, column: str
) -> None:
    """Parses as DuckDB and Trino; names only declared columns (compared as
    both engines compare unquoted identifiers: without case)."""
    for dialect in DIALECTS:
        try:
            names = sql_columns(text, dialect)
        except ValueError as exc:
            raise MappingError(f"{where}: {exc}", column) from None
        unknown = sorted(
            name
            for name in names
            if name.lower() not in declared and name.lower() != VALID_FROM
        )
        if unknown:
            raise MappingError(
                f"{where} {text!r}: unknown column(s) {unknown} "
                f"(declared: {list(declared.values())})",
                column,
            )


_STRING_KEYS = {ColumnType.STRING}
_INTEGER_KEYS = {ColumnType.INT, ColumnType.BIGINT}


def _check_column_options(
    column: ColumnMapping, columns: Mapping[str, ColumnType], where: str, name: str
) -> None:
    """`zone` only on naive timestamps; a map's codes of the column's type
    (YAML reads `01` as the number 1: a string column's codes need quotes)."""
    kind = columns.get(column.column) if column.column is not None else None
    if column.zone is not None and kind not in (None, ColumnType.TIMESTAMP):
        raise MappingError(
            f"{where}: `zone` applies to a naive timestamp, not {kind} "
            f"{column.column!r}",
            name,
        )
    if column.map is None or kind is None:
        return
    if kind in _INTEGER_KEYS:
        wrong = [code for code in column.map if not re.fullmatch(r"-?\d+", code)]
    elif kind in _STRING_KEYS:
        wrong = []
    else:
        raise MappingError(
            f"{where}: `map` needs a string or integer column, not {kind}", name
        )
    if wrong:
        raise MappingError(
            f"{where}: codes {wrong} do not fit {kind} {column.column!r}", name
        )


def product_standard_document() -> dict[str, Any]:
    """dbt/product_standard.yml, the one place the product standard is written
    (read once per process and project: the marts task asks it for each mart)."""
    return _read_standard(project_root() / "dbt" / "product_standard.yml")


@cache
def _read_standard(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _single_expression(text: str, label: str) -> str:
    """One expression: no statement break, comment or Jinja marker."""
    if not text.strip() or _UNSAFE_SQL.search(text):
        raise ValueError(
            f"{label} {text!r}: one SQL expression, no ';', comments or Jinja"
        )
    return text


def _no_jinja(text: str, label: str) -> None:
    if _JINJA.search(text):
        raise ValueError(f"{label} {text!r}: no Jinja markers ({{{{, {{%, {{#)")
