"""The stack's database init scripts, run for real against the local PostgreSQL
and MariaDB: idempotent (the one-shot services run them on every `up`, on an
existing volume too), a rotated password applied, rights as documented; and
the seed jobs leave a populated source alone (no table dropped or rewritten
under a running extract).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pymysql
import pytest

from mozart_etl.demo import acme

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "stack" / "source-db"
ADMIN = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


def _run(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["bash", str(SCRIPTS / script)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done


def _scram_matches(stored: str, password: str) -> bool:
    """PostgreSQL's SCRAM-SHA-256 verifier checked against a password (the
    local server trusts 127.0.0.1, so a login would prove nothing)."""
    method, rest = stored.split("$", 1)
    assert method == "SCRAM-SHA-256"
    iterations_salt, keys = rest.split("$")
    iterations, salt = iterations_salt.split(":")
    stored_key, _server_key = keys.split(":")
    salted = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), base64.b64decode(salt), int(iterations)
    )
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    return hashlib.sha256(client_key).digest() == base64.b64decode(stored_key)


@pytest.fixture
def postgres_dbs() -> Iterator[tuple[str, str, str]]:
    """A tenant id, its source database and a publish database, dropped after."""
    suffix = secrets.token_hex(3)
    tenant, source, publish = f"t27{suffix}", f"t27src_{suffix}", f"t27pub_{suffix}"
    with psycopg.connect(**ADMIN, dbname="postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{source}"')
    try:
        yield tenant, source, publish
    finally:
        with psycopg.connect(**ADMIN, dbname="postgres", autocommit=True) as conn:
            for db in (source, publish):
                conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            conn.execute(f'DROP ROLE IF EXISTS "mozart_{tenant}"')


def test_postgres_roles_are_idempotent_and_rotate(
    postgres_dbs: tuple[str, str, str],
) -> None:
    tenant, source, publish = postgres_dbs
    role = f"mozart_{tenant}"
    env = {
        "PGHOST": "127.0.0.1",
        "POSTGRES_USER": "postgres",
        "POSTGRES_DB": "postgres",
        "PUBLISH_DB_NAME": publish,
        "MOZART_TENANT_ROLES": f"{tenant}:{source}",
        f"TENANT_DB_PASSWORD_{tenant.upper()}": "first-pw",
    }
    for _ in range(2):  # the second `up` on the same volume must pass too
        _run("create-publish-db.sh", env)
        _run("create-tenant-roles.sh", env)
    with psycopg.connect(**ADMIN, dbname=source, autocommit=True) as conn:
        conn.execute("CREATE TABLE lot_history (lot_id text)")  # the seed, later
        (first,) = conn.execute(
            "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)
        ).fetchone()
    assert _scram_matches(first, "first-pw")

    rotated = _run(
        "create-tenant-roles.sh", {**env, f"TENANT_DB_PASSWORD_{tenant.upper()}": "2nd"}
    )
    assert f"role {role}: ready" in rotated.stdout
    with psycopg.connect(**ADMIN, dbname=source, autocommit=True) as conn:
        (second,) = conn.execute(
            "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)
        ).fetchone()
    assert _scram_matches(second, "2nd") and not _scram_matches(second, "first-pw")

    # Its rights: reads the source (tables made after the script too), writes
    # only its own publish schema.
    with psycopg.connect(**{**ADMIN, "user": role}, dbname=source) as conn:
        assert conn.execute("SELECT count(*) FROM lot_history").fetchone() == (0,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO lot_history VALUES ('L1')")
    with psycopg.connect(
        **{**ADMIN, "user": role}, dbname=publish, autocommit=True
    ) as conn:
        conn.execute(f'CREATE TABLE "{tenant}".mart_wip (n int)')
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE public.mart_wip (n int)")


@pytest.fixture
def mariadb_db() -> Iterator[tuple[str, str]]:
    suffix = secrets.token_hex(3)
    tenant, database = f"t27{suffix}", f"t27src_{suffix}"
    try:
        yield tenant, database
    finally:
        with acme.connect() as conn, conn.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{database}`")
            cursor.execute(f"DROP USER IF EXISTS 'mozart_{tenant}'@'%'")


def test_mariadb_user_is_idempotent_read_only_and_rotates(
    mariadb_db: tuple[str, str],
) -> None:
    tenant, database = mariadb_db
    user, key = f"mozart_{tenant}", f"TENANT_DB_PASSWORD_{tenant.upper()}"
    env = {"MARIADB_HOST": "127.0.0.1", "MOZART_TENANT_ROLES": f"{tenant}:{database}"}
    for password in ("first-pw", "it's-2nd\\"):  # quotes and backslashes survive
        _run("create-mariadb-roles.sh", {**env, key: password})
        _run("create-mariadb-roles.sh", {**env, key: password})
    with acme.connect(database) as conn, conn.cursor() as cursor:
        cursor.execute("CREATE TABLE tb_eqp (eqp_id varchar(8))")
        conn.commit()
    with pytest.raises(pymysql.err.OperationalError):  # the old password is gone
        acme.connect(database, user=user, password="first-pw")
    reader = acme.connect(database, user=user, password="it's-2nd\\")
    with reader as conn, conn.cursor() as cursor:
        assert cursor.execute("SELECT * FROM tb_eqp") == 0
        with pytest.raises(pymysql.err.OperationalError):
            cursor.execute("INSERT INTO tb_eqp VALUES ('E1')")


def test_acme_seed_leaves_a_populated_source_alone(
    mariadb_db: tuple[str, str],
) -> None:
    _tenant, database = mariadb_db
    with acme.connect() as conn, conn.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{database}`")
        cursor.execute(f"CREATE TABLE `{database}`.tb_eqp (eqp_id varchar(8))")
        cursor.execute(f"INSERT INTO `{database}`.tb_eqp VALUES ('KEEP')")
        conn.commit()
    assert acme.main(["--database", database, "--if-empty"]) == 0
    with acme.connect(database) as conn, conn.cursor() as cursor:
        cursor.execute("SHOW TABLES")
        assert cursor.fetchall() == (("tb_eqp",),)
        cursor.execute("SELECT eqp_id FROM tb_eqp")
        assert cursor.fetchall() == (("KEEP",),)
    assert acme.table_count(f"{database}_missing") == 0


def test_demo_seed_runs_only_on_an_empty_source(tmp_path: Path) -> None:
    """seed-demo.sh: with tables, `python` (a recording stub here) is never
    started; on an empty database it is, with to_postgres."""
    stub = tmp_path / "bin" / "python"
    stub.parent.mkdir()
    calls = tmp_path / "calls"
    stub.write_text(f'#!/usr/bin/env bash\necho "$@" >> {calls}\n')
    stub.chmod(0o755)
    name = f"t27seed_{secrets.token_hex(3)}"
    with psycopg.connect(**ADMIN, dbname="postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        env = {
            "PGHOST": "127.0.0.1",
            "PGUSER": "postgres",
            "PGDATABASE": name,
            "PATH": f"{stub.parent}:{os.environ['PATH']}",
        }
        _run("seed-demo.sh", env)
        assert calls.read_text() == "-m mozart_etl.demo.to_postgres\n"
        with psycopg.connect(**ADMIN, dbname=name, autocommit=True) as conn:
            conn.execute("CREATE TABLE lot_history (lot_id text)")
        kept = _run("seed-demo.sh", env)
        assert "1 tables already, left as they are" in kept.stdout
        assert calls.read_text() == "-m mozart_etl.demo.to_postgres\n"  # not again
    finally:
        with psycopg.connect(**ADMIN, dbname="postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
