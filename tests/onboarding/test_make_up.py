"""`make up`'s script (ops/local_airflow.py): the metadata database migrated,
every tenant's pools imported, a missing connection named with its variable,
the API server answering on 127.0.0.1, and `down` stopping what it started.

Only the API server is started here (the scheduler, dag-processor and
triggerer are the same spawn with another name; tests/live runs all four),
against a copy of the session's migrated SQLite database, to stay near 30 s.
"""

from __future__ import annotations

import json
import shutil
import socket
import sqlite3
import urllib.request
from pathlib import Path

import pytest

from mozart_etl.ops import local_airflow
from mozart_etl.ops.pools import DUCKDB_SLOTS, TENANT_SLOTS

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_up_imports_pools_names_connections_serves_the_api_and_stops(
    tmp_path: Path, airflow_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "airflow"
    home.mkdir()
    shutil.copy(airflow_db / "airflow.db", home / "airflow.db")
    monkeypatch.setenv("AIRFLOW_HOME", str(home))
    monkeypatch.delenv("AIRFLOW_CONN_ACME_MES", raising=False)
    port = _free_port()

    env = local_airflow.environment(port)
    missing = local_airflow.setup(env)
    # acme reads its MariaDB through the connection acme_mes; demo names none.
    assert missing == ["AIRFLOW_CONN_ACME_MES"]
    with sqlite3.connect(home / "airflow.db") as conn:
        pools = dict(conn.execute("SELECT pool, slots FROM slot_pool").fetchall())
    assert pools["mozart_demo"] == pools["mozart_acme"] == TENANT_SLOTS
    assert pools["mozart_duckdb_demo"] == pools["mozart_duckdb_acme"] == DUCKDB_SLOTS

    try:
        url = local_airflow.up(
            port, components=("api-server",), timeout=60, set_up=False
        )
        assert url == f"http://127.0.0.1:{port}"
        assert local_airflow.running() == ["api-server"]
        with urllib.request.urlopen(f"{url}/api/v2/version", timeout=10) as answer:
            version = json.loads(answer.read())["version"]
        assert version.startswith("3.")
    finally:
        stopped = local_airflow.down()
    assert stopped == ["api-server"]
    assert local_airflow.running() == []
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/version", timeout=2)
