"""`factory/connections.py`: the one way a task and `mozart check` open a
tenant's source. A named Airflow connection overrides tenant.yaml's server
settings, and its password is known to Airflow's log masker before any
driver sees it; `mozart check` reads through the same connection."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
import yaml
from airflow.sdk._shared.secrets_masker import redact

from mozart_etl.config.loader import load_tenant
from mozart_etl.factory.connections import source_connector
from mozart_etl.ops.cli import main
from tests.conftest import POSTGRES_DSN
from tests.helpers import table_dict, tenant_dict

PASSWORD = "conn-Only-Password-7f3a"


@pytest.fixture
def plant(postgres_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tenant whose YAML names a database that does not exist, and a conn_id
    whose Airflow connection (environment backend) names the real one."""
    with psycopg.connect(f"{POSTGRES_DSN} dbname={postgres_db}", autocommit=True) as c:
        c.execute("CREATE TABLE lots (id integer PRIMARY KEY)")
        c.execute("INSERT INTO lots SELECT generate_series(1, 42)")
    source = {
        "type": "postgresql",
        "host": "192.0.2.1",  # TEST-NET: nothing answers here
        "port": 5432,
        "user": "nobody",
        "database": "no_such_database",
        "conn_id": "plant_src",
    }
    data = tenant_dict(
        tmp_path,
        [table_dict("lots", [{"name": "id", "type": "int"}], primary_key=["id"])],
        source=source,
        tenant_id="plant",
    )
    data["tables"][0]["source"] = {"table": "lots"}
    folder = tmp_path / "tenants" / "plant"
    folder.mkdir(parents=True)
    (folder / "tenant.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    connection = {
        "conn_type": "postgres",
        "host": "127.0.0.1",
        "port": 5432,
        "login": "postgres",
        "password": PASSWORD,  # the local server trusts every login
        "schema": postgres_db,
    }
    monkeypatch.setenv("AIRFLOW_CONN_PLANT_SRC", json.dumps(connection))
    return folder


def test_the_airflow_connection_overrides_the_yaml_and_its_password_is_masked(
    plant: Path, postgres_db: str
) -> None:
    assert PASSWORD in redact(f"x {PASSWORD} y")  # not known yet

    connector = source_connector(load_tenant(plant))

    assert connector.describe() == f"postgresql 127.0.0.1:5432/{postgres_db}"
    engine = connector.engine()
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT count(*) FROM lots")).scalar_one()
    finally:
        engine.dispose()
    assert rows == 42
    assert PASSWORD not in redact(f"x {PASSWORD} y")


def test_mozart_check_reads_through_the_same_connection(
    plant: Path, postgres_db: str
) -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["--tenants-dir", str(plant.parent), "check", "plant"])

    text = out.getvalue()
    assert code == 0, text
    assert f"source postgresql 127.0.0.1:5432/{postgres_db}\n" in text
    assert "192.0.2.1" not in text
    assert "    rows 42; daily volume" in text  # counted in the connection's database
    assert text.rstrip().endswith("OK: no blockers in 1 table(s)")
