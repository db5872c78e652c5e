"""The Trino rendering of every staging and mart model, executed: transpiled
with sqlglot to DuckDB and run on the raw rows the DuckDB target read, its
marts equal to the DuckDB target's, for demo and acme.

No Trino runs here, so parsing the Trino SQL (tests/dbt/test_render_trino.py)
was all that was checked; a macro whose Trino variant computes something else
than its DuckDB one (a unit, a zone, an interval) passed. Here one production
day of each tenant is synced through the real stages into a fresh Iceberg
catalog and built by dbt on DuckDB (tests/asof/harness.py), the same day is
compiled for the trino target, and each model's SQL is run in dependency order
by tests/stack/trino_duckdb.py. acme's day is 2026-10-31, 25 hours long (the
end of daylight saving time in New York), its source naive wall time.
"""

from __future__ import annotations

import json
import math
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from mozart_etl.config.models import TenantConfig
from mozart_etl.core.calendar import production_day
from mozart_etl.core.environ import scoped_environ
from mozart_etl.core.run_vars import RunVars
from mozart_etl.dbt.runner import invoke_dbt
from mozart_etl.demo.acme import (
    ACME_DAY_START_HOUR,
    ACME_DST_DAY,
    ACME_TZ,
    drop_acme_database,
    write_acme_source,
)
from mozart_etl.demo.generate import DEMO_DAY, generate_demo_source
from mozart_etl.load.catalog import open_catalog
from tests.asof.harness import Deployment
from tests.e2e.asof_oracle import day_end
from tests.stack.trino_duckdb import compile_for_trino, run_trino_models, to_duckdb

ROOT = Path(__file__).resolve().parents[2]


class _WholeProject(Deployment):
    """The harness's deployment, dbt building every model (master marts too)
    with the day's plan version."""

    def _build(self, tenant: TenantConfig, day: date) -> None:
        target = self.home / "dbt"
        invoke_dbt(
            self.folder,
            tenant,
            [
                "build",
                "--vars",
                json.dumps(run_variables(tenant, day)),
                "--quiet",
                "--target-path",
                str(target / "target"),
                "--log-path",
                str(target / "logs"),
            ],
        )


def run_variables(tenant: TenantConfig, day: date) -> dict[str, Any]:
    """The dbt vars of the run of `day`, as the DAG hands them to dbt."""
    window = production_day(
        day, tenant.schedule.timezone, tenant.schedule.day_start_hour
    )
    plan_ver = day.strftime(tenant.plan_version.default)
    return {**tenant.dbt_vars(), **RunVars.of(window, plan_ver).to_xcom()}


@dataclass
class Built:
    """One tenant's built day: its raw rows and the DuckDB target's marts."""

    tenant: TenantConfig
    folder: Path
    day: date
    raw: dict[str, pa.Table]
    duckdb_marts: dict[str, list[tuple[Any, ...]]]
    columns: dict[str, list[str]]


def _deploy(tenant_id: str, home: Path, day: date, write_source: Any) -> Built:
    deployment = _WholeProject(tenant_id, home, write_source)
    at = day_end(*_zone(tenant_id, day)) + timedelta(minutes=30)
    deployment.run_day(day, at)
    tenant = deployment.tenant()
    with scoped_environ({"MOZART_HOME": str(home)}):
        catalog = open_catalog(tenant)
        raw = {
            table.name: catalog.load_table(f"{tenant.raw_namespace}.{table.name}")
            .scan()
            .to_arrow()
            for table in tenant.tables
        }
    assert tenant.dbt.duckdb_path is not None
    marts, columns = {}, {}
    with duckdb.connect(tenant.dbt.duckdb_path, read_only=True) as con:
        for (name,) in con.execute(
            "select table_name from information_schema.tables "
            "where table_schema = ? and table_name like 'mart_%'",
            [tenant.namespace],
        ).fetchall():
            marts[name], columns[name] = _rows(con, f"{tenant.namespace}.{name}")
    return Built(tenant, deployment.folder, day, raw, marts, columns)


def _zone(tenant_id: str, day: date) -> tuple[Any, ...]:
    """day_end's arguments: the demo's defaults, acme's zone and day start."""
    return (day,) if tenant_id == "demo" else (day, ACME_TZ, ACME_DAY_START_HOUR)


def _rows(con: duckdb.DuckDBPyConnection, table: str) -> tuple[list[tuple], list[str]]:
    result = con.execute(f"select * from {table}")
    names = [d[0] for d in result.description]
    rows = sorted(
        (tuple(_plain(v) for v in row) for row in result.fetchall()), key=repr
    )
    return rows, names


def _plain(value: Any) -> Any:
    """One representation per value across engines' types: instants in UTC,
    decimals and floats as floats (compared with a tolerance)."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    if isinstance(value, Decimal):
        return float(value)
    return value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return (
            a is not None
            and b is not None
            and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
        )
    return a == b


def mart_differences(built: Built, con: duckdb.DuckDBPyConnection) -> list[str]:
    """Where the transpiled Trino marts differ from the DuckDB target's."""
    differences = []
    for mart, expected in sorted(built.duckdb_marts.items()):
        got, names = _rows(con, f"iceberg.{built.tenant.namespace}.{mart}")
        if names != built.columns[mart]:
            differences.append(f"{mart}: columns {names} != {built.columns[mart]}")
            continue
        if len(got) != len(expected):
            differences.append(f"{mart}: {len(got)} rows != {len(expected)}")
            continue
        for row_got, row_want in zip(got, expected, strict=True):
            for name, a, b in zip(names, row_got, row_want, strict=True):
                if not _same(a, b):
                    differences.append(f"{mart}.{name}: trino {a!r} != duckdb {b!r}")
    return differences


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Built:
    home = tmp_path_factory.mktemp("transpile-demo") / "mozart"

    def write_source(at: datetime) -> None:
        generate_demo_source(
            home / "demo" / "source.sqlite", scale=0.5, days=3, as_of=at
        )

    return _deploy("demo", home, DEMO_DAY, write_source)


