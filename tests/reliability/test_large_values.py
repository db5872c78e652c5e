"""18. A 64 MB text value moves through the whole table pipeline; one over
the configured maximum fails at once, naming column, size and limit.

Before: a 2.2 MB value could never leave PostgreSQL ("straddling object
straddles two block boundaries", blamed on the declared type, retried
forever). Here the real extract → validate → load → reconcile tasks run on a
PostgreSQL table holding a 64 MB value (tabs, newlines and backslashes, which
COPY escapes) and a 2.2 MB one; raw must hold each exactly (SHA-256), and the
reconcile must agree. `tests/extract/test_large_values.py` covers MariaDB,
SQLite, psycopg's COPY and the peak memory.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pyarrow.parquet as pq
import pytest
from airflow.sdk.exceptions import AirflowFailException

from mozart_etl.core.errors import SourceValueTooLarge
from mozart_etl.core.lake import Lake
from mozart_etl.extract.connectors.base import MAX_VALUE_SETTING
from mozart_etl.load.catalog import open_catalog
from tests.extract.test_large_values import (
    BIG,
    COLUMNS,
    MB,
    _pg_seed,
    big_text,
    digest,
    small_rows,
)
from tests.helpers import (
    POSTGRES_HOST,
    POSTGRES_PORT,
    postgres_source,
    table_dict,
    tenant_dict,
)
from tests.reliability.chaos import Recorder, raw_figures
from tests.reliability.lots import DAYS
from tests.reliability.pipeline import run_table, tenant_of, write_tenant

RAW = ("acme_raw", "notes")


def _tenant(tmp_path: Path, database: str) -> Path:
    # One row is refused (quarantined, tolerated): the quarantine is written by
    # reading the extract's row groups back, 64 MB value included.
    refuse = {"type": "range", "column": "id", "max": 7001, "max_failures": 1}
    table = table_dict("notes", COLUMNS, mode="full_refresh", rules=[refuse])
    data = tenant_dict(tmp_path, [table], source=postgres_source(database))
    data["schedule"]["retries"] = 0
    return write_tenant(tmp_path / "tenants", data)


def _source_keys(big: dict[int, str]) -> list[tuple]:
    return [(row[0],) for row in small_rows()] + [(key,) for key in big]


def test_a_64_mb_value_goes_through_extract_validate_load_and_reconcile(
    tmp_path: Path, postgres_db: str, chaos: Recorder
) -> None:
    chaos.name("18. a 64 MB text value (PostgreSQL): extract → raw, exact")
    big = {
        7001: big_text(BIG, escapes=True),
        7002: big_text(2_200_000, escapes=False),  # over the rule's max id
    }
    _pg_seed(postgres_db, big)
    folder = _tenant(tmp_path, postgres_db)

    out = run_table(folder, "notes", DAYS[0], "big")

    assert out["reconcile"]["matched"], out["reconcile"]
    quarantine = pq.read_table(
        out["validate"]["quarantine_path"],
        columns=["id", "note"],
        filesystem=Lake(tenant_of(folder)).fs,
    ).to_pylist()
    assert [(row["id"], digest(row["note"])) for row in quarantine] == [
        (7002, digest(big.pop(7002)))
    ]
    raw = open_catalog(tenant_of(folder)).load_table(RAW).scan().to_arrow()
    held = {row["id"]: row["note"] for row in raw.select(["id", "note"]).to_pylist()}
    for key, value in big.items():
        assert len(held[key]) == len(value) and digest(held[key]) == digest(value)
    for key, note, _ in small_rows():
        assert held[key] == note
    lost, dups = raw_figures(
        open_catalog(tenant_of(folder)), RAW, ["id"], _source_keys(big)
    )
    chaos.record(
        lost=lost,
        dups=dups,
        cause=f"none: {BIG // MB} MB and 2.2 MB values equal by SHA-256",
    )
    assert (lost, dups) == (0, 0)


def test_a_value_over_the_maximum_fails_at_once_naming_it(
    tmp_path: Path,
    postgres_db: str,
    monkeypatch: pytest.MonkeyPatch,
    chaos: Recorder,
) -> None:
    chaos.name("18. a value over MOZART_MAX_VALUE_BYTES: fails at once, names it")
    monkeypatch.setenv(MAX_VALUE_SETTING, str(2 * MB))
    _pg_seed(postgres_db, {})
    folder = _tenant(tmp_path, postgres_db)
    run_table(folder, "notes", DAYS[0], "good")
    with psycopg.connect(
        f"host={POSTGRES_HOST} port={POSTGRES_PORT} user=postgres dbname={postgres_db}",
        autocommit=True,
    ) as conn:
        conn.execute(
            "INSERT INTO notes VALUES (%s, %s, %s)",
            (7002, big_text(2_200_000, escapes=False), "after"),
        )

    with pytest.raises(AirflowFailException) as caught:  # no retry: terminal
        run_table(folder, "notes", DAYS[1], "too-big")

    cause = caught.value.__cause__
    assert isinstance(cause, SourceValueTooLarge)
    assert (cause.tenant, cause.table, cause.column) == ("acme", "notes", "note")
    assert f"({MAX_VALUE_SETTING}) of {2 * MB}" in str(cause)
    # The previous good data is still raw's, whole.
    lost, dups = raw_figures(
        open_catalog(tenant_of(folder)), RAW, ["id"], _source_keys({})
    )
    chaos.record(
        lost=lost, dups=dups, cause="SourceValueTooLarge names column, size, limit"
    )
    assert (lost, dups) == (0, 0)
