"""Trino without a server: every model and test renders for the trino target and
parses under sqlglot's trino dialect; DuckDB-only syntax never leaks into it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlglot
from sqlglot.errors import ErrorLevel

from mozart_etl.config.constants import DbtTarget
from mozart_etl.config.loader import load_tenant, tenant_folders
from mozart_etl.dbt.render import render_models

ROOT = Path(__file__).resolve().parents[2]
TENANTS = tenant_folders(ROOT / "tenants")
# Constructs DuckDB accepts and Trino rejects; their presence means a macro
# was not dispatched for the trino adapter.
DUCKDB_ONLY = [r"\bepoch_us\s*\(", r"::", r"\bgroup\s+by\s+all\b", r"\blist_filter\b"]


@pytest.fixture(scope="module", params=TENANTS, ids=[f.name for f in TENANTS])
def trino_sql(request: pytest.FixtureRequest, tmp_path_factory) -> dict[str, str]:
    folder: Path = request.param
    out = tmp_path_factory.mktemp(f"render-{folder.name}")
    return render_models(folder, load_tenant(folder), DbtTarget.TRINO, out)


def test_every_model_renders_for_trino(trino_sql: dict[str, str]) -> None:
    models = {
        path for path in trino_sql if "/models/" in path and path.endswith(".sql")
    }
    marts = {Path(p).stem for p in models if Path(p).stem.startswith("mart_")}
    assert {"mart_wip", "mart_cycle_time", "mart_plan_vs_actual"} <= marts


def test_rendered_sql_parses_as_trino(trino_sql: dict[str, str]) -> None:
    for path, sql in trino_sql.items():
        parsed = sqlglot.parse(sql, read="trino", error_level=ErrorLevel.RAISE)
        assert [statement for statement in parsed if statement is not None], path


def test_no_duckdb_syntax_in_trino_sql(trino_sql: dict[str, str]) -> None:
    for path, sql in trino_sql.items():
        for pattern in DUCKDB_ONLY:
            assert not re.search(pattern, sql, re.IGNORECASE), (path, pattern)


def test_trino_sql_uses_trino_functions(trino_sql: dict[str, str]) -> None:
    """The dispatched macros really produced the Trino variants."""
    cycle = next(
        sql for path, sql in trino_sql.items() if path.endswith("mart_cycle_time.sql")
    )
    assert "from_iso8601_timestamp(" in cycle
    assert "to_milliseconds(" in cycle
    staging = next(
        sql for path, sql in trino_sql.items() if path.endswith("stg_lot_history.sql")
    )
    assert '"iceberg"' in staging and "_raw" in staging
