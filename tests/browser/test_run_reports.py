"""Reports where people look, from the live demo run: the sync task's log
(a one-line summary per stage), each stage's result in its XCom (the quality
report, the load result and ledger row), the dbt layer tasks' per-node
outcomes, `mozart report`."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from typing import Any

from mozart_etl.demo.generate import DEMO_DAY
from mozart_etl.ops.cli import main
from tests.browser.conftest import ROOT, LiveDemo

SYNC_SECTIONS = {"extract", "validate", "transform", "load", "reconcile", "resumed"}


def _xcom(live: LiveDemo, task_id: str, key: str = "return_value") -> Any:
    path = (
        f"/dags/demo/dagRuns/{live.finished_run()}/taskInstances/{task_id}"
        f"/xcomEntries/{key}"
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
    synced = _xcom(live_demo, "sync.lot_history")
    assert set(synced) == SYNC_SECTIONS
    # One attempt, which read the source itself; lot_history has no transform.
    assert (synced["resumed"], synced["transform"]) == (False, None)
    extract = synced["extract"]
    assert (extract["table"], extract["rows"], len(extract["files"])) == (
        "lot_history",
        rows,
        1,
    )
    report = synced["validate"]
    assert report["extract_id"] == extract["extract_id"]
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
    loaded = synced["load"]
    ledger = loaded["ledger"]
    assert (ledger["status"], ledger["run_id"]) == ("loaded", live_demo.run_id)
    assert ledger["extract_id"] == extract["extract_id"]
    assert (ledger["rows_extracted"], ledger["rows_quarantined"]) == (rows, bad)
    assert ledger["rows_loaded"] == loaded["rows_loaded"] == rows - bad
    assert ledger["snapshot_id"] == loaded["snapshot_id"]
    # The reconcile, in the same task: every source row is in raw or quarantined.
    reconciled = synced["reconcile"]
    assert reconciled["extract_id"] == extract["extract_id"]
    assert reconciled["matched"] is True
    assert (reconciled["source_rows"], reconciled["raw_rows"]) == (rows, rows - bad)
    assert reconciled["quarantined_rows"] == bad
    assert (reconciled["missing_count"], reconciled["stale_count"]) == (0, 0)


def test_sync_log_has_a_one_line_summary_per_stage(live_demo: LiveDemo) -> None:
    live_demo.finished_run()
    rows = live_demo.summary.rows["lot_history"]
    bad = len(live_demo.summary.bad_lot_history_keys)
    log = _task_log(live_demo, "sync.lot_history")
    lines = log.splitlines()
    extract = _line_of(lines, f"extracted demo.lot_history: {rows} rows in 1 file(s)")
    assert "rows/s" in lines[extract]
    validate = _line_of(
        lines,
        f"validated demo.lot_history: {rows} rows, {rows - bad} accepted, "
        f"{bad} quarantined",
    )
    ledger = f"ledger demo.lot_history day {DEMO_DAY} run {live_demo.run_id}"
    counts = f"extracted {rows}, quarantined {bad}, accepted {rows - bad}"
    load = _line_of(lines, ledger, ": loaded — ", counts)
    reconcile = _line_of(
        lines,
        f"reconcile demo.lot_history: source {rows} row(s), raw {rows - bad} + "
        f"{bad} quarantined — match",
    )
    reconciled = _line_of(lines, ledger, ": reconciled — ", counts)
    # The stages in their order, in one task; a first attempt reads the source.
    assert extract < validate < load < reconcile < reconciled
    assert "resuming from extract" not in log
    # Each stage logged its summary: the task's whole return value is not logged.
    assert "Returned value was" not in log


def test_dbt_layer_tasks_report_each_node(live_demo: LiveDemo) -> None:
    """One task per layer: each model and test's outcome in its log and XCom."""
    live_demo.finished_run()
    dbt = ROOT / "tenants" / "demo" / "dbt" / "models"
    for layer in ("staging", "marts"):
        models = {path.stem for path in (dbt / layer).glob("*.sql")}
        nodes = _xcom(live_demo, f"dbt_{layer}", key="models")
        built = {n["name"]: n for n in nodes if n["resource_type"] == "model"}
        assert set(built) == models, layer
        assert {n["status"] for n in built.values()} == {"success"}, layer
        tests = [n for n in nodes if n["resource_type"] == "test"]
        assert tests, layer
        assert {n["status"] for n in tests} == {"pass"}, layer
        log = _task_log(live_demo, f"dbt_{layer}")
        for node in nodes:
            assert (
                f"dbt {node['resource_type']} {node['name']}: {node['status']} in "
            ) in log, node
        assert (
            f"dbt {layer}: {len(nodes)} node(s) finished: {len(tests)} pass, "
            f"{len(models)} success"
        ) in log
        # A first attempt builds the whole layer (a retry, only what was left).
        assert "node(s) unbuilt" not in log


def _line_of(lines: list[str], *parts: str) -> int:
    """The index of the one log line holding every one of `parts`."""
    found = [i for i, line in enumerate(lines) if all(p in line for p in parts)]
    assert len(found) == 1, (parts, found)
    return found[0]


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
    # `reconciled`: the sync compared raw with the source before it succeeded.
    assert lot[1] == "reconciled"
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
