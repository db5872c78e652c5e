"""`mozart_core.source_instant`: a naive source wall time as an instant.

The macro is compiled by dbt for both targets (a throwaway project that
installs mozart_core). The DuckDB rendering is executed with the duckdb
package, in a session whose own zone is neither UTC nor the source's, and
compared with Python's reading of the same wall time (`zoneinfo`, fold=0: the
first occurrence of a repeated wall time), which is how the tests' oracles read
acme's source. The Trino rendering, with no Trino at hand, is parsed with
sqlglot's trino dialect and checked for the functions it must use.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest
import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel

from mozart_etl.config.loader import load_tenant
from mozart_etl.dbt.runner import invoke_dbt

ROOT = Path(__file__).resolve().parents[2]
NEW_YORK = "America/New_York"
# Zones of both hemispheres, and one whose clocks change by 30 minutes.
ZONES = [NEW_YORK, "Europe/Berlin", "Australia/Lord_Howe"]
CHANGE_DAYS = {  # (spring forward, fall back) in 2026, local dates
    NEW_YORK: ("2026-03-08", "2026-11-01"),
    "Europe/Berlin": ("2026-03-29", "2026-10-25"),
    "Australia/Lord_Howe": ("2026-10-04", "2026-04-05"),
}
PROBE = (
    "select {{ mozart_core.source_instant('ts') }} as by_var, "
    "{{ mozart_core.source_instant('ts', 'UTC') }} as utc, "
    "{% for zone in ZONES %}{{ mozart_core.source_instant('ts', zone) }} "
    "as zone_{{ loop.index0 }}{{ ', ' if not loop.last }}{% endfor %}"
)


def _compile(folder: Path, target: str) -> str:
    """The probe compiled by dbt for `target`, with source_timezone New York."""
    tenant = load_tenant(ROOT / "tenants" / "acme")  # for its dbt profile only
    result = invoke_dbt(
        folder,
        tenant,
        [
            "compile",
            "--quiet",
            "--target",
            target,
            "--no-introspect",
            "--no-populate-cache",
            "--target-path",
            str(folder / f"target-{target}"),
            "--vars",
            json.dumps({"source_timezone": NEW_YORK}),
            "--inline",
            PROBE.replace("ZONES", json.dumps(ZONES)),
        ],
        env={
            "MOZART_DBT_TARGET": target,
            "MOZART_TRINO_HOST": "127.0.0.1",  # never connects: port 1 refuses
            "MOZART_TRINO_PORT": "1",
        },
    )
    return result.result.results[0].node.compiled_code


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """{target: compiled probe} from a minimal project depending on mozart_core."""
    folder = tmp_path_factory.mktemp("source_instant")
    project = folder / "dbt"
    project.mkdir()
    (project / "dbt_project.yml").write_text(
        'name: source_instant_probe\nversion: "0.1.0"\nconfig-version: 2\n'
        "profile: mozart\n"
    )
    (project / "packages.yml").write_text(
        (ROOT / "tenants" / "acme" / "dbt" / "packages.yml").read_text()
    )
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MOZART_HOME", str(home))
        invoke_dbt(folder, load_tenant(ROOT / "tenants" / "acme"), ["deps"])
        return {target: _compile(folder, target) for target in ("duckdb", "trino")}


def _duckdb(sql: str, values: list[datetime | None]) -> list[tuple[datetime, ...]]:
    """Run the compiled probe over naive `ts` values, in a Seoul session."""
    conn = duckdb.connect()
    conn.execute("SET TimeZone = 'Asia/Seoul'")
    conn.execute("CREATE TABLE t (n INTEGER, ts TIMESTAMP)")
    conn.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(values)))
    rows = conn.execute(f"SELECT p.* FROM t, LATERAL ({sql}) AS p ORDER BY t.n")
    return [
        tuple(None if v is None else v.astimezone(UTC) for v in row)
        for row in rows.fetchall()
    ]


def _first_occurrence(wall: datetime, zone: str) -> datetime:
    """The oracle's reading: fold=0, the offset before a change."""
    return wall.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


def test_duckdb_new_york_around_the_end_of_dst(rendered: dict[str, str]) -> None:
    """New York, 2026-11-01: 01:00-02:00 is shown twice (EDT, then EST); the
    wall time is read as the EDT one, the one before stays and after is EST."""
    walls = {
        datetime(2026, 11, 1, 0, 30): datetime(2026, 11, 1, 4, 30, tzinfo=UTC),
        datetime(2026, 11, 1, 1, 0): datetime(2026, 11, 1, 5, 0, tzinfo=UTC),
        datetime(2026, 11, 1, 1, 30): datetime(2026, 11, 1, 5, 30, tzinfo=UTC),
        datetime(2026, 11, 1, 1, 59, 59, 999999): datetime(
            2026, 11, 1, 5, 59, 59, 999999, tzinfo=UTC
        ),
        datetime(2026, 11, 1, 2, 0): datetime(2026, 11, 1, 7, 0, tzinfo=UTC),
        datetime(2026, 11, 1, 2, 30): datetime(2026, 11, 1, 7, 30, tzinfo=UTC),
    }
    rows = _duckdb(rendered["duckdb"], list(walls))
    assert [row[0] for row in rows] == list(walls.values())  # var source_timezone
    assert [row[2] for row in rows] == list(walls.values())  # zone argument


def test_duckdb_production_day_of_25_hours(rendered: dict[str, str]) -> None:
    """Acme's production day 2026-10-31, [06:00, 06:00) New York wall time."""
    start, end = _duckdb(
        rendered["duckdb"], [datetime(2026, 10, 31, 6), datetime(2026, 11, 1, 6)]
    )
    assert end[0] - start[0] == timedelta(hours=25)
    assert start[0] == datetime(2026, 10, 31, 10, tzinfo=UTC)


def test_duckdb_equals_python_across_every_change(rendered: dict[str, str]) -> None:
    """Every 10 minutes of both change days in three zones (gaps included: a
    wall time no clock shows reads with the offset before the change)."""
    walls: list[datetime | None] = [None]
    for spring, fall in CHANGE_DAYS.values():
        for day in (spring, fall):
            start = datetime.fromisoformat(day) - timedelta(hours=2)
            walls += [start + timedelta(minutes=10 * i) for i in range(6 * 28)]
    rows = _duckdb(rendered["duckdb"], walls)
    assert rows[0] == (None,) * (2 + len(ZONES))
    for wall, row in zip(walls[1:], rows[1:], strict=True):
        assert row[1] == wall.replace(tzinfo=UTC), wall
        for zone, instant in zip(ZONES, row[2:], strict=True):
            assert instant == _first_occurrence(wall, zone), (zone, wall)


def test_trino_rendering_parses_and_uses_with_timezone(
    rendered: dict[str, str],
) -> None:
    sql = rendered["trino"]
    (statement,) = sqlglot.parse(sql, read="trino", error_level=ErrorLevel.RAISE)
    assert statement is not None
    assert "timezone(" not in sql.replace("with_timezone(", "")  # DuckDB's form
    names = {
        (node.name or node.sql_name()).lower() for node in statement.find_all(exp.Func)
    }
    assert {"with_timezone", "least", "coalesce"} <= names, names
    by_var = statement.expressions[0].sql(dialect="trino")
    assert "'America/New_York'" in by_var and "'UTC'" in by_var
    # UTC needs no ambiguity handling: a plain with_timezone.
    assert statement.expressions[1].sql(dialect="trino") == (
        "WITH_TIMEZONE(ts, 'UTC') AS utc"
    )
