"""16. Terminal or transient at the source: what a retry cannot fix fails at once.

Before, access denied at the source went `up_for_retry` twice, five minutes
apart. Now wrong credentials, a user without privilege on the table, a missing
table and a missing column fail the task at once (AirflowFailException through
`_fail_or_retry`), naming tenant, table (and column) and never the password; a
refused connection stays a retryable SourceError. Each scenario runs the real
extract task (`tasks.run_extract`, as Airflow's worker runs it) against the
real PostgreSQL and MariaDB servers; the reconcile's count uses the same
classifier, checked with the table dropped between load and reconcile.

PostgreSQL on this machine trusts every login from 127.0.0.1 (pg_hba.conf), so
no password is ever wrong there: a role that does not exist stands in for
wrong credentials (SQLSTATE 28000, like a wrong password's 28P01). MariaDB's
scenario is a real wrong password (errno 1045).
"""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
from airflow.sdk.exceptions import AirflowFailException

from mozart_etl.core.errors import (
    MozartError,
    SourceAccessDenied,
    SourceError,
    SourceSchemaError,
)
from mozart_etl.core.lake import Lake
from mozart_etl.factory.connections import source_connector
from mozart_etl.load.reconcile import source_figures
from tests.helpers import (
    MYSQL_HOST,
    MYSQL_PORT,
    POSTGRES_HOST,
    POSTGRES_PORT,
    table_dict,
    tenant_dict,
)
from tests.reliability.chaos import Recorder, lake_orphans
from tests.reliability.pipeline import run_table, tenant_of, write_tenant

DAY = date(2026, 11, 15)
PASSWORD = "Wr0ng-S3cret-7731"
RIGHT_PASSWORD = "R1ght-S3cret-4419"
COLUMNS = [
    {"name": "id", "type": "bigint", "nullable": False},
    {"name": "note", "type": "string"},
]


@dataclass
class Server:
    """One real source server: its admin connection and a scratch login."""

    kind: str
    database: str
    login: str = ""

    def run(self, *statements: str) -> None:
        if self.kind == "postgresql":
            conninfo = (
                f"host={POSTGRES_HOST} port={POSTGRES_PORT} user=postgres "
                f"dbname={self.database}"
            )
            with psycopg.connect(conninfo, autocommit=True) as conn:
                for statement in statements:
                    conn.execute(statement)
            return
        conn = pymysql.connect(
            host=MYSQL_HOST,
            port=MYSQL_PORT,
            user="root",
            database=self.database,
            autocommit=True,
        )
        try:
            with conn.cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement)
        finally:
            conn.close()

    def source(self, **settings: Any) -> dict[str, Any]:
        port = POSTGRES_PORT if self.kind == "postgresql" else MYSQL_PORT
        host = POSTGRES_HOST if self.kind == "postgresql" else MYSQL_HOST
        base = {
            "type": self.kind,
            "host": host,
            "port": port,
            "database": self.database,
            "user": "postgres" if self.kind == "postgresql" else "root",
        }
        return base | settings

    def admin_source(self) -> dict[str, Any]:
        """The admin login; on PostgreSQL with a password (trusted, so accepted)
        that must then appear nowhere; MariaDB's root has none."""
        if self.kind == "postgresql":
            return self.source(password=PASSWORD)
        return self.source()


@pytest.fixture(params=["postgresql", "mysql"])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    """A fresh database with `notes` (3 rows) and `other`, and a login that may
    read `other` only (created here, dropped afterwards)."""
    kind = request.param
    database = request.getfixturevalue(
        "postgres_db" if kind == "postgresql" else "mysql_db"
    )
    found = Server(kind, database, login=f"mz_{uuid.uuid4().hex[:8]}")
    found.run(
        "CREATE TABLE notes (id bigint, note varchar(40))",
        "INSERT INTO notes VALUES (1, 'a'), (2, 'b'), (3, 'c')",
        "CREATE TABLE other (id bigint)",
    )
    if kind == "postgresql":
        found.run(
            f"CREATE ROLE {found.login} LOGIN PASSWORD '{RIGHT_PASSWORD}'",
            f"GRANT SELECT ON other TO {found.login}",
        )
    else:
        found.run(
            f"CREATE USER '{found.login}'@'%' IDENTIFIED BY '{RIGHT_PASSWORD}'",
            f"GRANT SELECT ON `{database}`.other TO '{found.login}'@'%'",
        )
    try:
        yield found
    finally:
        if kind == "postgresql":
            found.run(
                f"DROP OWNED BY {found.login}", f"DROP ROLE IF EXISTS {found.login}"
            )
        else:
            found.run(f"DROP USER IF EXISTS '{found.login}'@'%'")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _extract(
    tmp_path: Path, source: dict[str, Any], table: dict[str, Any]
) -> BaseException:
    """Run the extract task; the exception it raised to Airflow."""
    folder = write_tenant(
        tmp_path / "tenants", tenant_dict(tmp_path, [table], source=source)
    )
    with pytest.raises((AirflowFailException, MozartError)) as caught:
        run_table(folder, table["name"], DAY, "run-1", stages=("extract",))
    return caught.value


