"""The tenant configuration schema: one frozen pydantic model per tenant.yaml.

Every identifier that ends up in SQL is validated here and quoted where it is
used; every value is bound. Paths are resolved against the project root given
in the validation context (`{"base_dir": Path}`), so a tenant.yaml reads the
same from the CLI, a test or the Airflow dag-processor.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mozart_etl.config.constants import (
    CatalogType,
    ColumnType,
    DbtTarget,
    LoadMode,
    Severity,
    SourceType,
)

TENANT_ID_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
# Source identifiers may hold spaces or reserved words (they are always quoted),
# but never quotes, backslashes or control characters.
SOURCE_IDENT_PATTERN = r"^[^\x00-\x1f\"`\\]{1,128}$"

TenantId = Annotated[str, Field(pattern=TENANT_ID_PATTERN)]
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
SourceIdent = Annotated[str, Field(pattern=SOURCE_IDENT_PATTERN)]

_TEMPORAL = {ColumnType.DATE, ColumnType.TIMESTAMP, ColumnType.TIMESTAMPTZ}


class FrozenModel(BaseModel):
    """Base of every config model: unknown keys are errors, values immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _resolve_path(value: str, info: ValidationInfo) -> str:
    """Make a relative local path absolute against the project root."""
    if "://" in value:
        return value
    base = Path((info.context or {}).get("base_dir", Path.cwd()))
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())


