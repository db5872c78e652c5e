"""12. SIGKILL of the publish task half-way through its COPY.

A child process runs the real publish task (both marts in one transaction,
`full` mode: DELETE then COPY) and kills itself after the first mart is
written and two rows of the second. While it is paused there, and after it
died, a reader of the APS database sees the previous tables whole; the retry
publishes the new ones whole. Never a mix, never an empty table.
"""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from mozart_etl.config.loader import load_tenant
from mozart_etl.factory import tasks
from tests.helpers import run_vars_xcom, table_dict, tenant_dict
from tests.publish.test_publish_postgres import (
    CYCLE_ORDER,
    D1,
    WIP_ORDER,
    _cycle,
    _wip,
    _write_marts,
)
from tests.reliability.chaos import Recorder
from tests.reliability.pipeline import task_context, tenant_of, write_tenant

ROOT = Path(__file__).resolve().parents[2]
CHILD = """
import os, signal, sys, time
from datetime import date
from pathlib import Path
import psycopg

marker, kill_at = Path(sys.argv[2]), int(sys.argv[3])
write_row, written = psycopg.Copy.write_row, [0]

def dying_write_row(self, row):
    written[0] += 1
    if written[0] == kill_at:
        marker.write_text("mid-publish")
        time.sleep(0.5)  # the parent reads the target now
        os.kill(os.getpid(), signal.SIGKILL)
    return write_row(self, row)

psycopg.Copy.write_row = dying_write_row
from pathlib import Path
from mozart_etl.config.loader import load_tenant
from mozart_etl.config.loader import load_tenant
from mozart_etl.factory import tasks
from tests.helpers import run_vars_xcom
from tests.reliability.pipeline import task_context
with task_context("publish-1", date(2026, 11, 18)):
    tenant = load_tenant(Path(sys.argv[1]))
    tasks.run_publish(sys.argv[1], run_vars_xcom(tenant, date(2026, 11, 18)))
"""


def _checksum(database: str) -> tuple[str, int, int]:
    with psycopg.connect(
        host="127.0.0.1", port=5432, user="postgres", dbname=database
    ) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        wip = conn.execute(
            f"SELECT * FROM aps.mart_wip ORDER BY {WIP_ORDER}"
        ).fetchall()
        cycle = conn.execute(
            f'SELECT * FROM aps."cycle" ORDER BY {CYCLE_ORDER}'
        ).fetchall()
    digest = hashlib.sha256(repr((wip, cycle)).encode()).hexdigest()
    return digest, len(wip), len(cycle)


def test_killed_publish_leaves_the_old_tables_and_the_retry_the_new(
    tmp_path: Path, postgres_db: str, chaos: Recorder
) -> None:
    chaos.name("12. publish SIGKILL mid-COPY: readers see old or new, retry")
    data = tenant_dict(
        tmp_path, [table_dict("lots", [{"name": "id", "type": "bigint"}])]
    )
    data["tenant_id"] = "acme"
    data["publish"] = {
        "target": {"host": "127.0.0.1", "database": postgres_db, "user": "postgres"},
        "schema": "aps",
        "mode": "full",
        "marts": ["mart_wip", {"mart": "mart_cycle_time", "table": "cycle"}],
    }
    folder = write_tenant(tmp_path / "tenants", data)
    warehouse = tenant_of(folder).dbt.duckdb_path
    _write_marts(warehouse, _wip(D1), _cycle(D1))
    with task_context("publish-0", D1):
        tasks.run_publish(str(folder), run_vars_xcom(load_tenant(folder), D1))
    old = _checksum(postgres_db)
    assert old[1:] == (3, 3)

    _write_marts(warehouse, _wip(D1, version=2)[:2], _cycle(D1, version=2))
    marker = tmp_path / "mid-publish"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(folder), str(marker), "4"], cwd=ROOT
    )
    seen: list[tuple[str, int, int]] = []
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert child.poll() is None, "publish ended before the kill point"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        seen.append(_checksum(postgres_db))  # mid-transaction, from outside
    finally:
        child.wait()
    assert child.returncode == -signal.SIGKILL
    seen.append(_checksum(postgres_db))  # after the crash

    with task_context("publish-1", D1):
        tasks.run_publish(str(folder), run_vars_xcom(load_tenant(folder), D1))
    new = _checksum(postgres_db)

    assert seen == [old, old]
    assert new != old and new[1:] == (2, 3)
    mixed = sum(state not in (old, new) for state in [*seen, new])  # mix or empty
    chaos.record(
        lost=mixed, dups=0, cause=f"SIGKILL; {mixed} mixed or empty reads of 3"
    )
