"""Small builders shared by the stage tests: tenant configs, sources, lake files.

Tenants are built from plain dicts (the shape of a tenant.yaml) so each test
states exactly the tables and rules it exercises; lake and catalog live under
the test's tmp_path.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from mozart_etl.config.constants import LoadMode
from mozart_etl.config.models import TableConfig, TenantConfig
from mozart_etl.core.calendar import ProductionDay, production_day
from mozart_etl.core.lake import ExtractedFile, ExtractManifest, Lake
from mozart_etl.extract.query import Window
from mozart_etl.extract.types import arrow_schema

TENANT_ID = "acme"
TIMEZONE = "Asia/Seoul"
POSTGRES_HOST = "127.0.0.1"
POSTGRES_PORT = 5432
MYSQL_HOST = "127.0.0.1"
MYSQL_PORT = 3306

Row = dict[str, Any]
KST = timezone(timedelta(hours=9))


def sqlite_source(path: Path) -> dict[str, Any]:
    return {"type": "sqlite", "database": str(path)}


def postgres_source(database: str) -> dict[str, Any]:
    return {
        "type": "postgresql",
        "host": POSTGRES_HOST,
        "port": POSTGRES_PORT,
        "user": "postgres",
        "database": database,
    }


def mysql_source(database: str) -> dict[str, Any]:
    return {
        "type": "mysql",
        "host": MYSQL_HOST,
        "port": MYSQL_PORT,
        "user": "root",
        "database": database,
    }


def table_dict(
    name: str,
    columns: Sequence[dict[str, Any]],
    *,
    primary_key: Sequence[str] = ("id",),
    source: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One `tables:` entry; `extra` holds mode, cursor, rules, tenant_filter."""
    return {
        "name": name,
        "source": source or {"table": name},
        "primary_key": list(primary_key),
        "columns": [dict(column) for column in columns],
        **extra,
    }


def tenant_dict(
    tmp_path: Path,
    tables: Sequence[dict[str, Any]],
    *,
    source: dict[str, Any] | None = None,
    tenant_id: str = TENANT_ID,
    params: dict[str, str | int] | None = None,
) -> dict[str, Any]:
    """A minimal valid tenant.yaml as a dict, every file under `tmp_path`."""
    data: dict[str, Any] = {
        "tenant_id": tenant_id,
        "source": source or sqlite_source(tmp_path / "source.sqlite"),
        "storage": {"lake_root": str(tmp_path / "lake")},
        "iceberg": {"catalog": {"warehouse": str(tmp_path / "iceberg")}},
        "dbt": {"duckdb_path": str(tmp_path / "warehouse.duckdb")},
        "schedule": {"timezone": TIMEZONE, "start_date": "2026-11-01"},
        "tables": [dict(table) for table in tables],
    }
    if params is not None:
        data["params"] = params
    return data


def make_tenant(
    tmp_path: Path, tables: Sequence[dict[str, Any]], **kwargs: Any
) -> TenantConfig:
    data = tenant_dict(tmp_path, tables, **kwargs)
    return TenantConfig.model_validate(data, context={"base_dir": tmp_path})


def seoul_day(day: date) -> ProductionDay:
    """Production day `day` of the test tenant: [D-1 15:00, D 15:00) UTC."""
    return production_day(day, TIMEZONE)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- One table with every declared type --------------------------------------

TYPED_COLUMNS: list[dict[str, Any]] = [
    {"name": "id", "type": "bigint", "nullable": False},
    {"name": "label", "type": "string"},
    {"name": "big", "type": "bigint"},
    {"name": "small", "type": "int"},
    {"name": "ratio", "type": "double"},
    {"name": "flag", "type": "boolean"},
    {"name": "day", "type": "date"},
    {"name": "local_ts", "type": "timestamp"},
    {"name": "instant", "type": "timestamptz"},
    {"name": "amount", "type": "decimal", "precision": 10, "scale": 2},
    {"name": "order", "type": "string"},
    {"name": "lot id", "type": "string"},
]

