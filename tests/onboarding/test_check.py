"""`mozart check <tenant>`: the onboarding dry-run on real sources.

The demo tenant (SQLite) passes; a tenant over a real PostgreSQL database whose
key has duplicates and whose cursor has NULLs is blocked, naming both.
"""

from __future__ import annotations

import io
import sqlite3
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from mozart_etl.config.loader import load_tenant
from mozart_etl.demo.generate import generate_demo_source
from mozart_etl.ops.cli import main
from tests.cli import run_mozart
from tests.conftest import POSTGRES_DSN

ROOT = Path(__file__).resolve().parents[2]


def _check(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["check", *argv])
    return code, out.getvalue()


def _late_rows(source: Path, table: str, key: str, cursor: str) -> int:
    """Rows whose cursor is below the running maximum in key order (in Python)."""
    with sqlite3.connect(source) as conn:
        values = [
            row[0]
            for row in conn.execute(f"SELECT {cursor} FROM {table} ORDER BY {key}")
        ]
    late, highest = 0, None
    for value in values:
        if highest is not None and value < highest:
            late += 1
        highest = value if highest is None else max(highest, value)
    return late


def test_demo_passes_with_its_real_figures(mozart_home: Path) -> None:
    tenant = load_tenant(ROOT / "tenants" / "demo")
    summary = generate_demo_source(Path(tenant.source.database))

    code, text = _check("demo")

    assert code == 0, text
    assert text.rstrip().endswith(f"OK: no blockers in {len(tenant.tables)} table(s)")
    blocks = text.split("\n- ")[1:]
    by_table = {block.split(":", 1)[0]: block for block in blocks}
    assert set(by_table) == {t.name for t in tenant.tables}
    for name, rows in summary.rows.items():
        block = by_table[name]
        assert f"{name}: reachable" in block
        assert f"rows {rows:,};" in block
        assert f"checked on: full table ({rows:,} rows)" in block
        assert "primary key duplicates: 0;" in block
        assert "BLOCKER" not in block
    # Full-refresh tables read everything every day.
    assert f"daily volume ≈ {summary.rows['equipment']:,} rows" in by_table["equipment"]
    # Late rows (cursor below an earlier key's) against a Python count.
    late = _late_rows(
        Path(tenant.source.database), "process_result", "result_id", "measured_at"
    )
    # The demo's result ids are not in measurement order: most rows look late,
    # which says the key is not insertion order, not that rows come late.
    assert late > 0.05 * summary.rows["process_result"]
    assert (
        f"late rows not estimated: {late:,} of {summary.rows['process_result']:,} "
        "rows have measured_at below that of an earlier key"
    ) in by_table["process_result"]
    # A composite key gives no insertion order: said, not guessed.
    assert "late rows not estimated" in by_table["lot_history"]


def _write_pg_tenant(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    postgres_db: str,
    tenant_id: str,
    tables: list[dict[str, Any]],
    **source: Any,
) -> Path:
    """The scaffold's tenant.yaml with a PostgreSQL source and `tables`, under
    `<tmp>/tenants/<tenant_id>` (MOZART_TENANTS_DIR points there)."""
    config = yaml.safe_load(
        (ROOT / "tenants" / "_template" / "tenant.yaml").read_text()
    )
    config.update(
        tenant_id=tenant_id,
        source={
            "type": "postgresql",
            "host": "127.0.0.1",
            "port": 5432,
            "user": "postgres",
            "database": postgres_db,
            **source,
        },
        tables=tables,
    )
    folder = tmp_path / "tenants" / tenant_id
    folder.mkdir(parents=True)
    text = yaml.safe_dump(config).replace("__TENANT_ID__", tenant_id)
    (folder / "tenant.yaml").write_text(
        text.replace("__TENANT_ID_UPPER__", tenant_id.upper())
    )
    monkeypatch.setenv("MOZART_TENANTS_DIR", str(tmp_path / "tenants"))
    return folder