def _leaks(error: BaseException, logs: str) -> int:
    """Password hits in the error Airflow shows, its chain and the logs."""
    texts = [str(error), repr(error), logs]
    cause: BaseException | None = error.__cause__
    while cause is not None:
        texts += [str(cause), repr(cause)]
        cause = cause.__cause__
    return sum(
        text.count(secret) for text in texts for secret in (PASSWORD, RIGHT_PASSWORD)
    )


def _terminal(
    error: BaseException, kind: type[SourceError], column: str | None = None
) -> SourceError:
    """The Airflow failure and the MozartError it carries."""
    assert isinstance(error, AirflowFailException), repr(error)
    cause = error.__cause__
    assert isinstance(cause, kind), repr(cause)
    assert cause.terminal
    assert (cause.tenant, cause.table, cause.column) == ("acme", "notes", column)
    return cause


def _record(
    chaos: Recorder,
    tmp_path: Path,
    error: BaseException,
    cause: SourceError,
    logs: str,
    phrase: str,
) -> None:
    """Figures of the scenario; `phrase` is the cause the message must name."""
    assert phrase in str(error), str(error)
    day = Lake(tenant_of(tmp_path / "tenants" / "acme")).day_folder("notes", DAY)
    orphans = lake_orphans(Path(day)) if Path(day).exists() else 0
    leaks = _leaks(error, logs)
    outcome = "fails at once" if cause.terminal else "retried"
    chaos.record(
        orphans=orphans,
        leaks=leaks,
        cause=f"{type(cause).__name__}, {outcome}: {phrase}",
    )
    assert (orphans, leaks) == (0, 0)