TYPED_ROWS: list[Row] = [
    {
        "id": 1,
        "label": "가공-1 라인 ✓ «품질»",
        "big": 9_007_199_254_740_993,  # 2**53 + 1: not representable as a double
        "small": 2_147_483_647,
        "ratio": 0.1,
        "flag": True,
        "day": date(2026, 11, 15),
        "local_ts": datetime(2026, 11, 15, 23, 59, 59, 123456),
        "instant": datetime(2026, 11, 15, 9, 30, 0, 654321, tzinfo=KST),
        "amount": Decimal("12345678.90"),
        "order": "first",
        "lot id": "LOT 001",
    },
    {
        "id": 2,
        "label": 'O\'Brien "quoted" \\ back',
        "big": -9_223_372_036_854_775_808,
        "small": -2_147_483_648,
        "ratio": -1.5e300,
        "flag": False,
        "day": date(1999, 12, 31),
        "local_ts": datetime(2000, 1, 1, 0, 0, 0),
        "instant": datetime(2026, 11, 14, 15, 0, 0, tzinfo=UTC),
        "amount": Decimal("-0.01"),
        "order": "",
        "lot id": "LOT 002",
    },
    {
        "id": 3,
        "label": "세번째",
        "big": 0,
        "small": 0,
        "ratio": 2.5,
        "flag": True,
        "day": date(2026, 2, 28),
        "local_ts": datetime(2026, 3, 8, 2, 30, 0, 1),
        "instant": datetime(2026, 11, 15, 14, 59, 59, 999999, tzinfo=UTC),
        "amount": Decimal("-99999999.99"),
        "order": "third",
        "lot id": "LOT 003",
    },
    {name: None for name in (c["name"] for c in TYPED_COLUMNS)} | {"id": 4},
]


def typed_table(**extra: Any) -> dict[str, Any]:
    return table_dict("typed", TYPED_COLUMNS, **extra)


def expected_typed_schema() -> pa.Schema:
    return pa.schema(
        [
            ("id", pa.int64()),
            ("label", pa.string()),
            ("big", pa.int64()),
            ("small", pa.int32()),
            ("ratio", pa.float64()),
            ("flag", pa.bool_()),
            ("day", pa.date32()),
            ("local_ts", pa.timestamp("us")),
            ("instant", pa.timestamp("us", tz="UTC")),
            ("amount", pa.decimal128(10, 2)),
            ("order", pa.string()),
            ("lot id", pa.string()),
        ]
    )


def assert_typed_roundtrip(data: pa.Table) -> None:
    """`data` holds exactly TYPED_ROWS, every value of its exact declared type."""
    assert data.schema == expected_typed_schema()
    got = sorted(data.to_pylist(), key=lambda row: row["id"])
    assert len(got) == len(TYPED_ROWS)
    for row, want in zip(got, TYPED_ROWS, strict=True):
        for name, value in want.items():
            actual = row[name]
            if isinstance(value, datetime) and value.tzinfo is not None:
                # The same instant, labelled UTC.
                assert actual == value.astimezone(UTC), (row["id"], name)
                assert actual.utcoffset() == timedelta(0), (row["id"], name)
            elif isinstance(value, Decimal):
                # Exactly the decimal text, scale included.
                assert str(actual) == f"{value:.2f}", (row["id"], name)
            else:
                assert actual == value, (row["id"], name, actual)
                assert type(actual) is type(value), (row["id"], name, actual)


# --- SQLite sources, in the project's convention -------------------------------


def sqlite_instant(value: datetime) -> str:
    """A UTC instant as the SQLite sources store it (fixed-width text)."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00:00")


def sqlite_value(value: Any) -> Any:
    """Python value → what a SQLite MES source holds (text, 0/1, …)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.strftime("%Y-%m-%d %H:%M:%S.%f")
        return sqlite_instant(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bool):
        return int(value)
    return value


def write_sqlite(path: Path, ddl: str, table: str, rows: Iterable[Row]) -> None:
    """Create a SQLite table and insert `rows` (dicts keyed by column name)."""
    rows = list(rows)
    with sqlite3.connect(path) as conn:
        conn.execute(ddl)
        if rows:
            names = list(rows[0])
            columns = ", ".join(f'"{name}"' for name in names)
            marks = ", ".join("?" for _ in names)
            conn.executemany(
                f'INSERT INTO "{table}" ({columns}) VALUES ({marks})',
                [[sqlite_value(row[name]) for name in names] for row in rows],
            )
    conn.close()


