"""Reports where people look: task logs, XCom, `mozart report`."""

from __future__ import annotations

import io
import logging
from contextlib import redirect_stdout
from typing import Any

import pytest
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session
from sqlalchemy import select

from mozart_etl.cli import main
from mozart_etl.demo.generate import DEMO_DAY
from mozart_etl.progress import Progress
from tests.observability.conftest import LineageRun


def _xcom(run: LineageRun, task_id: str) -> Any:
    with create_session() as session:
        row = session.scalars(
            select(XComModel).where(
                XComModel.dag_id == "demo",
                XComModel.run_id == run.run_id,
                XComModel.task_id == task_id,
                XComModel.key == "return_value",
            )
        ).one()
        return XComModel.deserialize_value(row)


def test_quality_report_and_ledger_row_are_in_xcom(lineage_run: LineageRun) -> None:
    rows = lineage_run.summary.rows["lot_history"]
    bad = len(lineage_run.summary.bad_lot_history_keys)
    report = _xcom(lineage_run, "lot_history.validate")
    assert (report["rows"], report["accepted"], report["quarantined"]) == (
        rows,
        rows - bad,
        bad,
    )
    # The demo source breaks three MES invariants, one row each.
    broken = {name: n for name, n in report["failed_by_rule"].items() if n}
    assert broken == {
        "qty_out_le_qty_in": 1,
        "arrived_before_track_in": 1,
        "track_in_before_track_out": 1,
    }
    loaded = _xcom(lineage_run, "lot_history.load")
    ledger = loaded["ledger"]
    assert ledger["status"] == "loaded"
    assert ledger["run_id"] == lineage_run.run_id
    assert (ledger["rows_extracted"], ledger["rows_quarantined"]) == (rows, bad)
    assert ledger["rows_loaded"] == loaded["rows_loaded"] == rows - bad
    assert ledger["snapshot_id"] == loaded["snapshot_id"]


def test_task_log_has_one_line_summaries(lineage_run: LineageRun) -> None:
    rows = lineage_run.summary.rows["lot_history"]
    bad = len(lineage_run.summary.bad_lot_history_keys)
    lines = lineage_run.log.splitlines()
    assert any(
        f"extracted demo.lot_history: {rows} rows in 1 file(s)" in line
        and "rows/s" in line
        for line in lines
    )
    assert any(
        f"validated demo.lot_history: {rows} rows, {rows - bad} accepted, "
        f"{bad} quarantined" in line
        for line in lines
    )
    assert any(
        f"ledger demo.lot_history day {DEMO_DAY} run {lineage_run.run_id}" in line
        and f"extracted {rows}, quarantined {bad}, accepted {rows - bad}" in line
        for line in lines
    )


def test_mozart_report_prints_the_ledger(lineage_run: LineageRun) -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["report", "demo", "--date", DEMO_DAY.isoformat()]) == 0
    text = out.getvalue()
    rows = lineage_run.summary.rows
    bad = len(lineage_run.summary.bad_lot_history_keys)
    header, _rule, *records = text.splitlines()[1:]
    assert header.split()[:4] == ["table", "status", "mode", "extracted"]
    by_table = {line.split()[0]: line.split() for line in records}
    assert set(by_table) == {t.name for t in lineage_run.tenant.tables}
    lot = by_table["lot_history"]
    # `loaded`, or `reconciled` once the reconcile task compared it with the source.
    assert lot[1] in ("loaded", "reconciled")
    assert lot[2:8] == [
        "merge",
        str(rows["lot_history"]),
        str(bad),
        str(rows["lot_history"] - bad),
        str(rows["lot_history"] - bad),
        str(rows["lot_history"] - bad),
    ]
    assert lineage_run.run_id in by_table["equipment"]

    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["report", "demo", "--date", "2026-01-01"]) == 0
    assert "no ledger records for production day 2026-01-01" in out.getvalue()


def test_progress_logs_rows_rate_and_bytes(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("tests.progress")
    progress = Progress("extract t", logger, every_seconds=0)
    with caplog.at_level(logging.INFO, logger="tests.progress"):
        progress.add(1000, 2048)
        progress.add(500, 1024)
    assert [
        r.getMessage().split(" rows/s")[0].rsplit(",", 1)[0] for r in caplog.records
    ] == [
        "extract t: 1,000 rows",
        "extract t: 1,500 rows",
    ]
    assert "3.0 KiB in memory" in caplog.records[-1].getMessage()
    quiet = Progress("extract t", logger, every_seconds=3600)
    caplog.clear()
    quiet.add(1, 1)
    assert caplog.records == []
