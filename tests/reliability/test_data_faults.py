"""9. A full refresh that suddenly returns nothing (or far less); 10. bad rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from airflow.sdk.exceptions import AirflowFailException

from mozart_etl.core.errors import LoadRejected, SourceValueRejected
from mozart_etl.core.lake import ExtractManifest
from mozart_etl.load.catalog import open_catalog
from mozart_etl.load.iceberg import load_partition
from mozart_etl.load.ledger import read_ledger
from mozart_etl.load.versions import live_rows
from tests.helpers import content_hash
from tests.reliability.chaos import Recorder, raw_figures
from tests.reliability.lots import (
    DAYS,
    KEY,
    add_sqlite_rows,
    keys,
    rows_for,
    sqlite_lots_tenant,
)
from tests.reliability.pipeline import run_table, tenant_of

RAW = ("acme_raw", "lots")


def _raw_state(folder: Path) -> tuple[int, str]:
    table = open_catalog(tenant_of(folder)).load_table(RAW)
    data = table.scan().to_arrow().select(["lot_id", "step_seq", "qty"])
    return table.current_snapshot().snapshot_id, content_hash(data)


def _set_source(path: Path, rows: list[dict]) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM lots")
        for row in rows:
            conn.execute(
                "INSERT INTO lots VALUES (?, ?, ?, ?)",
                [
                    row["lot_id"],
                    row["step_seq"],
                    str(row["qty"]),
                    row["updated_at"].strftime("%Y-%m-%d %H:%M:%S.%f+00:00"),
                ],
            )
    conn.close()


@pytest.mark.parametrize(
    ("label", "kept", "settings"),
    [
        ("0 rows", 0, {}),
        ("10% of the rows, min fraction 0.5", 4, {"refresh_min_fraction": 0.5}),
    ],
)
def test_a_shrunken_full_refresh_is_refused_until_allowed(
    tmp_path: Path, label: str, kept: int, settings: dict, chaos: Recorder
) -> None:
    chaos.name(f"9. full refresh returns {label}: refused, raw untouched")
    rows = rows_for(DAYS[0])
    folder = sqlite_lots_tenant(tmp_path, rows, "full_refresh", **settings)
    run_table(folder, "lots", DAYS[0], "good")
    before = _raw_state(folder)
    _set_source(tmp_path / "source.sqlite", rows[:kept])

    with pytest.raises(AirflowFailException) as caught:
        run_table(folder, "lots", DAYS[1], "shrunk")

    message = str(caught.value)
    assert f"{kept} row(s) would replace the 40 in acme_raw.lots" in message
    assert "tenant=acme table=lots" in message
    assert isinstance(caught.value.__cause__, LoadRejected)
    assert _raw_state(folder) == before
    tenant = tenant_of(folder)
    ledger = read_ledger(open_catalog(tenant), tenant).to_pylist()
    assert [r["status"] for r in ledger if r["run_id"] == "shrunk"] == ["failed"]
    lost, dups = raw_figures(open_catalog(tenant), RAW, KEY, keys(rows))
    chaos.record(lost=lost, dups=dups, cause="RefreshRefused (both counts)")
    assert (lost, dups) == (0, 0)

    # Allowed in tenant.yaml, the same refresh goes through.
    (tmp_path / "allowed").mkdir()
    allowed = sqlite_lots_tenant(
        tmp_path / "allowed",
        rows,
        "full_refresh",
        allow_empty_refresh=True,
        refresh_min_fraction=0,
    )
    run_table(allowed, "lots", DAYS[0], "good")
    _set_source(tmp_path / "allowed" / "source.sqlite", rows[:kept])
    out = run_table(allowed, "lots", DAYS[1], "shrunk")
    # Raw keeps the 40 versions and closes each key the source lost: its live
    # rows are the kept ones.
    assert out["load"]["rows_in_table"] == 40 + (40 - kept)
    config = tenant_of(allowed)
    raw = open_catalog(config).load_table(RAW)
    live = live_rows(raw, config.table("lots"))
    assert sorted(keys(live.to_pylist())) == sorted(keys(rows[:kept]))


BAD_SOURCE_ROWS = {
    "NULL key": "INSERT INTO lots VALUES "
    "(NULL, 99, '1.00', '2026-11-14 16:00:00.000000+00:00')",
    "duplicate key": "INSERT INTO lots SELECT lot_id, step_seq, qty, updated_at "
    "FROM lots WHERE step_seq = 3",
}


@pytest.mark.parametrize("fault", sorted(BAD_SOURCE_ROWS))
def test_bad_keys_are_rejected_naming_the_rule(
    tmp_path: Path, fault: str, chaos: Recorder
) -> None:
    chaos.name(f"10. bad rows: {fault} → validation rejects, raw untouched")
    rows = rows_for(DAYS[0])
    folder = sqlite_lots_tenant(tmp_path, rows, "incremental")
    run_table(folder, "lots", DAYS[0], "good")
    before = _raw_state(folder)
    # The next day's rows arrive, one of them bad: the next sync reads them.
    add_sqlite_rows(tmp_path / "source.sqlite", rows_for(DAYS[1]))
    with sqlite3.connect(tmp_path / "source.sqlite") as conn:
        conn.execute(BAD_SOURCE_ROWS[fault].replace("2026-11-14", "2026-11-15"))
    conn.close()

    with pytest.raises(AirflowFailException) as caught:
        run_table(folder, "lots", DAYS[1], "bad")

    message = str(caught.value)
    rule = "required_columns" if fault == "NULL key" else "primary_key_unique"
    assert f"tenant=acme table=lots rule={rule}" in message, message
    assert _raw_state(folder) == before
    lost, dups = raw_figures(open_catalog(tenant_of(folder)), RAW, KEY, keys(rows))
    chaos.record(lost=lost, dups=dups, cause=f"ValidationFailed rule={rule}")
    assert (lost, dups) == (0, 0)


SOURCE_FAULTS = {
    "bad decimal": ("UPDATE lots SET qty = 'twelve' WHERE step_seq = 5", "qty"),
    "invalid UTF-8": (
        "UPDATE lots SET lot_id = CAST(X'C328' AS TEXT) WHERE step_seq = 5",
        "lot_id",
    ),
}


@pytest.mark.parametrize("fault", sorted(SOURCE_FAULTS))
def test_undecodable_values_fail_the_extract_naming_the_column(
    tmp_path: Path, fault: str, chaos: Recorder
) -> None:
    chaos.name(f"10. bad rows: {fault} → extract error names the column")
    rows = rows_for(DAYS[0])
    folder = sqlite_lots_tenant(tmp_path, rows, "full_refresh")
    run_table(folder, "lots", DAYS[0], "good")
    before = _raw_state(folder)
    statement, column = SOURCE_FAULTS[fault]
    with sqlite3.connect(tmp_path / "source.sqlite") as conn:
        conn.execute(statement)
    conn.close()

    # No retry reads another row: the task fails at once (AirflowFailException).
    with pytest.raises(AirflowFailException) as caught:
        run_table(folder, "lots", DAYS[1], "bad")
    assert isinstance(caught.value.__cause__, SourceValueRejected)

    message = str(caught.value)
    assert "tenant=acme table=lots" in message, message
    assert column in message, message
    assert _raw_state(folder) == before
    lost, dups = raw_figures(open_catalog(tenant_of(folder)), RAW, KEY, keys(rows))
    chaos.record(
        lost=lost, dups=dups, cause=f"SourceValueRejected names {column}, fails at once"
    )
    assert (lost, dups) == (0, 0)


def test_an_upsert_batch_with_a_key_twice_is_refused(
    tmp_path: Path, chaos: Recorder
) -> None:
    """The load's own guard, for rows that reach it without validation (a
    transform that duplicates keys, a caller of load_partition)."""
    chaos.name("10. upsert batch with a duplicate key → load refuses clearly")
    rows = rows_for(DAYS[0])
    folder = sqlite_lots_tenant(tmp_path, rows, "merge")
    out = run_table(folder, "lots", DAYS[0], "good")
    before = _raw_state(folder)
    tenant = tenant_of(folder)
    manifest = ExtractManifest.model_validate(out["extract"])
    batch = pq.read_table(manifest.files[0].path)
    data = pa.concat_tables([batch, batch.slice(3, 1)])  # step 3 twice

    with pytest.raises(LoadRejected) as caught:
        load_partition(
            open_catalog(tenant),
            tenant,
            tenant.table("lots"),
            manifest.model_copy(update={"extract_id": "dup-batch"}),
            data,
            run_id="dup",
        )

    message = str(caught.value)
    assert "1 key(s) of ['lot_id', 'step_seq'] occur more than once" in message
    assert "'step_seq': 3" in message
    assert caught.value.terminal
    assert _raw_state(folder) == before
    lost, dups = raw_figures(open_catalog(tenant), RAW, KEY, keys(rows))
    chaos.record(lost=lost, dups=dups, cause="LoadRejected names the key")
    assert (lost, dups) == (0, 0)
