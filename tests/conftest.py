"""Shared fixtures: a private Airflow home, per-test lake/catalog, real databases.

Airflow reads its configuration when first imported, so the environment is
set here, before any test module imports it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="mozart-tests-"))

os.environ.update(
    {
        "MOZART_PROJECT_ROOT": str(ROOT),
        "MOZART_HOME": str(_SESSION_HOME / "mozart"),
        "AIRFLOW_HOME": str(_SESSION_HOME / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        # dbt's parse state is cached per tenant and lake (factory/dbt_layer.py):
        # the tests' lakes are many and short-lived, so their cache goes with
        # the session's folder, not into the machine's temporary one.
        "AIRFLOW__COSMOS__CACHE_DIR": str(_SESSION_HOME / "cosmos"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
    }
)
os.environ.pop("MOZART_TENANTS_DIR", None)
# The DAG shape is read when a DAG is built: tests get the default (`tables`)
# unless they ask for the other (the `stages_shape` fixture).
os.environ.pop("MOZART_DAG_SHAPE", None)

# pytest rewrites the modules of every package that ships a pytest plugin,
# anyio among them, when they are first imported. Airflow's in-process
# execution API (every `dag.test`) imports anyio's thread portal and asyncio
# backend lazily, one of them in its portal thread. On CPython 3.11.7 the AST
# builder's recursion counter is shared between threads (fixed in 3.11.8,
# python/cpython#106905), so a rewrite that overlaps another thread's parse
# fails the task with "SystemError: AST constructor recursion depth mismatch"
# (seen once in CI, failing a scaffold test). Imported here, in the main
# thread and before any test, they are rewritten once and never again.
import anyio._backends._asyncio  # noqa: E402
import anyio.from_thread  # noqa: E402, F401

POSTGRES_DSN = os.environ.get(
    "MOZART_TEST_POSTGRES", "host=127.0.0.1 port=5432 user=postgres"
)
MYSQL_HOST = os.environ.get("MOZART_TEST_MYSQL_HOST", "127.0.0.1")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist (`make test` runs three workers), keep each
    file's tests on one worker so module fixtures (a DAG run, a service) start
    once; the browser package shares one live Airflow, so it stays together.
    (The live modules each start their own deployment: apart, the Celery one
    runs beside the LocalExecutor one, each worker building the tenant
    templates it needs.)

    First among the hooks, so xdist's own turns these marks into its groups.
    (pytest 9.2 stores node ids where xdist 3.8 cannot suffix them: grouping
    silently stopped and the browser package ran twice, once per worker, so
    requirements.in pins pytest 8.4.)"""
    for item in items:
        path = item.path.relative_to(ROOT)
        shared = path.parts[:2] == ("tests", "browser")
        group = "/".join(path.parts[:2]) if shared else path
        item.add_marker(pytest.mark.xdist_group(str(group)))


def pytest_configure(config: pytest.Config) -> None:
    """One garbage collection at the session's end, not pytest's five.

    pytest's unraisable-exception plugin collects five times as a session
    ends, to surface errors raised in finalizers. A worker's heap holds
    Airflow, dbt and Cosmos whole: the five passes took 20.6 s on the 2-core
    machine, one 1.5 s, at every worker's end, on the suite's wall clock.
    One pass still collects what the session left unreachable. The setting is
    the plugin's own stash key, the one pytest's `pytester` sets."""
    from _pytest.unraisableexception import gc_collect_iterations_key

    config.stash[gc_collect_iterations_key] = 1


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_SESSION_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite metadata database for `dag.test` (once per session)."""
    home = Path(os.environ["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    airflow = Path(sys.executable).parent / "airflow"
    subprocess.run(
        [str(airflow), "db", "migrate"], check=True, capture_output=True, env=os.environ
    )
    return home


@pytest.fixture
def stages_shape(monkeypatch: pytest.MonkeyPatch) -> str:
    """DAGs built in this test take the `stages` shape (a task per table stage,
    Cosmos task groups per dbt model), kept beside the default `tables` one."""
    from mozart_etl.factory.dag_factory import SHAPE_VAR, STAGES_SHAPE

    monkeypatch.setenv(SHAPE_VAR, STAGES_SHAPE)
    return STAGES_SHAPE


@pytest.fixture
def mozart_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own source, lake, catalog and warehouse."""
    home = tmp_path / "mozart"
    monkeypatch.setenv("MOZART_HOME", str(home))
    return home


@pytest.fixture
def postgres_db() -> Iterator[str]:
    """A fresh PostgreSQL database on the local server, dropped afterwards."""
    import psycopg

    name = f"mozart_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{POSTGRES_DSN} dbname=postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(
            f"{POSTGRES_DSN} dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def mysql_db() -> Iterator[str]:
    """A fresh MariaDB/MySQL database on the local server, dropped afterwards."""
    import pymysql

    name = f"mozart_test_{uuid.uuid4().hex[:10]}"
    conn = pymysql.connect(host=MYSQL_HOST, user="root", password="", autocommit=True)
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        yield name
    finally:
        with conn.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


@pytest.fixture
def acme_db(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """acme's MariaDB database, reached through the Airflow connection env var."""
    from mozart_etl.demo.acme import drop_acme_database

    name = f"mozart_acme_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("AIRFLOW_CONN_ACME_MES", f"mysql://root@127.0.0.1:3306/{name}")
    try:
        yield name
    finally:
        drop_acme_database(name)