# --- The lake ------------------------------------------------------------------


def read_extract(manifest: ExtractManifest) -> pa.Table:
    """Every Parquet file of an extract, concatenated."""
    return pa.concat_tables(pq.read_table(f.path) for f in manifest.files)


def day_window(
    table: TableConfig, day: ProductionDay, *, initial: bool = False
) -> Window | None:
    """A production day's cursor window `[start - lookback, end)` (None for a
    full refresh; `initial`: everything before the day's end). Runs no longer
    read by day (they sync from raw's high-water mark), but a window is still
    what a test extracts when it checks the extractor's bounds."""
    if table.mode == LoadMode.FULL_REFRESH or table.cursor is None:
        return None
    if initial:
        return Window(start=None, end=day.end)
    return Window(start=day.start - timedelta(hours=table.lookback_hours), end=day.end)


def write_extract(
    tenant: TenantConfig,
    table: TableConfig,
    rows: Sequence[Row],
    day: ProductionDay,
    *,
    extract_id: str = "20261115T000000000000Z-test0001",
    initial: bool = False,
    parts: int = 1,
) -> ExtractManifest:
    """Write `rows` with the table's declared schema as `parts` Parquet files and a
    manifest, as extract_table would, without a source (validate and load tests).
    The window is the one extract_table would have read."""
    lake = Lake(tenant)
    folder = lake.extract_folder(table.name, day.day, extract_id)
    lake.make_dirs(folder)
    schema = arrow_schema(table)
    rows = list(rows)
    size = -(-len(rows) // parts) if rows else 0
    files = []
    for part in range(parts):
        chunk = rows[part * size : (part + 1) * size]
        path = f"{folder}/part-{part:05d}.parquet"
        pq.write_table(pa.Table.from_pylist(chunk, schema=schema), path)
        size_on_disk = Path(path).stat().st_size
        files.append(ExtractedFile(path=path, rows=len(chunk), bytes=size_on_disk))
    window = day_window(table, day, initial=initial)
    now = datetime.now(UTC)
    manifest = ExtractManifest(
        tenant_id=tenant.tenant_id,
        table=table.name,
        production_day=day.day,
        extract_id=extract_id,
        folder=folder,
        window_start=window.start if window else None,
        window_end=window.end if window else None,
        rows=len(rows),
        files=files,
        columns={c.name: str(c.type) for c in table.columns},
        started_at=now,
        finished_at=now,
    )
    lake.write_manifest(manifest)
    return manifest


def content_hash(table: pa.Table, exclude: Iterable[str] = ()) -> str:
    """A hash of the rows (sorted) over every column but `exclude`."""
    skip = set(exclude)
    names = [name for name in table.column_names if name not in skip]
    rows = [
        json.dumps([row[name] for name in names], default=str, ensure_ascii=False)
        for row in table.select(names).to_pylist()
    ]
    digest = hashlib.sha256()
    for row in sorted(rows):
        digest.update(row.encode("utf-8") + b"\n")
    return digest.hexdigest()


def run_vars_xcom(
    tenant: TenantConfig, day: date, plan_ver: str = "2026-W47"
) -> dict[str, str]:
    """The first task's XCom for production day `day` of `tenant` (what the
    later tasks, publish included, receive as `day_vars`)."""
    from mozart_etl.core.run_vars import RunVars

    schedule = tenant.schedule
    window = production_day(day, schedule.timezone, schedule.day_start_hour)
    return RunVars.of(window, plan_ver).to_xcom()


def copy_demo_tenant(tenants: Path, extra_yaml: str = "") -> Path:
    """tenants/demo copied under `tenants` (its prebuilt dbt manifests
    included), with no task retries (a failure fails the run at once) and
    `extra_yaml` appended to its tenant.yaml."""
    folder = tenants / "demo"
    shutil.copytree(
        Path(__file__).resolve().parents[1] / "tenants" / "demo",
        folder,
        symlinks=True,
        ignore=shutil.ignore_patterns("logs"),
    )
    yaml_path = folder / "tenant.yaml"
    text = yaml_path.read_text().replace("retries: 2", "retries: 0")
    yaml_path.write_text(text + extra_yaml)
    return folder
