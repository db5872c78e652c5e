"""Reports where people look, from the live demo run: the task logs' one-line
summaries, the quality report and ledger row in XCom, `mozart report`."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from typing import Any

from mozart_etl.cli import main
from mozart_etl.demo.generate import DEMO_DAY
from tests.browser.conftest import LiveDemo


def _xcom(live: LiveDemo, task_id: str) -> Any:
    path = (
        f"/dags/demo/dagRuns/{live.finished_run()}/taskInstances/{task_id}"
        "/xcomEntries/return_value"
    )
    params = {"deserialize": True, "stringify": False}
    return live.airflow.api("GET", path, params=params).json()["value"]


def _task_log(live: LiveDemo, task_id: str) -> str:
    folder = live.airflow.home / "logs" / "dag_id=demo" / f"run_id={live.run_id}"
    (log,) = (folder / f"task_id={task_id}").glob("attempt=*.log")
    return log.read_text()


def test_quality_report_and_ledger_row_are_in_xcom(live_demo: LiveDemo) -> None:
    rows = live_demo.summary.rows["lot_history"]
    bad = len(live_demo.summary.bad_lot_history_keys)
    report = _xcom(live_demo, "lot_history.validate")
    assert (report["rows"], report["accepted"], report["quarantined"]) == (
        rows,
        rows - bad,
        bad,
    )
    # The demo source breaks three MES invariants, one row each.
    assert {name: n for name, n in report["failed_by_rule"].items() if n} == {
        "qty_out_le_qty_in": 1,
        "arrived_before_track_in": 1,
        "track_in_before_track_out": 1,
    }
    loaded = _xcom(live_demo, "lot_history.load")
    ledger = loaded["ledger"]
    assert (ledger["status"], ledger["run_id"]) == ("loaded", live_demo.run_id)
    assert (ledger["rows_extracted"], ledger["rows_quarantined"]) == (rows, bad)
    assert ledger["rows_loaded"] == loaded["rows_loaded"] == rows - bad
    assert ledger["snapshot_id"] == loaded["snapshot_id"]


def test_task_logs_end_with_one_line_summaries(live_demo: LiveDemo) -> None:
    live_demo.finished_run()
    rows = live_demo.summary.rows["lot_history"]
    bad = len(live_demo.summary.bad_lot_history_keys)
    extract = _task_log(live_demo, "lot_history.extract")
    assert f"extracted demo.lot_history: {rows} rows in 1 file(s)" in extract
    assert "rows/s" in extract
    validate = _task_log(live_demo, "lot_history.validate")
    assert (
        f"validated demo.lot_history: {rows} rows, {rows - bad} accepted, "
        f"{bad} quarantined"
    ) in validate
    load = _task_log(live_demo, "lot_history.load")
    assert f"ledger demo.lot_history day {DEMO_DAY} run {live_demo.run_id}" in load
    assert f"extracted {rows}, quarantined {bad}, accepted {rows - bad}" in load


def test_mozart_report_prints_the_ledger(live_demo: LiveDemo) -> None:
    live_demo.finished_run()
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["report", "demo", "--date", DEMO_DAY.isoformat()]) == 0
    rows = live_demo.summary.rows
    bad = len(live_demo.summary.bad_lot_history_keys)
    header, _rule, *records = out.getvalue().splitlines()[1:]
    assert header.split()[:4] == ["table", "status", "mode", "extracted"]
    by_table = {line.split()[0]: line.split() for line in records}
    assert set(by_table) == {t.name for t in live_demo.tenant.tables}
    lot = by_table["lot_history"]
    # `loaded`, or `reconciled` once the reconcile task compared it with the source.
    assert lot[1] in ("loaded", "reconciled")
    kept = str(rows["lot_history"] - bad)
    # In the table: every row's version, the quarantined ones' closing theirs.
    versions = str(rows["lot_history"])
    assert lot[2:8] == [
        "merge",
        str(rows["lot_history"]),
        str(bad),
        kept,
        kept,
        versions,
    ]
    assert str(live_demo.run_id) in by_table["equipment"]

    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["report", "demo", "--date", "2026-01-01"]) == 0
    assert "no ledger records for production day 2026-01-01" in out.getvalue()