@pytest.fixture(scope="module")
def acme(tmp_path_factory: pytest.TempPathFactory) -> Any:
    home = tmp_path_factory.mktemp("transpile-acme") / "mozart"
    database = f"mozart_acme_{uuid.uuid4().hex[:8]}"
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv(
            "AIRFLOW_CONN_ACME_MES", f"mysql://root@127.0.0.1:3306/{database}"
        )
        try:
            yield _deploy(
                "acme",
                home,
                ACME_DST_DAY,
                lambda at: write_acme_source(database, as_of=at),
            )
        finally:
            drop_acme_database(database)


@pytest.fixture(params=["demo", "acme"])
def built(request: pytest.FixtureRequest) -> Built:
    return request.getfixturevalue(request.param)


def test_trino_marts_equal_the_duckdb_targets(built: Built, tmp_path: Path) -> None:
    manifest = compile_for_trino(
        built.folder, built.tenant, run_variables(built.tenant, built.day), tmp_path
    )
    models = [n for n in manifest["nodes"].values() if n["resource_type"] == "model"]
    names = {m["name"] for m in models}
    assert set(built.duckdb_marts) <= names
    assert {"mart_wip", "mart_cycle_time", "stg_lot_history"} <= names
    # Every mart has rows for the day: an empty comparison would prove nothing.
    assert all(rows for rows in built.duckdb_marts.values()), {
        mart: len(rows) for mart, rows in built.duckdb_marts.items()
    }
    con = run_trino_models(manifest, built.raw)
    assert mart_differences(built, con) == []


def test_a_broken_trino_macro_is_caught(demo: Built, tmp_path: Path) -> None:
    """The check can fail: a Trino-only macro off by a unit (milliseconds
    taken for tenths of them) changes the cycle-time marts, and only on Trino."""
    folder = tmp_path / "demo"
    shutil.copytree(
        demo.folder / "dbt",
        folder / "dbt",
        ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"),
    )
    core = folder / "dbt" / "dbt_packages" / "mozart_core"
    shutil.copytree(ROOT / "dbt" / "mozart_core", core)
    portable = core / "macros" / "portable.sql"
    text = portable.read_text()
    good = "(to_milliseconds(({{ end }}) - ({{ start }})) * 1000)"
    assert good in text
    portable.write_text(text.replace(good, good.replace("* 1000", "* 100")))
    manifest = compile_for_trino(
        folder, demo.tenant, run_variables(demo.tenant, demo.day), tmp_path / "out"
    )
    differences = mart_differences(demo, run_trino_models(manifest, demo.raw))
    assert any(d.startswith("mart_cycle_time.avg_queue_hours") for d in differences)
    assert not any(d.startswith("mart_wip") for d in differences)


# --- the transpiler's Trino-only rewrites, on their own ----------------------------


def _one(sql: str) -> Any:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con.execute(to_duckdb(sql)).fetchone()


def test_to_milliseconds_drops_sub_milliseconds_as_trino_does() -> None:
    """Trino subtracts the instants' epoch milliseconds (floor): 0.9999 ms
    apart across a millisecond boundary is 1 ms; DuckDB's own epoch_ms
    would round."""
    (millis,) = _one(
        "select to_milliseconds((timestamp '2026-01-01 00:00:01.000100 UTC')"
        " - (timestamp '2026-01-01 00:00:00.999900 UTC'))"
    )
    assert millis == 1
    (millis,) = _one(
        "select to_milliseconds((timestamp '2026-01-01 00:00:01.999900 UTC')"
        " - (timestamp '2026-01-01 00:00:00.000100 UTC'))"
    )
    assert millis == 1999


def test_zoned_wall_time_casts_read_the_zone() -> None:
    """`with_timezone` reads a wall time in a zone; `cast(x at time zone z as
    timestamp)` writes one; a bare `at time zone` keeps the instant."""
    instant, wall, same = _one(
        "select with_timezone(timestamp '2026-10-31 12:00:00', 'America/New_York'),"
        " cast(with_timezone(timestamp '2026-10-31 12:00:00', 'UTC')"
        "   at time zone 'Asia/Seoul' as timestamp(6)),"
        " (with_timezone(timestamp '2026-10-31 12:00:00', 'UTC')"
        "   at time zone 'Asia/Seoul')"
        "   = with_timezone(timestamp '2026-10-31 12:00:00', 'UTC')"
    )
    assert instant == datetime(2026, 10, 31, 16, tzinfo=UTC)
    assert wall == datetime(2026, 10, 31, 21)
    assert same is True


def test_a_zone_reaching_a_cast_another_way_is_refused() -> None:
    with pytest.raises(NotImplementedError, match="zoned instant cast"):
        to_duckdb(
            "select cast((x at time zone 'Asia/Seoul') + interval '1' hour as date)"
        )
    with pytest.raises(NotImplementedError, match="to_milliseconds"):
        to_duckdb("select to_milliseconds(x)")
