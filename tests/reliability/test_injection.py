"""13. Identifier injection through tenant.yaml.

Names that reach SQL either fail validation (quotes, backticks, names that
become Iceberg/dbt/Airflow identifiers) or are quoted as one identifier (source
tables, schemas and columns may hold `;`, `.`, `--`, spaces). Values (the
tenant filter) are bound. A victim table sits next to the attack in PostgreSQL
and MariaDB; its checksum must not move.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
from airflow.sdk.exceptions import AirflowFailException

from mozart_etl.core.errors import ConfigError, MozartError
from tests.helpers import mysql_source, postgres_source, table_dict, tenant_dict
from tests.reliability.chaos import Recorder
from tests.reliability.lots import DAYS
from tests.reliability.pipeline import run_table, tenant_of, write_tenant

ATTACK = "victim; DROP TABLE victim; --"
REJECTED = {
    "table name": ("name", "lots; DROP TABLE victim; --"),
    "column with a double quote": ("column", 'id"; DROP TABLE victim; --'),
    "column with a backtick": ("column", "id`; DROP TABLE victim; -- "),
    "source table with a quote": ("source_table", 'victim"; DROP TABLE victim; --'),
    "raw namespace": ("raw_namespace", "acme_raw; DROP TABLE victim"),
    "publish schema": ("publish_schema", "aps; DROP TABLE victim; --"),
}
QUOTED = {
    "source table with ; and --": {"source": {"table": ATTACK}},
    "schema with a dot": {"source": {"schema": "public.victim", "table": "victim"}},
    "column with ; -- and .": {"column": "id; DROP TABLE victim; --."},
}


def _victim(kind: str, database: str) -> list[tuple]:
    """Create (or read back) the victim table: its rows, in order."""
    if kind == "postgresql":
        conninfo = f"host=127.0.0.1 port=5432 user=postgres dbname={database}"
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS victim (id bigint, secret text);"
                "INSERT INTO victim SELECT g, 'v' || g FROM generate_series(1, 5) g "
                "WHERE NOT EXISTS (SELECT 1 FROM victim)"
            )
            conn.execute(
                'CREATE TABLE IF NOT EXISTS "id; DROP TABLE victim; --." (x int)'
            )
            return conn.execute("SELECT * FROM victim ORDER BY id").fetchall()
    conn = pymysql.connect(
        host="127.0.0.1", user="root", database=database, autocommit=True
    )
    try:
        with conn.cursor() as cursor:
            cursor.execute("CREATE TABLE IF NOT EXISTS victim (id bigint, secret text)")
            cursor.execute("SELECT COUNT(*) FROM victim")
            if cursor.fetchone()[0] == 0:
                cursor.execute(
                    "INSERT INTO victim VALUES (1,'v1'),(2,'v2'),(3,'v3'),(4,'v4'),"
                    "(5,'v5')"
                )
            cursor.execute("SELECT * FROM victim ORDER BY id")
            return list(cursor.fetchall())
    finally:
        conn.close()


def _tenant(tmp_path: Path, kind: str, database: str, **change: Any) -> dict:
    columns = [
        {"name": change.get("column", "id"), "type": "bigint", "nullable": False},
        {"name": "secret", "type": "string"},
    ]
    table = table_dict(
        change.get("name", "lots"),
        columns,
        primary_key=[columns[0]["name"]],
        source=change.get("source", {"table": change.get("source_table", "victim")}),
    )
    source = (
        postgres_source(database) if kind == "postgresql" else mysql_source(database)
    )
    data = tenant_dict(tmp_path, [table], source=source)
    if "raw_namespace" in change:
        data["iceberg"]["raw_namespace"] = change["raw_namespace"]
    if "publish_schema" in change:
        data["publish"] = {
            "target": {"host": "127.0.0.1", "database": "aps"},
            "schema": change["publish_schema"],
            "marts": ["mart_wip"],
        }
    return data


@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
def test_identifier_injection_is_rejected_or_quoted(
    request: pytest.FixtureRequest, tmp_path: Path, kind: str, chaos: Recorder
) -> None:
    chaos.name(f"13. identifier injection via tenant.yaml ({kind}): victim intact")
    database = request.getfixturevalue(
        "postgres_db" if kind == "postgresql" else "mysql_db"
    )
    before = _victim(kind, database)
    causes: list[str] = []

    for label, (field, value) in REJECTED.items():
        folder = write_tenant(
            tmp_path / label.replace(" ", "_"),
            _tenant(tmp_path, kind, database, **{field: value}),
        )
        with pytest.raises(ConfigError) as caught:
            tenant_of(folder)
        assert "tenant=acme" in str(caught.value), label
        causes.append(label)

    for label, change in QUOTED.items():
        folder = write_tenant(
            tmp_path / label.replace(" ", "_"),
            _tenant(tmp_path, kind, database, **change),
        )
        tenant_of(folder)  # valid: the name is quoted as one identifier
        if "column" in change and kind == "mysql":
            continue  # MariaDB column names cannot end with a space or dot
        with pytest.raises((AirflowFailException, MozartError)) as caught:
            run_table(folder, "lots", DAYS[0], f"attack-{len(causes)}")
        message = str(caught.value)
        assert "tenant=acme table=lots" in message
        assert any(
            hint in message
            for hint in ("does not exist", "doesn't exist", "not in the source")
        ), message
        causes.append(label)

    # A hostile tenant_filter value is bound, never spliced.
    data = _tenant(tmp_path, kind, database)
    data["tables"][0]["tenant_filter"] = {"column": "secret", "param": "plant"}
    data["params"] = {"plant": "x' OR '1'='1' --"}
    folder = write_tenant(tmp_path / "filter", data)
    out = run_table(folder, "lots", DAYS[0], "filter")
    assert out["extract"]["rows"] == 0

    after = _victim(kind, database)
    assert after == before
    lost = len(set(before) - set(after))
    chaos.record(
        lost=lost,
        dups=len(after) - len(set(after)),
        cause=f"{len(REJECTED)} rejected (ConfigError), "
        f"{len(causes) - len(REJECTED)} quoted",
    )
    assert lost == 0
