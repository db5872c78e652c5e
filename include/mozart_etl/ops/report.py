"""`mozart report <tenant> [--date D]`: the run ledger of a tenant as a table.

One line per ledger record of the production day (default: the latest day in
the ledger), oldest first: what each table's runs extracted, quarantined,
accepted and loaded, the raw table's snapshot and how long it took.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from mozart_etl.config.models import TenantConfig
from mozart_etl.load.catalog import open_catalog
from mozart_etl.load.ledger import read_ledger

COLUMNS: tuple[tuple[str, str], ...] = (
    ("table_name", "table"),
    ("status", "status"),
    ("mode", "mode"),
    ("rows_extracted", "extracted"),
    ("rows_quarantined", "quarantined"),
    ("rows_accepted", "accepted"),
    ("rows_loaded", "loaded"),
    ("rows_in_table", "versions"),
    ("snapshot_id", "snapshot"),
    ("extract_seconds", "extract s"),
    ("load_seconds", "load s"),
    ("run_id", "run"),
    ("error", "error"),
)
MAX_CELL = 60


def ledger_rows(
    tenant: TenantConfig, day: date | None = None
) -> tuple[date | None, list[dict[str, Any]]]:
    """The day's records (the latest day when `day` is None), oldest first."""
    ledger = read_ledger(open_catalog(tenant), tenant)
    if ledger.num_rows == 0:
        return day, []
    if day is None:
        day = pc.max(ledger["production_day"]).as_py()
    selected = ledger.filter(pc.equal(ledger["production_day"], pa.scalar(day)))
    rows = selected.sort_by([("recorded_at", "ascending")]).to_pylist()
    return day, rows


def render_report(tenant: TenantConfig, day: date | None = None) -> str:
    day, rows = ledger_rows(tenant, day)
    title = (
        f"tenant {tenant.tenant_id} — run ledger {tenant.raw_namespace}._mozart_ledger"
    )
    if not rows:
        where = f"production day {day}" if day else "any production day"
        return f"{title}\nno ledger records for {where}\n"
    header = [label for _, label in COLUMNS]
    cells = [[_cell(row.get(name)) for name, _ in COLUMNS] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    lines = [
        f"{title}, production day {day}: {len(rows)} record(s)",
        "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells
    ]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    text = str(value)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"
