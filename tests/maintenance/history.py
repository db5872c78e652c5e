"""Sixty production days of loads into two raw tables, through the real load path.

`lots` is a dated merge table (partitioned by the day its versions became
valid): each day brings new lots, changes to older ones, rows re-read by the
lookback (already in raw: nothing appended) and one row committed late whose
cursor lies in the day before (a second file in that day's partition).
`items` is a full-refresh master (unpartitioned): one item changes a day, so
each load appends one small file.

Each day is extracted as Parquet with a manifest (`tests.helpers.write_extract`,
as the extract stage writes it) and loaded by `load_and_record`: the load
stage's own call (load_partition, then the ledger record). Validation is left
out: it decides which rows load, not how they land, and costs a DuckDB pass a
day. The snapshots are stamped with the simulated day's clock (the sync an
hour after the day's end), so retention has real ages to work on.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
import yaml
from pyiceberg.catalog import Catalog

from mozart_etl.config.loader import load_tenant
from mozart_etl.config.models import TenantConfig
from mozart_etl.core.lake import ExtractManifest
from mozart_etl.load.iceberg import load_partition
from mozart_etl.load.ledger import load_and_record
from tests.helpers import Row, seoul_day, table_dict, tenant_dict, write_extract

DAYS = 60
TODAY = datetime.now(UTC).date()
FIRST_DAY = TODAY - timedelta(days=DAYS + 1)
LOT_COLUMNS = [
    {"name": "lot_id", "type": "string", "nullable": False},
    {"name": "qty", "type": "bigint"},
    {"name": "amount", "type": "decimal", "precision": 12, "scale": 2},
    {"name": "status", "type": "string"},
    {"name": "updated_at", "type": "timestamptz", "nullable": False},
]
ITEM_COLUMNS = [
    {"name": "item_id", "type": "string", "nullable": False},
    {"name": "name", "type": "string"},
    {"name": "price", "type": "double"},
]
ITEMS = 12


def days(count: int = DAYS) -> list[date]:
    return [FIRST_DAY + timedelta(days=index) for index in range(count)]


def captured(day: date) -> datetime:
    """When the day's sync reads the source: an hour after the day's end."""
    return seoul_day(day).end + timedelta(hours=1)


def tenant_data(root: Path) -> dict[str, Any]:
    lots = table_dict(
        "lots",
        LOT_COLUMNS,
        primary_key=["lot_id"],
        mode="merge",
        cursor="updated_at",
        lookback_hours=2,
    )
    items = table_dict(
        "items", ITEM_COLUMNS, primary_key=["item_id"], mode="full_refresh"
    )
    data = tenant_dict(root, [lots, items])
    data["schedule"]["retries"] = 0
    return data


def write_tenant(root: Path) -> Path:
    """`<root>/tenants/acme/tenant.yaml`; returns the folder."""
    data = tenant_data(root)
    folder = root / "tenants" / data["tenant_id"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tenant.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    return folder


def tenant_at(folder: Path) -> TenantConfig:
    return load_tenant(folder, base_dir=folder.parents[1])


def lot_rows(index: int, day: date) -> list[Row]:
    """What day `index`'s sync reads of `lots`: the day's new lots and changes,
    the lookback's re-read of the day before, and a late row of the day before."""
    start = seoul_day(day).start
    rows = [
        _lot(f"L{index:02d}-{n}", 10 * n + index, start + timedelta(hours=2 + 5 * n))
        for n in range(4)
    ]
    if index >= 1:
        previous = seoul_day(day - timedelta(days=1))
        # A lot of an earlier day moves on today (a new version of its key) ...
        rows.append(
            _lot(f"L{index - 1:02d}-0", 99, start + timedelta(hours=12), "DONE")
        )
        # ... the lookback re-reads yesterday's last lot (raw holds it) ...
        rows.append(
            _lot(
                f"L{index - 1:02d}-3",
                10 * 3 + index - 1,
                previous.start + timedelta(hours=17),
            )
        )
        # ... and a row committed after yesterday's sync, dated yesterday.
        rows.append(
            _lot(f"late-{index:02d}", index, previous.end - timedelta(minutes=30))
        )
    return rows