class SourceConfig(FrozenModel):
    """Where a tenant's MES data lives. Use `conn_id` to keep secrets in Airflow."""

    type: SourceType
    database: str = Field(description="Database name, or the file path for SQLite.")
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    user: str | None = None
    password: SecretStr | None = None
    conn_id: str | None = Field(
        default=None, description="Airflow connection id; overrides host/user/…"
    )
    options: dict[str, str | int | float | bool] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _server_needs_host(self) -> SourceConfig:
        if self.type != SourceType.SQLITE and not (self.host or self.conn_id):
            raise ValueError(f"a {self.type} source needs `host` or `conn_id`")
        return self

    @field_validator("database")
    @classmethod
    def _sqlite_path(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("type") == SourceType.SQLITE:
            return _resolve_path(value, info)
        return value


class S3Config(FrozenModel):
    """An S3-compatible endpoint (MinIO in the stack, a local server in tests)."""

    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None


class StorageConfig(FrozenModel):
    """The Parquet lake: a local folder or `s3://bucket/prefix`."""

    lake_root: str
    prefix: str | None = Field(default=None, pattern=NAME_PATTERN)
    s3: S3Config | None = None

    @field_validator("lake_root")
    @classmethod
    def _absolute(cls, value: str, info: ValidationInfo) -> str:
        return _resolve_path(value, info)


class CatalogConfig(FrozenModel):
    """The Iceberg catalog that both the load stage and the warehouse read."""

    name: str = Field(default="mozart", pattern=NAME_PATTERN)
    type: CatalogType = CatalogType.SQL
    uri: str | None = Field(
        default=None, description="SQLAlchemy URI (sql) or REST endpoint (rest)."
    )
    warehouse: str

    @field_validator("warehouse")
    @classmethod
    def _absolute(cls, value: str, info: ValidationInfo) -> str:
        return _resolve_path(value, info)

    @model_validator(mode="after")
    def _default_uri(self) -> CatalogConfig:
        if self.uri is None:
            if self.type == CatalogType.REST:
                raise ValueError("a rest catalog needs `uri`")
            if "://" in self.warehouse:
                raise ValueError("a sql catalog on object storage needs `uri`")
            uri = f"sqlite:///{Path(self.warehouse) / 'catalog.db'}"
            object.__setattr__(self, "uri", uri)
        return self


class IcebergConfig(FrozenModel):
    """Raw tables go to `raw_namespace`; dbt builds staging and marts in `namespace`."""

    catalog: CatalogConfig
    raw_namespace: Name | None = None
    namespace: Name | None = None


class TrinoConfig(FrozenModel):
    host: str
    port: int = 8080
    user: str = "mozart"
    catalog: str = "iceberg"


class DbtConfig(FrozenModel):
    """How the tenant's dbt project runs; the target is the only engine switch."""

    target: DbtTarget = DbtTarget.DUCKDB
    duckdb_path: str | None = None
    trino: TrinoConfig | None = None
    pool: str | None = Field(
        default=None, description="Airflow pool for dbt tasks (DuckDB: one writer)."
    )
    vars: dict[str, str | int | float | bool] = Field(default_factory=dict)

    @field_validator("duckdb_path")
    @classmethod
    def _absolute(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else _resolve_path(value, info)

    @model_validator(mode="after")
    def _target_settings(self) -> DbtConfig:
        if self.target == DbtTarget.DUCKDB and not self.duckdb_path:
            raise ValueError("the duckdb target needs `duckdb_path`")
        if self.target == DbtTarget.TRINO and self.trino is None:
            raise ValueError("the trino target needs a `trino` block")
        return self


class ScheduleConfig(FrozenModel):
    """A run processes one production day, `[D day_start_hour, D+1 day_start_hour)`."""

    timezone: str = "UTC"
    day_start_hour: int = Field(default=0, ge=0, le=23)
    cron: str | None = Field(
        default=None,
        description="Default: the production-day boundary, `0 <day_start_hour> * * *`.",
    )
    start_date: date
    catchup: bool = False
    retries: int = Field(default=2, ge=0)
    retry_delay_minutes: float = Field(default=5, gt=0)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("cron")
    @classmethod
    def _five_fields(cls, value: str | None) -> str | None:
        if value is not None and len(value.split()) != 5:
            raise ValueError(f"cron {value!r} must have five fields")
        return value

    @property
    def effective_cron(self) -> str:
        return self.cron or f"0 {self.day_start_hour} * * *"


class AlertingConfig(FrozenModel):
    emails: list[str] = Field(default_factory=list)
    on_failure: bool = True
    on_retry: bool = False


class ColumnConfig(FrozenModel):
    """A declared source column; its type decides the Arrow and Iceberg type."""

    name: SourceIdent
    type: ColumnType
    precision: int | None = Field(default=None, ge=1, le=38)
    scale: int | None = Field(default=None, ge=0, le=38)
    nullable: bool = True

    @model_validator(mode="after")
    def _decimal_shape(self) -> ColumnConfig:
        is_decimal = self.type == ColumnType.DECIMAL
        if is_decimal and (self.precision is None or self.scale is None):
            raise ValueError(f"decimal column {self.name!r} needs precision and scale")
        if not is_decimal and (self.precision is not None or self.scale is not None):
            raise ValueError(
                f"only decimal columns take precision/scale ({self.name!r})"
            )
        if is_decimal and self.scale > self.precision:  # type: ignore[operator]
            raise ValueError(f"column {self.name!r}: scale > precision")
        return self


class SourceTableRef(FrozenModel):
    """A table in the source database, or a query returning the declared columns."""

    schema_: SourceIdent | None = Field(default=None, alias="schema")
    table: SourceIdent | None = None
    query: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one_of(self) -> SourceTableRef:
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of `table` or `query`")
        return self


class TenantFilter(FrozenModel):
    """Restricts a shared source to this tenant: `column = params[param]` (bound)."""

    column: SourceIdent
    param: str


class RuleBase(FrozenModel):
    """Common to every rule: severity and how many failing rows are tolerated."""

    name: Name | None = None
    severity: Severity = Severity.ERROR
    max_failures: int | None = Field(default=None, ge=0)
    max_fraction: float | None = Field(default=None, ge=0, le=1)


class NotNullRule(RuleBase):
    type: Literal["not_null"]
    columns: list[SourceIdent] = Field(min_length=1)


class UniqueRule(RuleBase):
    type: Literal["unique"]
    columns: list[SourceIdent] = Field(min_length=1)


class AcceptedValuesRule(RuleBase):
    type: Literal["accepted_values"]
    column: SourceIdent
    values: list[str | int | float | bool] = Field(min_length=1)


class RangeRule(RuleBase):
    type: Literal["range"]
    column: SourceIdent
    min: float | None = None
    max: float | None = None
    inclusive: bool = True

    @model_validator(mode="after")
    def _bounds(self) -> RangeRule:
        if self.min is None and self.max is None:
            raise ValueError("a range rule needs `min`, `max` or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(
                f"range on {self.column!r}: min {self.min} > max {self.max}"
            )
        return self


class ExpressionRule(RuleBase):
    """A SQL boolean over one row (DuckDB dialect); rows where it is false fail."""

    type: Literal["expression"]
    name: Name
    expr: str = Field(min_length=1)


Rule = Annotated[
    NotNullRule | UniqueRule | AcceptedValuesRule | RangeRule | ExpressionRule,
    Field(discriminator="type"),
]


class TableConfig(FrozenModel):
    """One source table: what to read, how to load it, what good data is."""

    name: Name
    source: SourceTableRef
    primary_key: list[SourceIdent] = Field(min_length=1)
    columns: list[ColumnConfig] = Field(min_length=1)
    mode: LoadMode = LoadMode.FULL_REFRESH
    cursor: SourceIdent | None = None
    tenant_filter: TenantFilter | None = None
    rules: list[Rule] = Field(default_factory=list)

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]

    def column(self, name: str) -> ColumnConfig:
        return next(column for column in self.columns if column.name == name)

    @model_validator(mode="after")
    def _consistent(self) -> TableConfig:
        names = self.column_names
        if len(set(names)) != len(names):
            raise ValueError("duplicate column names")
        for key in self.primary_key:
            _require_column(names, key, "primary_key")
        if self.mode != LoadMode.FULL_REFRESH and self.cursor is None:
            raise ValueError(f"mode {self.mode} needs a `cursor` column")
        if self.cursor is not None:
            _require_column(names, self.cursor, "cursor")
            if self.column(self.cursor).type not in _TEMPORAL:
                raise ValueError(f"cursor {self.cursor!r} must be a date or timestamp")
        if self.tenant_filter is not None and self.source.query is not None:
            raise ValueError("tenant_filter applies to `table` sources only")
        for rule in self.rules:
            for column in _rule_columns(rule):
                _require_column(names, column, f"rule {rule.name or rule.type}")
        return self


def _rule_columns(rule: RuleBase) -> list[str]:
    if isinstance(rule, NotNullRule | UniqueRule):
        return list(rule.columns)
    if isinstance(rule, AcceptedValuesRule | RangeRule):
        return [rule.column]
    return []


def _require_column(names: list[str], column: str, where: str) -> None:
    if column not in names:
        raise ValueError(f"{where}: unknown column {column!r} (declared: {names})")


class TenantConfig(FrozenModel):
    """Everything a tenant's daily DAG needs, validated before any DAG is built."""

    tenant_id: TenantId
    owner: str = "mozart"
    description: str = ""
    source: SourceConfig
    params: dict[str, str | int] = Field(default_factory=dict)
    storage: StorageConfig
    iceberg: IcebergConfig
    dbt: DbtConfig
    schedule: ScheduleConfig
    alerting: AlertingConfig = Field(default_factory=AlertingConfig)
    tables: list[TableConfig] = Field(min_length=1)

    @property
    def raw_namespace(self) -> str:
        return self.iceberg.raw_namespace or f"{self.tenant_id}_raw"

    @property
    def namespace(self) -> str:
        return self.iceberg.namespace or self.tenant_id

    @property
    def lake_prefix(self) -> str:
        return self.storage.prefix or self.tenant_id

    def table(self, name: str) -> TableConfig:
        for table in self.tables:
            if table.name == name:
                return table
        raise KeyError(f"tenant {self.tenant_id} has no table {name!r}")

    @model_validator(mode="after")
    def _consistent(self) -> TenantConfig:
        names = [table.name for table in self.tables]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate table names: {duplicates}")
        for table in self.tables:
            tenant_filter = table.tenant_filter
            if tenant_filter is not None and tenant_filter.param not in self.params:
                raise ValueError(
                    f"table {table.name!r}: tenant_filter param "
                    f"{tenant_filter.param!r} is not in `params`"
                )
        return self
