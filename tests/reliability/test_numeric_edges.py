"""17. Numbers at the edges, through the real extract → validate → load →
reconcile tasks: NaN and ±Infinity in a reconciled double column, a decimal
wider than its declared precision, a column widened between runs.

Expectations come from the rows the test wrote into the source.
"""

from __future__ import annotations

import math
import shutil
import sqlite3
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pyarrow.parquet as pq
import pytest
from airflow.sdk.exceptions import AirflowFailException

from mozart_etl.core.errors import ReconcileMismatch, ValidationFailed
from mozart_etl.factory import tasks
from mozart_etl.load.catalog import open_catalog
from mozart_etl.load.schema import SchemaChangeRefused
from mozart_etl.load.versions import live_rows
from tests.conftest import POSTGRES_DSN
from tests.helpers import postgres_source, sqlite_instant, table_dict, tenant_dict
from tests.reliability.chaos import Recorder, iceberg_orphans, raw_figures
from tests.reliability.pipeline import run_table, task_context, tenant_of, write_tenant

DAY, NEXT = date(2026, 11, 15), date(2026, 11, 16)
KEY = ["id"]
RAW = ("acme_raw", "readings")
AT = datetime(2026, 11, 14, 16, 0, tzinfo=UTC)  # inside production day DAY


def _pg(database: str, *statements: str) -> None:
    with psycopg.connect(f"{POSTGRES_DSN} dbname={database}", autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def _tenant(tmp_path: Path, source: dict[str, Any], value: dict[str, Any]) -> Path:
    columns = [
        {"name": "id", "type": "bigint", "nullable": False},
        {"name": "value", **value},
        {"name": "updated_at", "type": "timestamptz", "nullable": False},
    ]
    readings = table_dict(
        "readings",
        columns,
        mode="incremental",
        cursor="updated_at",
        reconcile_sum="value",
    )
    data = tenant_dict(tmp_path, [readings], source=source)
    data["schedule"]["retries"] = 0
    return write_tenant(tmp_path / "tenants", data)


def _raw_values(folder: Path) -> dict[int, Any]:
    tenant = tenant_of(folder)
    raw = open_catalog(tenant).load_table(RAW)
    live = live_rows(raw, tenant.table("readings"), columns=["id", "value"])
    return {row["id"]: row["value"] for row in live.to_pylist()}


def _figures(folder: Path, source_keys: list[tuple]) -> tuple[int, int, int]:
    catalog = open_catalog(tenant_of(folder))
    lost, dups = raw_figures(catalog, RAW, KEY, source_keys)
    return lost, dups, iceberg_orphans(catalog, RAW)


DOUBLES = {
    1: 1.5,
    2: float("nan"),
    3: float("inf"),
    4: float("-inf"),
    5: -0.25,
    6: float("nan"),
    7: None,
}


def _double_source(postgres_db: str) -> None:
    values = ", ".join(
        f"({i}, {'NULL' if v is None else repr(str(v)) + '::float8'}, "
        f"'{(AT + timedelta(minutes=i)).isoformat()}')"
        for i, v in DOUBLES.items()
    )
    _pg(
        postgres_db,
        "CREATE TABLE readings (id bigint PRIMARY KEY, value double precision, "
        "updated_at timestamptz NOT NULL)",
        f"INSERT INTO readings VALUES {values}",
    )


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_nan_and_infinity_reconcile_as_themselves(
    tmp_path: Path, postgres_db: str, chaos: Recorder
) -> None:
    chaos.name("17. NaN, +inf, -inf in a reconciled double → reconcile passes")
    _double_source(postgres_db)
    folder = _tenant(tmp_path, postgres_source(postgres_db), {"type": "double"})

    out = run_table(folder, "readings", DAY, "edges")

    result = out["reconcile"]
    assert result["matched"], result
    # The finite values' sum and the non-finite counts, on both sides.
    assert result["source_sum"] == "1.25 + 2 NaN + 1 inf + 1 -inf", result
    assert result["raw_sum"] == result["source_sum"]
    got = _raw_values(folder)
    assert sorted(got) == sorted(DOUBLES)
    assert all(_same(got[i], v) for i, v in DOUBLES.items()), got
    lost, dups, orphans = _figures(folder, [(i,) for i in DOUBLES])
    chaos.record(lost=lost, dups=dups, orphans=orphans, cause="— (passes)")
    assert (lost, dups, orphans) == (0, 0, 0)


@pytest.mark.parametrize(
    ("change", "statement"),
    [
        (
            "a finite value beside the NaNs",
            "UPDATE readings SET value = 2.5 WHERE id = 1",
        ),
        ("a NaN became a number", "UPDATE readings SET value = 0 WHERE id = 2"),
        ("+inf became -inf", "UPDATE readings SET value = '-Infinity' WHERE id = 3"),
    ],
)
def test_a_real_difference_beside_nan_still_fails_the_reconcile(
    tmp_path: Path, postgres_db: str, change: str, statement: str, chaos: Recorder
) -> None:
    """The source changes after the load without touching the cursor (so the
    sync cannot see it): raw differs from the source, and the sum says so."""
    chaos.name(f"17. double column with NaN: {change} → ReconcileMismatch")
    _double_source(postgres_db)
    folder = _tenant(tmp_path, postgres_source(postgres_db), {"type": "double"})
    out = run_table(
        folder, "readings", DAY, "edges", stages=("extract", "validate", "load")
    )
    _pg(postgres_db, statement)

    with pytest.raises(AirflowFailException) as caught, task_context("edges", DAY):
        tasks.run_reconcile(
            str(folder), "readings", out["extract"], out["validate"], out["load"]
        )

    assert isinstance(caught.value.__cause__, ReconcileMismatch)
    message = str(caught.value)
    assert "tenant=acme table=readings" in message, message
    assert "sum(value): source" in message, message
    lost, dups, orphans = _figures(folder, [(i,) for i in DOUBLES])
    chaos.record(
        lost=lost, dups=dups, orphans=orphans, cause="ReconcileMismatch (both sums)"
    )
    assert (lost, dups, orphans) == (0, 0, 0)


DECIMALS = {
    1: Decimal("1.5"),
    2: Decimal("123456789012345678901"),  # 21 integer digits: decimal(38,18) has 20
    3: Decimal("99999999999999999999.999999999999999999"),  # the widest that fits
    4: Decimal("-99999999999999999999.999999999999999999"),
    5: Decimal("-0.000000000000000001"),
}


def test_a_decimal_wider_than_declared_is_refused_naming_the_column(
    tmp_path: Path, postgres_db: str, chaos: Recorder
) -> None:
    chaos.name(
        "17. 21-digit integer into decimal(38,18) → ValidationFailed names the column"
    )
    values = ", ".join(
        f"({i}, {v}, '{(AT + timedelta(minutes=i)).isoformat()}')"
        for i, v in DECIMALS.items()
    )
    _pg(
        postgres_db,
        "CREATE TABLE readings (id bigint PRIMARY KEY, value numeric, "
        "updated_at timestamptz NOT NULL)",
        f"INSERT INTO readings VALUES {values}",
    )
    declared = {"type": "decimal", "precision": 38, "scale": 18}
    folder = _tenant(tmp_path, postgres_source(postgres_db), declared)

    with pytest.raises(AirflowFailException) as caught:
        run_table(folder, "readings", DAY, "wide")

    assert isinstance(caught.value.__cause__, ValidationFailed)
    message = str(caught.value)
    assert "tenant=acme table=readings column=value rule=decimal_fits(value)" in (
        message
    ), message
    assert "1 row(s) with more than 20 integer digit(s)" in message, message
    assert "'value' is declared decimal(38,18)" in message, message
    assert not open_catalog(tenant_of(folder)).table_exists(RAW)  # nothing loaded
    quarantine = message.rsplit("Rejected rows: ", 1)[1]
    held = pq.read_table(quarantine).to_pylist()
    assert [(row["id"], row["value"]) for row in held] == [(2, DECIMALS[2])]

    # The source corrected, the next run loads every row, exactly.
    _pg(postgres_db, "UPDATE readings SET value = 12345.678 WHERE id = 2")
    out = run_table(folder, "readings", NEXT, "fixed")
    assert out["reconcile"]["matched"], out["reconcile"]
    expected = {**DECIMALS, 2: Decimal("12345.678")}
    got = _raw_values(folder)
    assert got == expected
    assert {value.as_tuple().exponent for value in got.values()} == {-18}  # scale
    lost, dups, orphans = _figures(folder, [(i,) for i in DECIMALS])
    chaos.record(
        lost=lost,
        dups=dups,
        orphans=orphans,
        cause="ValidationFailed column=value rule=decimal_fits(value)",
    )
    assert (lost, dups, orphans) == (0, 0, 0)


# --- a column's type changed between runs ---------------------------------------


def _sqlite_source(tmp_path: Path, rows: dict[int, int]) -> dict[str, Any]:
    path = tmp_path / "source.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS readings "
            "(id INTEGER, value INTEGER, updated_at TEXT)"
        )
        conn.executemany(
            "INSERT INTO readings VALUES (?, ?, ?)",
            [
                (i, v, sqlite_instant(AT + timedelta(days=i // 10, minutes=i)))
                for i, v in rows.items()
            ],
        )
    conn.close()
    return {"type": "sqlite", "database": str(path)}


def test_a_column_widened_in_tenant_yaml_evolves_raw(
    tmp_path: Path, chaos: Recorder
) -> None:
    chaos.name("17. column declared int → bigint between runs → raw widened, loads")
    first = {1: 2_147_483_647, 2: -2_147_483_648}
    source = _sqlite_source(tmp_path, first)
    run_table(_tenant(tmp_path, source, {"type": "int"}), "readings", DAY, "int")

    later = {11: 9_007_199_254_740_993, 12: -3_000_000_000}  # next day's rows
    _sqlite_source(tmp_path, later)
    folder = _tenant(tmp_path, source, {"type": "bigint"})
    out = run_table(folder, "readings", NEXT, "bigint")

    assert out["reconcile"]["matched"], out["reconcile"]
    raw = open_catalog(tenant_of(folder)).load_table(RAW)
    assert str(raw.schema().find_field("value").field_type) == "long"
    assert _raw_values(folder) == {**first, **later}
    lost, dups, orphans = _figures(folder, [(i,) for i in {**first, **later}])
    chaos.record(lost=lost, dups=dups, orphans=orphans, cause="— (evolves, logged)")
    assert (lost, dups, orphans) == (0, 0, 0)


def test_a_column_narrowed_in_tenant_yaml_is_refused_by_the_load(
    tmp_path: Path, chaos: Recorder
) -> None:
    """bigint → int with the previous extract gone from the lake (so the
    validator's drift check has nothing to compare): the load refuses."""
    chaos.name("17. column declared bigint → int, no previous extract → refused")
    rows = {1: 5, 2: 6}
    source = _sqlite_source(tmp_path, rows)
    folder = _tenant(tmp_path, source, {"type": "bigint"})
    run_table(folder, "readings", DAY, "bigint")
    raw = open_catalog(tenant_of(folder)).load_table(RAW)
    before = (raw.schema(), raw.current_snapshot())
    shutil.rmtree(tmp_path / "lake" / "acme" / "readings")  # lake retention
    folder = _tenant(tmp_path, source, {"type": "int"})

    with pytest.raises(AirflowFailException) as caught:
        run_table(folder, "readings", NEXT, "int")

    assert isinstance(caught.value.__cause__, SchemaChangeRefused)
    message = str(caught.value)
    assert "tenant=acme table=readings column=value" in message, message
    assert "from long (raw) to int (this load)" in message, message
    raw = open_catalog(tenant_of(folder)).load_table(RAW)
    assert (raw.schema(), raw.current_snapshot()) == before
    lost, dups, orphans = _figures(folder, [(i,) for i in rows])
    chaos.record(
        lost=lost,
        dups=dups,
        orphans=orphans,
        cause="SchemaChangeRefused column=value long→int",
    )
    assert (lost, dups, orphans) == (0, 0, 0)
