"""Staging and mart models generated from tenant.yaml column mappings.

A table with `mapping: {model: stg_x, columns: …}` (or `mart: mart_x`, the mart
that reads only stg_x) gets `models/staging/_generated/<stg>.sql`: the standard
staging model, every standard column cast to its standard type, read from raw
the way the standard models read it (the time model, docs/time-model.md):

- a model a master mart reads (partitioned by `plan_ver`): each key's latest
  version, as the run read the source (`mozart_core.latest`);
- every other model: each key's version valid at the end of the production
  day (`mozart_core.as_of`), with `_mozart_valid_from` passed on so that the
  marts can tell a state that did not hold yet at the day's end;
- a snapshot table (immutable plan runs): raw as it is.

The filter and soft-delete flag apply to that version, after the reduction:
a row deleted after the day's end still counts on that day.

Each product mart whose standard staging models are then all present (mapped
or hand-written, at least one mapped) gets `models/marts/_generated/<mart>.sql`.
A hand-written model of the same name anywhere else in `models/` takes
precedence: its generated twin is not written (and removed if present).

Raw column names are quoted, constants and codes rendered as escaped literals;
the tenant's expressions and filter were checked by `mozart validate`
(`config.mapping.check_mapping`) and are checked again here.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mozart_etl.config.constants import ColumnType, LoadMode
from mozart_etl.config.mapping import (
    VALID_FROM,
    ColumnMapping,
    MappingError,
    MartMapping,
    check_mapping,
    mart_reads,
    staging_model_of,
    standard_staging_models,
)
from mozart_etl.config.models import TableConfig, TenantConfig
from mozart_etl.core.errors import ConfigError
from mozart_etl.core.identifiers import quote_identifier
from mozart_etl.dbt.contracts import product_standard
from mozart_etl.dbt.project import tenant_dbt_dir

GENERATED_DIR = "_generated"
LAYER_DIRS = ("staging", "marts")
_INTEGER = {ColumnType.INT, ColumnType.BIGINT}


def generated_models(tenant_folder: Path, tenant: TenantConfig) -> dict[Path, str]:
    """Every model the tenant's mappings generate, minus hand-written ones."""
    models = tenant_dbt_dir(tenant_folder) / "models"
    hand_written = _hand_written_models(models)
    mapped = mapped_tables(tenant)
    files: dict[Path, str] = {}
    for staging, table in mapped.items():
        if staging not in hand_written:
            path = models / "staging" / GENERATED_DIR / f"{staging}.sql"
            files[path] = render_staging(tenant, table, table.mapping, staging)  # type: ignore[arg-type]
    present = hand_written | set(mapped)
    for mart, spec in product_standard().items():
        reads = mart_reads(spec)
        feeding = [mapped[name] for name in reads if name in mapped]
        if mart in hand_written or not feeding or not set(reads) <= present:
            continue
        path = models / "marts" / GENERATED_DIR / f"{mart}.sql"
        files[path] = render_mart(tenant, feeding, mart, spec)
    return files


def mapped_tables(tenant: TenantConfig) -> dict[str, TableConfig]:
    """Standard staging model → the one table mapped onto it."""
    mapped: dict[str, TableConfig] = {}
    for table in tenant.tables:
        if table.mapping is None:
            continue
        staging = _staging_of(tenant, table, table.mapping)
        if staging in mapped:
            raise ConfigError(
                f"tables {mapped[staging].name} and {table.name} both map onto "
                f"{staging}: one table per standard staging model",
                tenant=tenant.tenant_id,
                table=table.name,
            )
        mapped[staging] = table
    return mapped


def stale_generated(tenant_folder: Path, wanted: dict[Path, str]) -> list[Path]:
    """Generated model files no mapping produces any more."""
    models = tenant_dbt_dir(tenant_folder) / "models"
    return [
        path
        for layer in LAYER_DIRS
        for path in sorted((models / layer / GENERATED_DIR).glob("*.sql"))
        if path not in wanted
    ]


def mart_models(tenant_folder: Path, generated: dict[Path, str]) -> set[str]:
    """Names of the tenant's mart models: hand-written and generated."""
    marts = tenant_dbt_dir(tenant_folder) / "models" / "marts"
    names = {
        path.stem for path in marts.rglob("*.sql") if GENERATED_DIR not in path.parts
    }
    names |= {path.stem for path in generated if path.parent.parent.name == "marts"}
    return names


def render_staging(
    tenant: TenantConfig, table: TableConfig, mapping: MartMapping, staging: str
) -> str:
    """The standard staging model `staging` over the table's raw versions."""
    _check(tenant, table, mapping)
    columns = standard_staging_models()[staging]
    reader = _reader(table, staging)
    selects = [
        f"    cast({_value(tenant, table, mapping.columns[name])} as "
        f"{mapping.columns[name].cast or kind}) as {name}"
        for name, kind in columns.items()
    ]
    if reader == "as_of":
        selects.append(f"    {VALID_FROM}")
    where = _where(table, mapping)
    return (
        f"-- Generated by `mozart sync` from the mapping of table {table.name} onto\n"
        f"-- {mapping.target} in tenants/{tenant.tenant_id}/tenant.yaml: do not edit.\n"
        f"-- A hand-written {staging}.sql elsewhere in models/ takes its place.\n"
        "{{ config(materialized='table') }}\n"
        "select\n"
        + ",\n".join(selects)
        + f"\nfrom {raw_relation(table, reader)}\n"
        + (f"where {where}\n" if where else "")
    )


