"""The tenant configuration schema: one frozen pydantic model per tenant.yaml.

Every identifier that ends up in SQL is validated here and quoted where it is
used; every value is bound. Paths are resolved against the project root given
in the validation context (`{"base_dir": Path}`), so a tenant.yaml reads the
same from the CLI, a test or the Airflow dag-processor.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mozart_etl.config.base import (
    NAME_PATTERN,
    NUMERIC_TYPES,
    FrozenModel,
    Name,
    SourceIdent,
)
from mozart_etl.config.constants import (
    CatalogType,
    ColumnType,
    DbtTarget,
    DriftPolicy,
    LoadMode,
    PublishMode,
    SourceType,
)
from mozart_etl.config.mapping import MartMapping, check_mapping
from mozart_etl.config.plan_version import PlanVersionConfig
from mozart_etl.validate.rules.registry import Rule

TENANT_ID_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"

TenantId = Annotated[str, Field(pattern=TENANT_ID_PATTERN)]
# A table's Python transform: `transforms:normalise` or `pkg.module:function`.
TRANSFORM_PATTERN = r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$"

_TEMPORAL = {ColumnType.DATE, ColumnType.TIMESTAMP, ColumnType.TIMESTAMPTZ}


def _resolve_path(value: str, info: ValidationInfo) -> str:
    """Make a relative local path absolute against the project root."""
    if "://" in value:
        return value
    base = Path((info.context or {}).get("base_dir", Path.cwd()))
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())


def _known_zone(value: str | None) -> str | None:
    """An IANA zone name (None passes): checked here, not at the first run."""
    if value is None:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


def _blank_to_none(value: object) -> object:
    """`${VAR:}` with VAR unset gives ""; an optional setting then means unset."""
    return None if isinstance(value, str) and not value.strip() else value


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
    pool: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.-]{1,256}$",
        description="Airflow pool of the extract tasks: tenants sharing a source "
        "database share one pool, which bounds the connections it gets.",
    )
    options: dict[str, str | int | float | bool] = Field(default_factory=dict)
    timezone: str | None = Field(
        default=None,
        description="IANA zone of the source's naive `timestamp` columns (the "
        "plant's wall clock, e.g. America/Chicago); unset means they hold UTC. "
        "Cursor bounds, validity instants and staging conversions use it.",
    )

    _unset_if_blank = field_validator(
        "host", "port", "user", "conn_id", "pool", "timezone", mode="before"
    )(_blank_to_none)
    _zone = field_validator("timezone")(_known_zone)

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
    """An S3-compatible endpoint (MinIO in the stack, a local server in tests).

    Keys belong in an Airflow AWS connection (`aws_conn_id`), resolved when a
    task opens the lake (factory/connections.py), never at DAG parse: its
    credentials (login/password, a role, or the provider's default chain) and
    its extra's `endpoint_url` and `region_name`, which win over the values
    here. The key fields remain for a machine without Airflow connections; no
    tenant.yaml in the repository writes them (tests/config).
    """

    aws_conn_id: str | None = Field(
        default=None,
        description="Airflow AWS connection of the lake and the Iceberg "
        "warehouse's files: keys, endpoint_url and region_name.",
    )
    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None

    _unset_if_blank = field_validator(
        "aws_conn_id",
        "endpoint_url",
        "access_key_id",
        "secret_access_key",
        mode="before",
    )(_blank_to_none)

    @model_validator(mode="after")
    def _one_source_of_keys(self) -> S3Config:
        if self.aws_conn_id and (self.access_key_id or self.secret_access_key):
            raise ValueError(
                "set either aws_conn_id or access_key_id/secret_access_key: the "
                "keys of an AWS connection would silently replace these"
            )
        return self


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
    conn_id: str | None = Field(
        default=None,
        description="rest: an Airflow connection giving the endpoint (host, "
        "port, schema = http or https) and its auth (login/password as the "
        "OAuth2 credential, or extra `token`), resolved at task run time.",
    )
    warehouse: str

    _unset_if_blank = field_validator("uri", "conn_id", mode="before")(_blank_to_none)

    @field_validator("warehouse")
    @classmethod
    def _absolute(cls, value: str, info: ValidationInfo) -> str:
        return _resolve_path(value, info)

    @model_validator(mode="after")
    def _default_uri(self) -> CatalogConfig:
        if self.conn_id is not None and self.type != CatalogType.REST:
            raise ValueError("`conn_id` names a rest catalog's connection")
        if self.uri is None:
            if self.type == CatalogType.REST:
                if self.conn_id is None:
                    raise ValueError("a rest catalog needs `uri` or `conn_id`")
                return self
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
    """Trino for dbt. With `conn_id`, host, user and password come from that
    Airflow connection (Cosmos's LDAP profile mapping); otherwise from here and
    the worker's MOZART_TRINO_PASSWORD."""

    host: str = "trino"
    port: int = 8080
    user: str = "mozart"
    catalog: str = "iceberg"
    http_scheme: Literal["http", "https"] = "http"
    conn_id: str | None = None

    _unset_if_blank = field_validator("conn_id", mode="before")(_blank_to_none)


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

    _zone = field_validator("timezone")(_known_zone)

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
    """Who hears about a tenant's trouble, and through which channels.

    Each channel is an Airflow notifier whose secrets stay in a Connection
    (mozart_etl/factory/alerts.py builds them): e-mail through the smtp
    provider, Slack through an incoming-webhook connection. `on_failure` covers
    a failed run; `on_retry` a task attempt that failed and will be retried,
    off by default because a transient source hiccup is not worth a page.
    """

    emails: list[str] = Field(default_factory=list)
    on_failure: bool = True
    on_retry: bool = False
    smtp_conn_id: str | None = Field(
        default=None, description="Airflow SMTP connection of the alert e-mails."
    )
    slack_webhook_conn_id: str | None = Field(
        default=None,
        description="Airflow Slack incoming-webhook connection (type "
        "`slackwebhook`) the alerts are posted to; unset: no Slack.",
    )
    max_consecutive_failed_runs: int = Field(
        default=0,
        ge=0,
        description="Pause the DAG after N failed runs in a row (0: never).",
    )

    @property
    def has_channel(self) -> bool:
        """Whether any alert can reach a person (e-mail or Slack)."""
        return bool(self.emails or self.slack_webhook_conn_id)

    @model_validator(mode="after")
    def _retry_alerts_need_a_channel(self) -> AlertingConfig:
        # Asked-for retry alerts with nowhere to send them would be silently
        # dropped: the setting was accepted and ignored before.
        if self.on_retry and not self.has_channel:
            raise ValueError(
                "alerting.on_retry needs a channel: emails or slack_webhook_conn_id"
            )
        return self


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


def _flag_set() -> list[str | int | bool]:
    return [True]


class SoftDelete(FrozenModel):
    """Deletes the source marks instead of removing rows: a row whose `column`
    holds one of `values` is deleted from its cursor's instant on."""

    column: SourceIdent
    values: list[str | int | bool] = Field(default_factory=_flag_set, min_length=1)


KEY_SCAN = "key_scan"
"""`deletes: key_scan`: each sync reads the source's key columns and closes the
raw rows whose key is gone, at the moment of the scan."""


class TableConfig(FrozenModel):
    """One source table: what to read, how to load it, what good data is."""

    name: Name
    source: SourceTableRef
    primary_key: list[SourceIdent] = Field(min_length=1)
    columns: list[ColumnConfig] = Field(min_length=1)
    mode: LoadMode = LoadMode.FULL_REFRESH
    cursor: SourceIdent | None = None
    tenant_filter: TenantFilter | None = None
    lookback_hours: float = Field(
        default=0,
        ge=0,
        le=24 * 31,
        description="Incremental/merge: re-read this much before the window start "
        "(late rows); the load replaces the same widened window.",
    )
    timezone: str | None = Field(
        default=None,
        description="IANA zone of this table's naive `timestamp` columns, when "
        "it differs from the source's `timezone`.",
    )
    deletes: Literal["key_scan"] | SoftDelete | None = Field(
        default=None,
        description="How rows deleted in the source show: `key_scan` (compare "
        "the source's keys with raw's live keys each sync) or a soft-delete "
        "column. Full-refresh tables always close the keys their extract lacks.",
    )
    rules: list[Rule] = Field(default_factory=list)
    drift: DriftPolicy = Field(
        default=DriftPolicy.EVOLVE,
        description="What an added source column does: evolve (log) or fail.",
    )
    refresh_min_fraction: float = Field(
        default=0,
        ge=0,
        le=1,
        description="full_refresh: refuse a load with fewer rows than this "
        "fraction of the raw table's (raw stays as it was).",
    )
    allow_empty_refresh: bool = Field(
        default=False,
        description="full_refresh: let an empty extract empty a non-empty raw table.",
    )
    reconcile_sum: SourceIdent | None = Field(
        default=None,
        description="A numeric column whose sum over the window the reconcile "
        "stage compares between the source and raw (the count always is).",
    )
    mapping: MartMapping | None = Field(
        default=None,
        description="Map this table onto a product mart's standard staging "
        "model; `mozart sync` generates the staging and mart models.",
    )
    transform: str | None = Field(
        default=None,
        pattern=TRANSFORM_PATTERN,
        description="`<module>:<function>` in the tenant's folder: Arrow record "
        "batches in, batches out, run between validate and load.",
    )
    snapshot_key: SourceIdent | None = Field(
        default=None,
        description="mode snapshot: the column naming an immutable run (e.g. "
        "plan_run_id), part of the primary key; each run is loaded once.",
    )

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
        _check_snapshot_key(self)
        _check_deletes(self)
        if self.mode not in _CURSOR_OPTIONAL and self.cursor is None:
            raise ValueError(f"mode {self.mode} needs a `cursor` column")
        if self.cursor is not None:
            _require_column(names, self.cursor, "cursor")
            if self.column(self.cursor).type not in _TEMPORAL:
                raise ValueError(f"cursor {self.cursor!r} must be a date or timestamp")
        if self.tenant_filter is not None and self.source.query is not None:
            raise ValueError("tenant_filter applies to `table` sources only")
        if self.reconcile_sum is not None:
            _require_column(names, self.reconcile_sum, "reconcile_sum")
            if self.column(self.reconcile_sum).type not in NUMERIC_TYPES:
                raise ValueError(
                    f"reconcile_sum {self.reconcile_sum!r} must be a numeric column"
                )
        if self.mapping is not None:  # columns, expressions (sqlglot), codes
            check_mapping(self.mapping, {c.name: c.type for c in self.columns})
        for rule in self.rules:
            where = f"rule {rule.name or rule.type}"
            for column in rule.columns_read():
                _require_column(names, column, where)
            rule.check_types(self, where)
        return self

    _zone = field_validator("timezone")(_known_zone)


_CURSOR_OPTIONAL = {LoadMode.FULL_REFRESH, LoadMode.SNAPSHOT}
"""A snapshot table's cursor only narrows which runs an extract re-reads."""


def _check_deletes(table: TableConfig) -> None:
    if table.deletes is None:
        return
    if table.mode == LoadMode.SNAPSHOT:
        raise ValueError(
            "`deletes` does not apply to mode snapshot (runs are immutable)"
        )
    if isinstance(table.deletes, SoftDelete):
        _require_column(table.column_names, table.deletes.column, "deletes")


def _check_snapshot_key(table: TableConfig) -> None:
    key = table.snapshot_key
    if table.mode == LoadMode.SNAPSHOT and key is None:
        raise ValueError("mode snapshot needs `snapshot_key` (e.g. plan_run_id)")
    if key is None:
        return
    if table.mode != LoadMode.SNAPSHOT:
        raise ValueError(
            f"`snapshot_key` applies to mode snapshot only, not {table.mode}"
        )
    _require_column(table.column_names, key, "snapshot_key")
    if key not in table.primary_key:
        raise ValueError(
            f"snapshot_key {key!r} must be part of the primary key "
            f"{table.primary_key} (a run's rows are told apart by the rest of it)"
        )


def _require_column(names: list[str], column: str, where: str) -> None:
    if column not in names:
        raise ValueError(f"{where}: unknown column {column!r} (declared: {names})")


class PublishTarget(FrozenModel):
    """The APS operational PostgreSQL. Use `conn_id` to keep the password in Airflow."""

    type: Literal["postgresql"] = "postgresql"
    conn_id: str | None = Field(
        default=None, description="Airflow connection id; overrides host/user/…"
    )
    host: str | None = None
    port: int = Field(default=5432, ge=1, le=65535)
    database: str | None = None
    user: str | None = None
    password: SecretStr | None = None
    options: dict[str, str | int] = Field(
        default_factory=dict, description="libpq options, e.g. sslmode."
    )

    _unset_if_blank = field_validator(
        "conn_id", "host", "database", "user", "password", mode="before"
    )(_blank_to_none)

    @model_validator(mode="before")
    @classmethod
    def _schema_belongs_to_publish(cls, data: Any) -> Any:
        """A common slip: the target schema written under `target:`."""
        if isinstance(data, dict) and "schema" in data:
            raise ValueError(
                "`schema` is a setting of `publish:`, not of `publish.target:` "
                "(publish: {schema: aps, target: {...}, marts: [...]}); the "
                "target names the server and database"
            )
        return data

    @model_validator(mode="after")
    def _reachable(self) -> PublishTarget:
        if self.conn_id is None and not (self.host and self.database):
            raise ValueError(
                "a publish target needs `conn_id`, or `host` and `database`"
            )
        return self


class PublishMart(FrozenModel):
    """One mart copied to `<schema>.<table>` of the target (table: the mart's name)."""

    mart: Name
    table: Name | None = None
    mode: PublishMode | None = Field(
        default=None, description="Overrides the publish block's `mode`."
    )
    day_column: Name | None = Field(
        default=None,
        description="replace_day: the mart's production-day column "
        "(default: its only date column, or work_date / snapshot_date).",
    )
    key: list[Name] = Field(default_factory=list, description="upsert: the key.")

    @property
    def target_table(self) -> str:
        return self.table or self.mart


class PublishConfig(FrozenModel):
    """Copy marts to the APS operational database after the mart models ran."""

    target: PublishTarget
    schema_: Name = Field(default="public", alias="schema")
    mode: PublishMode = PublishMode.REPLACE_DAY
    marts: list[PublishMart] = Field(min_length=1)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("marts", mode="before")
    @classmethod
    def _bare_names(cls, value: object) -> object:
        """`- mart_wip` is short for `- {mart: mart_wip}`."""
        if isinstance(value, list):
            return [{"mart": item} if isinstance(item, str) else item for item in value]
        return value

    def mode_of(self, mart: PublishMart) -> PublishMode:
        return mart.mode or self.mode

    @model_validator(mode="after")
    def _consistent(self) -> PublishConfig:
        tables = [mart.target_table for mart in self.marts]
        duplicates = sorted({name for name in tables if tables.count(name) > 1})
        if duplicates:
            raise ValueError(f"publish: two marts write the table(s) {duplicates}")
        for mart in self.marts:
            if self.mode_of(mart) == PublishMode.UPSERT and not mart.key:
                raise ValueError(f"publish {mart.mart!r}: mode upsert needs `key`")
        return self


ROLE_PATTERN = r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$"
RoleName = Annotated[str, Field(pattern=ROLE_PATTERN)]
BUILTIN_ROLES = frozenset({"Admin", "Op", "User", "Viewer", "Public"})
"""The FAB auth manager's own roles: they see every DAG already, and the
stack's role init rewrites a tenant role's global permissions, which must
never happen to these."""


class AccessConfig(FrozenModel):
    """Who may see and who may run the tenant's DAGs: Airflow roles (FAB auth
    manager), turned into the DAGs' `access_control` by factory/access.py.

    Several plants share one Airflow, and a plant's people must not see or
    trigger another plant's runs. Unset, a kind defaults to a role named after
    the tenant (`<id>_viewer`, `<id>_operator`), so every tenant is isolated
    from the start without writing this block; `[]` grants that kind to no
    role (only Admin then).
    """

    read: list[RoleName] | None = Field(
        default=None,
        description="Roles that see the tenant's DAGs, runs, task logs and "
        "XComs. Unset: [<tenant_id>_viewer].",
    )
    operate: list[RoleName] | None = Field(
        default=None,
        description="Roles that also trigger, clear, pause and mark the "
        "tenant's runs. Unset: [<tenant_id>_operator].",
    )

    @field_validator("read", "operate")
    @classmethod
    def _no_builtin_role(cls, roles: list[str] | None) -> list[str] | None:
        builtin = sorted(set(roles or ()) & BUILTIN_ROLES)
        if builtin:
            raise ValueError(
                f"{builtin}: FAB's built-in roles cannot be a tenant's "
                "(they see every DAG); name a role of the tenant's own"
            )
        return roles

    def read_roles(self, tenant_id: str) -> list[str]:
        return self.read if self.read is not None else [f"{tenant_id}_viewer"]

    def operate_roles(self, tenant_id: str) -> list[str]:
        if self.operate is not None:
            return self.operate
        return [f"{tenant_id}_operator"]


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
    publish: PublishConfig | None = None
    plan_version: PlanVersionConfig = Field(
        default_factory=PlanVersionConfig,
        description="The `plan_ver` run parameter of the APS master marts.",
    )
    access: AccessConfig = Field(
        default_factory=AccessConfig,
        description="Roles that read and operate the tenant (docs/operations.md, "
        "Who sees which tenant).",
    )

    @property
    def raw_namespace(self) -> str:
        return self.iceberg.raw_namespace or f"{self.tenant_id}_raw"

    @property
    def namespace(self) -> str:
        return self.iceberg.namespace or self.tenant_id

    @property
    def lake_prefix(self) -> str:
        return self.storage.prefix or self.tenant_id

    def connections(self) -> dict[str, str]:
        """Every Airflow connection the tenant's tasks open, by the setting
        that names it: the source, the publish target and the Trino user are
        the tenant's own (`config/isolation.py`); the lake, the REST catalog
        and the alert channels may be shared platform connections."""
        named = {
            "source.conn_id": self.source.conn_id,
            "publish.target.conn_id": (
                self.publish.target.conn_id if self.publish is not None else None
            ),
            "dbt.trino.conn_id": (
                self.dbt.trino.conn_id if self.dbt.trino is not None else None
            ),
            "storage.s3.aws_conn_id": (
                self.storage.s3.aws_conn_id if self.storage.s3 is not None else None
            ),
            "iceberg.catalog.conn_id": self.iceberg.catalog.conn_id,
            "alerting.smtp_conn_id": self.alerting.smtp_conn_id,
            "alerting.slack_webhook_conn_id": self.alerting.slack_webhook_conn_id,
        }
        return {setting: conn_id for setting, conn_id in named.items() if conn_id}

    def dbt_vars(self) -> dict[str, object]:
        """The tenant's own dbt vars: its id, the zone of its naive source
        timestamps (staging's `mozart_core.source_instant`) and `dbt.vars`."""
        return {
            "tenant_id": self.tenant_id,
            "source_timezone": self.source.timezone or "UTC",
            **self.dbt.vars,
        }

    def source_zone(self, table: TableConfig) -> str:
        """The zone of the table's naive source timestamps (UTC when undeclared)."""
        return table.timezone or self.source.timezone or "UTC"

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