def test_wrong_credentials_fail_at_once(
    tmp_path: Path, server: Server, chaos: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    if server.kind == "postgresql":
        chaos.name("19a. source login refused (postgresql, no such role)")
        source = server.source(user=f"{server.login}_nobody", password=PASSWORD)
    else:
        chaos.name("19a. source login refused (mysql, wrong password)")
        source = server.source(user=server.login, password=PASSWORD)

    error = _extract(tmp_path, source, table_dict("notes", COLUMNS))

    cause = _terminal(error, SourceAccessDenied)
    message = str(error)
    assert message.startswith("[tenant=acme table=notes] reading ")
    if server.kind == "postgresql":
        assert f'role "{server.login}_nobody" does not exist' in message
    else:
        assert f"Access denied for user '{server.login}'" in message
    assert "a retry cannot help" in message
    phrase = "does not exist" if server.kind == "postgresql" else "Access denied"
    _record(chaos, tmp_path, error, cause, caplog.text, phrase)


def test_no_privilege_on_the_table_fails_at_once(
    tmp_path: Path, server: Server, chaos: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    """The login works and may read `other`, not `notes`."""
    caplog.set_level(logging.DEBUG)
    chaos.name(f"19b. no SELECT privilege on the table ({server.kind})")
    source = server.source(user=server.login, password=RIGHT_PASSWORD)

    error = _extract(tmp_path, source, table_dict("notes", COLUMNS))

    cause = _terminal(error, SourceAccessDenied)
    message = str(error)
    if server.kind == "postgresql":  # read by psql's COPY: its SQLSTATE, 42501
        assert "permission denied for table notes" in message
    else:
        assert "command denied to user" in message and "notes" in message
    phrase = "permission denied" if server.kind == "postgresql" else "command denied"
    _record(chaos, tmp_path, error, cause, caplog.text, phrase)


def test_missing_table_fails_at_once(
    tmp_path: Path, server: Server, chaos: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    """Read through a query (the driver's error code decides, not the catalog
    lookup a table source gets first)."""
    caplog.set_level(logging.DEBUG)
    chaos.name(f"19c. source table missing ({server.kind})")
    table = table_dict(
        "notes", COLUMNS, source={"query": "SELECT id, note FROM notes_gone"}
    )

    error = _extract(tmp_path, server.admin_source(), table)

    cause = _terminal(error, SourceSchemaError)
    assert "notes_gone" in str(error) and "no such table" in str(error)
    _record(chaos, tmp_path, error, cause, caplog.text, "notes_gone")


def test_missing_table_source_fails_at_once_too(
    tmp_path: Path, server: Server, chaos: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    chaos.name(f"19c'. declared source table missing ({server.kind})")
    table = table_dict("notes", COLUMNS, source={"table": "notes_gone"})

    error = _extract(tmp_path, server.admin_source(), table)

    cause = _terminal(error, SourceSchemaError)
    phrase = "source table 'notes_gone' does not exist"
    _record(chaos, tmp_path, error, cause, caplog.text, phrase)


def test_missing_column_fails_at_once_naming_it(
    tmp_path: Path, server: Server, chaos: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    chaos.name(f"19d. declared column missing at the source ({server.kind})")
    query = "SELECT id, note, shelf FROM notes"
    columns = [*COLUMNS, {"name": "shelf", "type": "string"}]
    table = table_dict("notes", columns, source={"query": query})

    error = _extract(tmp_path, server.admin_source(), table)

    cause = _terminal(error, SourceSchemaError, column="shelf")
    assert str(error).startswith("[tenant=acme table=notes column=shelf] reading ")
    _record(chaos, tmp_path, error, cause, caplog.text, "column=shelf")


def test_missing_declared_column_of_a_table_fails_at_once(
    tmp_path: Path, server: Server, chaos: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    chaos.name(f"19d'. declared column missing from the table ({server.kind})")
    columns = [*COLUMNS, {"name": "shelf", "type": "string"}]

    error = _extract(tmp_path, server.admin_source(), table_dict("notes", columns))

    cause = _terminal(error, SourceSchemaError, column="shelf")
    phrase = "declared column notes.shelf does not exist"
    _record(chaos, tmp_path, error, cause, caplog.text, phrase)


def test_connection_refused_stays_retryable(
    tmp_path: Path, server: Server, chaos: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    chaos.name(f"19e. source connection refused ({server.kind}): retried")
    source = server.source(port=_closed_port(), password=PASSWORD)

    error = _extract(tmp_path, source, table_dict("notes", COLUMNS))

    assert type(error) is SourceError, repr(error)  # Airflow retries it
    assert not error.terminal
    assert (error.tenant, error.table) == ("acme", "notes")
    phrase = "Connection refused" if server.kind == "postgresql" else "Can't connect"
    _record(chaos, tmp_path, error, error, caplog.text, phrase)


def test_reconcile_count_of_a_dropped_table_fails_at_once(
    tmp_path: Path, server: Server, chaos: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    """The reconcile's reads of the source go through the same classifier: the
    table dropped after the extract is a terminal error, not five minutes' wait."""
    caplog.set_level(logging.DEBUG)
    chaos.name(f"19f. source table dropped before the reconcile ({server.kind})")
    table = table_dict("notes", COLUMNS)
    folder = write_tenant(
        tmp_path / "tenants",
        tenant_dict(tmp_path, [table], source=server.admin_source()),
    )
    out = run_table(folder, "notes", DAY, "run-1", stages=("extract", "validate"))
    server.run("DROP TABLE notes")

    with pytest.raises(AirflowFailException) as caught:
        run_table(
            folder,
            "notes",
            DAY,
            "run-1",
            stages=("validate", "load", "reconcile"),
            manifest=out["extract"],
        )

    cause = _terminal(caught.value, SourceSchemaError)
    assert "'notes' does not exist" in str(caught.value)
    # A versioned table's reconcile reads the source's rows (the extract's
    # path, above); a transformed table's counts them: the count's own error.
    tenant = tenant_of(folder)
    with pytest.raises(SourceSchemaError) as counted:
        source_figures(
            tenant, tenant.table("notes"), source_connector(tenant), window=None
        )
    assert counted.value.terminal
    assert str(counted.value).startswith("[tenant=acme table=notes] counting ")
    assert "no such table" in str(counted.value)
    logs = caplog.text + str(counted.value)
    _record(chaos, tmp_path, caught.value, cause, logs, "'notes' does not exist")