@pytest.fixture
def bad_tenant(
    postgres_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A plant whose `orders` key has two duplicated ids and whose `events`
    cursor is NULL in three rows, on a real PostgreSQL database."""
    with psycopg.connect(
        f"{POSTGRES_DSN} dbname={postgres_db}", autocommit=True
    ) as conn:
        conn.execute(
            "CREATE TABLE orders (order_id bigint, qty integer, updated_at timestamptz)"
        )
        conn.execute(
            "INSERT INTO orders SELECT i % 98, i, "
            "timestamptz '2026-11-01 00:00Z' + i * interval '1 hour' "
            "FROM generate_series(1, 100) AS i"
        )
        conn.execute(
            "CREATE TABLE events (event_id bigint PRIMARY KEY, kind text, "
            "updated_at timestamptz)"
        )
        conn.execute(
            "INSERT INTO events SELECT i, 'RUN', CASE WHEN i % 20 = 0 THEN NULL "
            "ELSE timestamptz '2026-11-01 00:00Z' + i * interval '10 minutes' END "
            "FROM generate_series(1, 60) AS i"
        )
    return _write_pg_tenant(
        tmp_path,
        monkeypatch,
        postgres_db,
        "plant_x",
        [
            {
                "name": "orders",
                "source": {"table": "orders"},
                "primary_key": ["order_id"],
                "mode": "merge",
                "cursor": "updated_at",
                "columns": [
                    {"name": "order_id", "type": "bigint", "nullable": False},
                    {"name": "qty", "type": "int"},
                    {"name": "updated_at", "type": "timestamptz"},
                ],
            },
            {
                "name": "events",
                "source": {"table": "events"},
                "primary_key": ["event_id"],
                "mode": "incremental",
                "cursor": "updated_at",
                "columns": [
                    {"name": "event_id", "type": "bigint", "nullable": False},
                    {"name": "kind", "type": "string"},
                    {"name": "updated_at", "type": "timestamptz"},
                ],
            },
        ],
    )


def test_duplicate_keys_and_null_cursor_are_blockers(bad_tenant: Path) -> None:
    code, text = _check("plant_x")

    assert code == 1, text
    assert (
        "BLOCKER orders: primary key (order_id) is not unique: 2 key value(s) occur "
        "more than once (full table (100 rows))"
    ) in text
    assert "BLOCKER events: cursor updated_at is NULL in 3 row(s)" in text
    assert "primary key duplicates: 0; cursor NULLs: 3" in text
    assert text.rstrip().endswith("2 BLOCKER(S) in 2 table(s)")


def test_bounded_sample_says_so(bad_tenant: Path) -> None:
    """Over the latest 10 rows by cursor the duplicates (ids 1 and 2, written
    first) are not seen: the report says it checked a sample, not the table."""
    code, text = _check("plant_x", "--sample-rows", "10")

    assert "checked on: sample: latest 10 of 100 rows by updated_at" in text
    orders = text.split("\n- orders:")[1].split("\n- ")[0]
    assert "primary key duplicates: 0;" in orders
    # NULL cursors are counted over the whole table, whatever the sample.
    assert "BLOCKER events: cursor updated_at is NULL in 3 row(s) (full table)" in text
    assert code == 1


def test_missing_column_and_unreachable_table(bad_tenant: Path) -> None:
    config = yaml.safe_load((bad_tenant / "tenant.yaml").read_text())
    config["tables"][0]["columns"].append({"name": "price", "type": "double"})
    config["tables"][1]["source"] = {"table": "no_such_table"}
    (bad_tenant / "tenant.yaml").write_text(yaml.safe_dump(config))

    code, text = _check("plant_x")

    assert code == 1
    assert (
        "BLOCKER orders: column price: declared column orders.price does not exist"
        in text
    )
    assert "- events: NOT reachable" in text
    assert "BLOCKER events: unreachable: no table no_such_table in the source" in text


def _naive_cursor_tenant(
    postgres_db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    source_zone: str | None,
    table_zone: str | None,
) -> None:
    """Tenant `plant_n`: one table whose cursor is a naive `timestamp` (the
    plant's wall clock, as legacy MES write it), zones declared as given."""
    with psycopg.connect(
        f"{POSTGRES_DSN} dbname={postgres_db}", autocommit=True
    ) as conn:
        conn.execute(
            "CREATE TABLE moves (move_id bigint PRIMARY KEY, qty integer, "
            "moved_at timestamp without time zone)"
        )
        conn.execute(
            "INSERT INTO moves SELECT i, i, "
            "timestamp '2026-11-01 00:00' + i * interval '5 minutes' "
            "FROM generate_series(1, 40) AS i"
        )
    table = {
        "name": "moves",
        "source": {"table": "moves"},
        "primary_key": ["move_id"],
        "mode": "merge",
        "cursor": "moved_at",
        "columns": [
            {"name": "move_id", "type": "bigint", "nullable": False},
            {"name": "qty", "type": "int"},
            {"name": "moved_at", "type": "timestamp"},
        ],
    }
    if table_zone:
        table["timezone"] = table_zone
    zone = {"timezone": source_zone} if source_zone else {}
    _write_pg_tenant(tmp_path, monkeypatch, postgres_db, "plant_n", [table], **zone)


@pytest.mark.parametrize(
    ("source_zone", "table_zone", "warned"),
    [
        (None, None, True),
        ("America/New_York", None, False),
        (None, "America/Chicago", False),
    ],
    ids=["no-zone", "source-zone", "table-zone"],
)
def test_naive_timestamp_cursor_without_zone_is_a_warning(
    postgres_db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    source_zone: str | None,
    table_zone: str | None,
    warned: bool,
) -> None:
    """A naive cursor is read as UTC unless a zone is declared: a plant whose
    MES writes local wall time would file rows under the wrong day, so the
    check names tenant, table, column and the setting; it does not block."""
    _naive_cursor_tenant(postgres_db, tmp_path, monkeypatch, source_zone, table_zone)

    code, text = _check("plant_n")

    assert code == 0, text
    assert "moves: reachable" in text and "rows 40;" in text
    warning = (
        "warning moves: tenant plant_n, table moves: cursor column moved_at is a "
        "naive timestamp and no zone is declared, so it is read as UTC; if the "
        "source writes local wall time, set `source.timezone` in tenant.yaml (or "
        "this table's `timezone`) to its IANA zone"
    )
    assert (warning in text) is warned, text
    assert ("no zone is declared" in text) is warned


def test_an_undefined_connection_is_a_message_not_a_traceback(
    bad_tenant: Path,
) -> None:
    """`mozart check` (and every task) names the connection and how to define
    it; the task fails at once (a ConfigError is terminal)."""
    config = yaml.safe_load((bad_tenant / "tenant.yaml").read_text())
    config["source"]["conn_id"] = "plant_x_mes"
    (bad_tenant / "tenant.yaml").write_text(yaml.safe_dump(config))

    done = run_mozart("check", "plant_x")  # as a user runs it: its own process

    assert done.returncode == 1
    printed = done.stdout + done.stderr  # Airflow's log setup prints to stdout
    assert (
        "[tenant=plant_x] the Airflow connection 'plant_x_mes' is not defined: set "
        "AIRFLOW_CONN_PLANT_X_MES in the environment"
    ) in printed
    assert "Traceback" not in printed


def test_nulls_where_declared_required_and_decimals_past_their_shape_block(
    postgres_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What validation or the extract would refuse on the first run: a NULL in
    a `nullable: false` column, a decimal wider or finer than declared."""
    with psycopg.connect(
        f"{POSTGRES_DSN} dbname={postgres_db}", autocommit=True
    ) as conn:
        conn.execute(
            "CREATE TABLE plans (plan_id bigint, item text, qty numeric, "
            "updated_at timestamptz)"
        )
        conn.execute(
            "INSERT INTO plans SELECT i, CASE WHEN i % 25 = 0 THEN NULL ELSE 'A' END, "
            "CASE WHEN i = 7 THEN 123456.5 WHEN i IN (8, 9) THEN 1.125 ELSE i END, "
            "timestamptz '2026-11-01 00:00Z' + i * interval '1 hour' "
            "FROM generate_series(1, 100) AS i"
        )
    _write_pg_tenant(
        tmp_path,
        monkeypatch,
        postgres_db,
        "plant_q",
        [
            {
                "name": "plans",
                "source": {"table": "plans"},
                "primary_key": ["plan_id"],
                "mode": "merge",
                "cursor": "updated_at",
                "columns": [
                    {"name": "plan_id", "type": "bigint", "nullable": False},
                    {"name": "item", "type": "string", "nullable": False},
                    {"name": "qty", "type": "decimal", "precision": 6, "scale": 2},
                    {"name": "updated_at", "type": "timestamptz"},
                ],
            }
        ],
    )

    code, text = _check("plant_q")

    assert code == 1, text
    scope = "(full table (100 rows))"
    assert f"BLOCKER plans: item is NULL in 4 row(s) {scope}" in text
    assert (
        "BLOCKER plans: qty has more than 4 integer digit(s) (decimal(6,2)) in 1 "
        f"row(s) {scope}"
    ) in text
    assert (
        "BLOCKER plans: qty has more than 2 decimal place(s) (decimal(6,2)) in 2 "
        f"row(s) {scope}"
    ) in text


def test_keys_out_of_time_order_are_not_taken_for_late_rows(
    postgres_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ids assigned out of time order (here: reversed) make most rows look
    'late'; the check says the key is not in insertion order instead of
    suggesting a lookback of days."""
    with psycopg.connect(
        f"{POSTGRES_DSN} dbname={postgres_db}", autocommit=True
    ) as conn:
        conn.execute("CREATE TABLE visits (visit_id bigint, updated_at timestamptz)")
        conn.execute(
            "INSERT INTO visits SELECT i, timestamptz '2026-11-01 00:00Z' "
            "+ (200 - i) * interval '1 hour' FROM generate_series(1, 200) AS i"
        )
        # In insertion order but three rows stamped 31 h back: 30 h behind the
        # previous row, real late rows.
        conn.execute("CREATE TABLE moves (move_id bigint, updated_at timestamptz)")
        conn.execute(
            "INSERT INTO moves SELECT i, timestamptz '2026-11-01 00:00Z' "
            "+ i * interval '1 hour' - CASE WHEN i IN (50, 90, 150) THEN "
            "interval '31 hours' ELSE interval '0' END "
            "FROM generate_series(1, 200) AS i"
        )
    _write_pg_tenant(
        tmp_path,
        monkeypatch,
        postgres_db,
        "plant_v",
        [
            {
                "name": name,
                "source": {"table": name},
                "primary_key": [key],
                "mode": "merge",
                "cursor": "updated_at",
                "columns": [
                    {"name": key, "type": "bigint", "nullable": False},
                    {"name": "updated_at", "type": "timestamptz"},
                ],
            }
            for name, key in (("visits", "visit_id"), ("moves", "move_id"))
        ],
    )

    code, text = _check("plant_v")

    assert code == 0, text
    visits, moves = text.split("\n- visits:")[1], text.split("\n- moves:")[1]
    visits = visits.split("\n- ")[0]
    moves = moves.split("\n- ")[0]
    assert (
        "late rows not estimated: 199 of 200 rows have updated_at below that of an "
        "earlier key, so the key does not follow insertion order"
    ) in visits
    assert "consider" not in visits
    assert (
        "3 row(s) have updated_at below that of an earlier key (up to 30.0 h late)"
    ) in moves