def raw_relation(table: TableConfig, reader: str = "latest") -> str:
    """Raw as a generated staging model reads it: one version per key (the
    latest, or the one valid at the day's end), plan runs as they are."""
    source = f"source('raw', '{table.name}')"
    if table.mode == LoadMode.SNAPSHOT:
        return f"{{{{ {source} }}}}"
    keys = list(table.primary_key)
    return f"{{{{ mozart_core.{reader}({source}, {keys!r}) }}}} as raw"


def render_mart(
    tenant: TenantConfig, tables: list[TableConfig], mart: str, spec: dict[str, Any]
) -> str:
    """The one-line product mart, with the pre-hook that replaces its slice."""
    if spec.get("partition") == "plan_ver":
        hook = "mozart_core.replace_plan_ver()"
    else:
        hook = f"mozart_core.replace_production_day('{spec['grain'][0]}')"
    names = ", ".join(table.name for table in tables)
    label = "table" if len(tables) == 1 else "tables"
    return (
        f"-- Generated by `mozart sync` (mapping of {label} {names} in "
        f"tenants/{tenant.tenant_id}/tenant.yaml): do not edit.\n"
        f"-- {spec['description']}\n"
        f'{{{{ config(pre_hook="{{{{ {hook} }}}}") }}}}\n\n'
        f"{{{{ mozart_core.{mart}() }}}}\n"
    )


def _staging_of(tenant: TenantConfig, table: TableConfig, mapping: MartMapping) -> str:
    try:
        return staging_model_of(mapping)
    except MappingError as exc:
        raise ConfigError(str(exc), tenant=tenant.tenant_id, table=table.name) from None


def _check(tenant: TenantConfig, table: TableConfig, mapping: MartMapping) -> None:
    """What validate checked, again: render_staging also takes a fresh mapping."""
    try:
        check_mapping(mapping, {c.name: c.type for c in table.columns})
    except MappingError as exc:
        raise ConfigError(
            str(exc), tenant=tenant.tenant_id, table=table.name, column=exc.column
        ) from None


def _reader(table: TableConfig, staging: str) -> str:
    """`snapshot` (runs as they are), `latest` for what a plan-version mart
    reads, else `as_of` (the version valid at the day's end)."""
    if table.mode == LoadMode.SNAPSHOT:
        return "snapshot"
    for spec in product_standard().values():
        if spec.get("partition") == "plan_ver" and staging in mart_reads(spec):
            return "latest"
    return "as_of"


def _value(tenant: TenantConfig, table: TableConfig, column: ColumnMapping) -> str:
    """One standard column's SQL, before its cast."""
    if column.key is not None:
        quoted = [quote_identifier(name) for name in column.key]
        return f"{{{{ mozart_core.generated_key({quoted!r}) }}}}"
    if column.source_kind == "constant":
        return _literal(column.constant)
    kind = table.column(column.column).type if column.column is not None else None
    if column.column is not None:
        sql = quote_identifier(column.column)
    else:
        sql = f"({column.expr})"
    zone = column.zone
    if zone is None and kind == ColumnType.TIMESTAMP and column.map is None:
        # A naive source timestamp is the plant's wall time: an instant
        # only with its zone (first occurrence of a repeated hour).
        zone = tenant.source_zone(table)
    if zone is not None:
        return (
            f"{{{{ mozart_core.source_instant({_jinja_string(sql)}, "
            f"{_jinja_string(zone)}) }}}}"
        )
    if column.map is not None:
        return _case(sql, column, numeric=kind in _INTEGER)
    return sql


def _case(sql: str, column: ColumnMapping, *, numeric: bool) -> str:
    """The plant's codes translated: `case x when 'WT' then 'WAIT' … end`."""
    assert column.map is not None
    whens = " ".join(
        f"when {code if numeric else _literal(code)} then {_literal(value)}"
        for code, value in column.map.items()
    )
    return f"case {sql} {whens} else {_literal(column.default)} end"


def _where(table: TableConfig, mapping: MartMapping) -> str:
    """The filter and the soft-delete flag, over the version read."""
    parts: list[str] = []
    if mapping.filter is not None:
        parts.append(f"({mapping.filter})")
    if mapping.deleted is not None:
        flag = quote_identifier(mapping.deleted.column)
        values = ", ".join(_literals(mapping.deleted.values))
        parts.append(f"not coalesce({flag} in ({values}), false)")
    return " and ".join(parts)


def _jinja_string(text: str) -> str:
    """`text` as a Jinja string literal (a macro argument in the model)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _literal(value: str | int | float | bool | None) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if value is None:
        return "null"
    return "'" + value.replace("'", "''") + "'"


def _literals(values: Iterable[str | int | float | bool]) -> list[str]:
    return [_literal(value) for value in values]


def _hand_written_models(models: Path) -> set[str]:
    return {
        path.stem for path in models.rglob("*.sql") if GENERATED_DIR not in path.parts
    }
