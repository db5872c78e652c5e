"""The validate task: its XCom carries the counts per rule; a failing error rule
fails it (no retry) listing rules and counts, and the raw table stays as it was."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from airflow.sdk.exceptions import AirflowFailException
from airflow.sdk.execution_time.context import set_current_context

from mozart_etl.config.loader import load_tenant
from mozart_etl.config.models import TenantConfig
from mozart_etl.core.lake import Lake
from mozart_etl.factory.tasks import run_validate
from mozart_etl.load.catalog import open_catalog
from mozart_etl.load.iceberg import AUDIT_COLUMNS, load_partition
from mozart_etl.validate.validator import ValidationReport, read_accepted
from tests.helpers import (
    Row,
    content_hash,
    seoul_day,
    table_dict,
    tenant_dict,
    utc,
    write_extract,
)

D1, D2 = date(2026, 11, 14), date(2026, 11, 15)

COLUMNS = [
    {"name": "lot_id", "type": "string", "nullable": False},
    {"name": "qty_in", "type": "bigint"},
    {"name": "qty_out", "type": "bigint"},
    {"name": "status", "type": "string"},
    {"name": "updated_at", "type": "timestamptz", "nullable": False},
]
RULES = [
    {"type": "accepted_values", "column": "status", "values": ["RUN", "DONE"]},
    {"type": "pattern", "column": "lot_id", "pattern": "LOT-[0-9]{3}"},
    {"type": "row_count", "min": 2},
    {
        "name": "qty_out_le_qty_in",
        "type": "expression",
        "expr": "qty_out IS NULL OR qty_out <= qty_in",
        "max_fraction": 0.25,
    },
]


def _tenant_folder(tmp_path: Path) -> tuple[str, TenantConfig]:
    lots = table_dict(
        "lots",
        COLUMNS,
        primary_key=["lot_id"],
        mode="merge",
        cursor="updated_at",
        rules=RULES,
    )
    folder = tmp_path / "tenants" / "acme"
    folder.mkdir(parents=True)
    text = yaml.safe_dump(tenant_dict(tmp_path, [lots]), sort_keys=False)
    (folder / "tenant.yaml").write_text(text, encoding="utf-8")
    return str(folder), load_tenant(folder)


def _lot(n: int, day: date, **values: Any) -> Row:
    at = seoul_day(day).start
    return {
        "lot_id": f"LOT-{n:03d}",
        "qty_in": 10,
        "qty_out": 9,
        "status": "RUN",
        "updated_at": at,
        **values,
    }


def _validate_task(
    folder: str, manifest: dict[str, Any], run_id: str
) -> dict[str, Any]:
    """The validate task as a task runs it: the context names the run (the
    ledger records a rejection under it)."""
    with set_current_context({"run_id": run_id}):  # type: ignore[arg-type]
        return run_validate(folder, "lots", manifest)


def test_xcom_holds_the_counts_per_rule(tmp_path: Path) -> None:
    folder, tenant = _tenant_folder(tmp_path)
    table = tenant.table("lots")
    rows = [_lot(1, D1), _lot(2, D1, qty_out=11), _lot(3, D1), _lot(4, D1)]
    manifest = write_extract(tenant, table, rows, seoul_day(D1))

    xcom = _validate_task(folder, manifest.model_dump(mode="json"), "run-d1")

    assert xcom["failed_by_rule"] == {
        "required_columns": 0,
        "primary_key_unique": 0,
        "accepted_values(status)": 0,
        "pattern(lot_id)": 0,
        "row_count": 0,
        "qty_out_le_qty_in": 1,
    }
    assert [
        (r["name"], r["scope"], r["failed"], r["tolerated"]) for r in xcom["rules"]
    ][-2:] == [("row_count", "table", 0, True), ("qty_out_le_qty_in", "row", 1, True)]
    assert (xcom["rows"], xcom["accepted"], xcom["quarantined"]) == (4, 3, 1)
    on_disk = yaml.safe_load(
        Path(manifest.folder, "validated", "report.json").read_text(encoding="utf-8")
    )
    assert on_disk == xcom


def test_failing_error_rule_fails_the_task_and_leaves_raw_unchanged(
    tmp_path: Path,
) -> None:
    folder, tenant = _tenant_folder(tmp_path)
    table = tenant.table("lots")
    catalog = open_catalog(tenant)
    # Day 1 loads.
    good = write_extract(
        tenant, table, [_lot(1, D1), _lot(2, D1)], seoul_day(D1), extract_id="d1"
    )
    report = _validate_task(folder, good.model_dump(mode="json"), "run-d1")
    assert report["quarantined"] == 0
    accepted = read_accepted(Lake(tenant), ValidationReport.model_validate(report))
    load_partition(catalog, tenant, table, good, accepted, run_id="run-d1")
    raw = catalog.load_table((tenant.raw_namespace, "lots"))
    snapshot = raw.current_snapshot().snapshot_id
    history = [entry.snapshot_id for entry in raw.history()]
    before = content_hash(raw.scan().to_arrow(), exclude=AUDIT_COLUMNS)

    # Day 2's extract breaks three error rules; one row is within tolerance.
    bad_rows = [
        _lot(1, D2, status="LOST"),
        _lot(2, D2, qty_out=99),
        _lot(3, D2, status="GONE"),
        _lot(4, D2, qty_out=12),
        {**_lot(5, D2), "lot_id": "lot_5"},
    ]
    bad = write_extract(tenant, table, bad_rows, seoul_day(D2), extract_id="d2")
    # As in a task: the task runner sets the context (the ledger reads run_id).
    with (
        set_current_context({"run_id": "run-d2"}),  # type: ignore[arg-type]
        pytest.raises(AirflowFailException) as info,
    ):
        run_validate(folder, "lots", bad.model_dump(mode="json"))

    message = str(info.value)
    assert message.startswith("[tenant=acme table=lots] 3 rule(s) failed")
    assert (
        "(accepted_values(status): 2 row(s), pattern(lot_id): 1 row(s), "
        "qty_out_le_qty_in: 2 row(s)) of 5 rows; nothing was loaded"
    ) in message
    raw = catalog.load_table((tenant.raw_namespace, "lots"))
    assert raw.current_snapshot().snapshot_id == snapshot
    assert [entry.snapshot_id for entry in raw.history()] == history
    assert content_hash(raw.scan().to_arrow(), exclude=AUDIT_COLUMNS) == before
    assert sorted(raw.scan().to_arrow().column("lot_id").to_pylist()) == [
        "LOT-001",
        "LOT-002",
    ]
    assert (
        raw.scan().to_arrow().column("updated_at").to_pylist()
        == [utc(2026, 11, 13, 15)] * 2
    )
