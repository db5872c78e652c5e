"""The run ledger `<tid>_raw._mozart_ledger` on a real SQL catalog."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mozart_etl.config.models import TenantConfig
from mozart_etl.core.errors import ValidationFailed
from mozart_etl.core.lake import Lake
from mozart_etl.load.catalog import open_catalog
from mozart_etl.load.iceberg import LoadResult
from mozart_etl.load.ledger import (
    LEDGER_TABLE,
    LedgerRecord,
    load_and_record,
    read_ledger,
    record_rejection,
)
from mozart_etl.validate.validator import read_accepted, validate_extract
from tests.helpers import make_tenant, seoul_day, table_dict, write_extract

DAY = date(2026, 11, 15)
COLUMNS = [
    {"name": "id", "type": "bigint", "nullable": False},
    {"name": "qty", "type": "bigint"},
    {"name": "updated_at", "type": "timestamptz", "nullable": False},
]
RULES = [{"type": "range", "column": "qty", "min": 0, "max_failures": 1}]


def _tenant(tmp_path: Path, qty_type: str = "bigint") -> TenantConfig:
    columns = [*COLUMNS[:1], {"name": "qty", "type": qty_type}, COLUMNS[2]]
    rules = RULES if qty_type == "bigint" else []
    lots = table_dict(
        "lots", columns, mode="incremental", cursor="updated_at", rules=rules
    )
    return make_tenant(tmp_path, [lots])


def _rows(qtys: list[int]) -> list[dict]:
    start = seoul_day(DAY).start
    return [
        {"id": i, "qty": qty, "updated_at": start + timedelta(minutes=i)}
        for i, qty in enumerate(qtys)
    ]


def _run(
    tmp_path: Path, qtys: list[int], run_id: str, extract_id: str
) -> tuple[LoadResult, LedgerRecord]:
    tenant = _tenant(tmp_path)
    table = tenant.table("lots")
    manifest = write_extract(
        tenant, table, _rows(qtys), seoul_day(DAY), extract_id=extract_id
    )
    report = validate_extract(tenant, table, manifest)
    rows = read_accepted(Lake(tenant), report)
    catalog = open_catalog(tenant)
    return load_and_record(
        catalog,
        tenant,
        table,
        manifest,
        rows,
        run_id=run_id,
        quarantined=report.quarantined,
    )


def test_a_load_appends_one_record_with_counts_and_snapshot(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mozart_etl")
    result, record = _run(tmp_path, [1, 2, -5, 4], "run-1", "x1")

    tenant = _tenant(tmp_path)
    catalog = open_catalog(tenant)
    ledger = read_ledger(catalog, tenant).to_pylist()
    assert len(ledger) == 1
    row = ledger[0]
    raw = catalog.load_table(("acme_raw", "lots"))
    assert row["snapshot_id"] == raw.current_snapshot().snapshot_id
    assert row["snapshot_id"] == result.snapshot_id
    assert {k: row[k] for k in ("tenant_id", "table_name", "run_id", "extract_id")} == {
        "tenant_id": "acme",
        "table_name": "lots",
        "run_id": "run-1",
        "extract_id": "x1",
    }
    assert (row["production_day"], row["mode"], row["status"]) == (
        DAY,
        "incremental",
        "loaded",
    )
    counts = ("rows_extracted", "rows_quarantined", "rows_accepted", "rows_loaded")
    assert [row[c] for c in counts] == [4, 1, 3, 3]
    assert row["rows_in_table"] == 3
    assert row["window_start"] == seoul_day(DAY).start
    assert row["load_seconds"] == result.seconds and row["error"] is None
    assert catalog.table_exists(("acme_raw", LEDGER_TABLE))
    summary = [
        r.getMessage() for r in caplog.records if "ledger acme.lots" in r.message
    ]
    assert len(summary) == 1
    assert "extracted 4, quarantined 1, accepted 3, loaded 3" in summary[0]
    assert str(record.snapshot_id) in summary[0]


def test_a_retry_replaces_its_record_and_a_new_run_adds_one(tmp_path: Path) -> None:
    _run(tmp_path, [1, 2], "run-1", "x1")
    _run(tmp_path, [1, 2, 3], "run-1", "x1")  # task retry: same run, same extract
    _run(tmp_path, [1, 2, 3, 4], "run-2", "x2")  # a rerun of the day

    tenant = _tenant(tmp_path)
    ledger = read_ledger(open_catalog(tenant), tenant).to_pylist()
    got = sorted((r["run_id"], r["extract_id"], r["rows_loaded"]) for r in ledger)
    assert got == [("run-1", "x1", 3), ("run-2", "x2", 4)]


def test_a_failed_load_is_ledgered_and_raised(tmp_path: Path) -> None:
    _run(tmp_path, [1, 2], "run-1", "x1")
    # The column's type changed incompatibly: bigint → string cannot evolve.
    changed = _tenant(tmp_path, qty_type="string")
    table = changed.table("lots")
    # A new version (id 2 is not in raw): the load has rows to write.
    rows = [{**row, "qty": str(row["qty"])} for row in _rows([1, 2, 7])[2:]]
    manifest = write_extract(changed, table, rows, seoul_day(DAY), extract_id="x2")
    # (validation would reject the retype; the load must fail safely on its own)
    accepted = pq.read_table(manifest.files[0].path)
    catalog = open_catalog(changed)
    before = catalog.load_table(("acme_raw", "lots")).current_snapshot().snapshot_id

    with pytest.raises(Exception) as caught:
        load_and_record(
            catalog,
            changed,
            table,
            manifest,
            accepted,
            run_id="run-2",
            quarantined=0,
        )

    raw = catalog.load_table(("acme_raw", "lots"))
    assert raw.current_snapshot().snapshot_id == before
    ledger = {r["run_id"]: r for r in read_ledger(catalog, changed).to_pylist()}
    failed = ledger["run-2"]
    assert failed["status"] == "failed"
    assert failed["snapshot_id"] is None and failed["rows_loaded"] is None
    assert failed["error"].startswith(type(caught.value).__name__)
    assert ledger["run-1"]["status"] == "loaded"


def test_a_rejected_extract_is_ledgered_with_its_counts(tmp_path: Path) -> None:
    tenant = _tenant(tmp_path)
    table = tenant.table("lots")
    manifest = write_extract(
        tenant, table, _rows([-1, -2, 3]), seoul_day(DAY), extract_id="x1"
    )
    with pytest.raises(ValidationFailed) as caught:
        validate_extract(tenant, table, manifest)

    record_rejection(
        lambda: open_catalog(tenant),
        tenant,
        table,
        manifest,
        run_id="run-1",
        error=caught.value,
    )

    catalog = open_catalog(tenant)
    (row,) = read_ledger(catalog, tenant).to_pylist()
    assert row["status"] == "rejected"
    assert (row["rows_extracted"], row["rows_quarantined"], row["rows_accepted"]) == (
        3,
        2,
        1,
    )
    assert row["rows_loaded"] is None and row["snapshot_id"] is None
    assert "ValidationFailed" in row["error"]
    assert not catalog.table_exists(("acme_raw", "lots"))


def test_the_ledger_stays_small_and_keeps_every_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Old snapshots are expired and files compacted, so writes do not slow down
    run after run; no record is lost on the way (thresholds lowered here)."""
    from mozart_etl.load import ledger as ledger_module

    monkeypatch.setattr(ledger_module, "LEDGER_SNAPSHOTS_KEPT", 3)
    monkeypatch.setattr(ledger_module, "LEDGER_SNAPSHOT_MIN_AGE", timedelta(0))
    monkeypatch.setattr(ledger_module, "LEDGER_COMPACT_AT_FILES", 4)
    monkeypatch.setattr(ledger_module, "LEDGER_EXPIRE_BATCH", 2)
    tenant = _tenant(tmp_path)
    catalog = open_catalog(tenant)
    _, first = _run(tmp_path, [1], "run-0", "x0")
    for number in range(1, 12):
        record = first.model_copy(
            update={"run_id": f"run-{number}", "extract_id": f"x{number}"}
        )
        ledger_module.append_record(catalog, tenant, record)

    ledger = catalog.load_table((tenant.raw_namespace, LEDGER_TABLE))
    # Expired in batches of two: three kept, a fourth until the next write.
    assert len(ledger.snapshots()) in (3, 4)
    snapshot = ledger.current_snapshot()
    assert snapshot is not None
    assert int(snapshot.summary["total-data-files"] or 0) <= 5
    runs = sorted(read_ledger(catalog, tenant)["run_id"].to_pylist())
    assert runs == sorted(f"run-{number}" for number in range(12))


def _write_records(folder: str, first: LedgerRecord, writer: int, count: int) -> None:
    """One of several processes writing the ledger at once (a small compaction
    threshold, so housekeeping rewrites it while the others write; snapshots
    this young are never expired)."""
    from mozart_etl.load import ledger as ledger_module

    ledger_module.LEDGER_COMPACT_AT_FILES = 3
    tenant = _tenant(Path(folder))
    catalog = open_catalog(tenant)
    for number in range(count):
        record = first.model_copy(
            update={"run_id": f"w{writer}-{number}", "extract_id": f"w{writer}"}
        )
        ledger_module.append_record(catalog, tenant, record)


def test_concurrent_writers_and_housekeeping_lose_no_record(tmp_path: Path) -> None:
    import multiprocessing

    _, first = _run(tmp_path, [1], "run-0", "x0")
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        pool.starmap(
            _write_records, [(str(tmp_path), first, writer, 6) for writer in range(4)]
        )

    tenant = _tenant(tmp_path)
    runs = sorted(read_ledger(open_catalog(tenant), tenant)["run_id"].to_pylist())
    expected = ["run-0"] + [f"w{w}-{n}" for w in range(4) for n in range(6)]
    assert runs == sorted(expected)