def _lot(lot: str, qty: int, at: datetime, status: str = "RUN") -> Row:
    return {
        "lot_id": lot,
        "qty": qty,
        "amount": Decimal(qty) / 4,
        "status": status,
        "updated_at": at,
    }


def item_rows(index: int) -> list[Row]:
    """The whole item master as day `index` reads it: item `index % ITEMS`
    has a new price."""
    return [
        {
            "item_id": f"I{n:02d}",
            "name": f"item {n}",
            "price": float(n) + (index if n == index % ITEMS and index else 0) / 10,
        }
        for n in range(ITEMS)
    ]


@contextmanager
def snapshot_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[datetime]]:
    """Snapshots committed inside are stamped with `clock[0]` (PyIceberg takes
    a new snapshot's timestamp from `time.time()` in its snapshots module)."""
    import pyiceberg.table.snapshots as snapshots

    clock = [datetime.now(UTC)]
    with monkeypatch.context() as patch:
        patch.setattr(
            snapshots, "time", types.SimpleNamespace(time=lambda: clock[0].timestamp())
        )
        yield clock


def manifest_for(
    tenant: TenantConfig, name: str, rows: list[Row], day: date, run: str
) -> ExtractManifest:
    table = tenant.table(name)
    return write_extract(
        tenant, table, rows, seoul_day(day), extract_id=f"{day:%Y%m%d}-{run}-{name}"
    ).model_copy(update={"captured_at": captured(day)})


def load_day(
    catalog: Catalog, tenant: TenantConfig, index: int, day: date, run: str = "r1"
) -> None:
    """One production day's loads of both tables, as the sync tasks load them
    (`lots` with its ledger record; `items` without, to save a ledger write a
    day: the ledger's compaction needs records, not two per day)."""
    run_id = f"scheduled__{day}"
    for name, rows in (("lots", lot_rows(index, day)), ("items", item_rows(index))):
        manifest = manifest_for(tenant, name, rows, day, run)
        table = tenant.table(name)
        data = pa.Table.from_pylist(rows, schema=_schema(tenant, name))
        if name == "lots":
            load_and_record(
                catalog, tenant, table, manifest, data, run_id=run_id, quarantined=0
            )
        else:
            load_partition(catalog, tenant, table, manifest, data, run_id=run_id)


def _schema(tenant: TenantConfig, name: str) -> pa.Schema:
    from mozart_etl.extract.types import arrow_schema

    return arrow_schema(tenant.table(name))


def raw_content(catalog: Catalog, tenant: TenantConfig, name: str) -> pa.Table:
    """Every row raw holds (every version, audit columns included), sorted by
    every column: two reads are equal iff they hold the same rows."""
    data = catalog.load_table((tenant.raw_namespace, name)).scan().to_arrow()
    return data.sort_by([(column, "ascending") for column in data.column_names])


def as_of(raw: pa.Table, keys: list[str], at: datetime) -> pa.Table:
    """Each key's version valid at `at`, as `mozart_core.as_of` reads it in dbt
    (dbt/mozart_core/macros/as_of.sql, the same ranking), sorted."""
    key_list = ", ".join(f'v."{key}"' for key in keys)
    con = duckdb.connect()
    con.register("raw", raw)
    query = f"""
        select * exclude (_mozart_version_rank) from (
            select v.*, row_number() over (
                partition by {key_list}
                order by
                    case when v._mozart_valid_from <= $at then 0 else 1 end,
                    case when v._mozart_valid_from <= $at
                         then v._mozart_valid_from end desc,
                    v._mozart_valid_from,
                    v._mozart_loaded_at desc
            ) as _mozart_version_rank
            from raw as v
        ) where _mozart_version_rank = 1 and not _mozart_deleted
    """
    result = con.sql(query, params={"at": at}).to_arrow_table()
    con.close()
    return result.sort_by([(column, "ascending") for column in result.column_names])
