"""Sixty daily loads, then maintenance: few files, snapshots within retention,
the same rows and as-of reads, a compact ledger.

The history (`history.py`) is loaded once for the module through the real
load path, with each day's snapshots stamped at that day's sync; maintenance
runs with its default settings (7 days' retention, 1 hour's minimum age).

The bound on data files: after maintenance a raw table holds at most one data
file per partition (every partition here is far under the 128 MB target), so
the dated `lots` table has one file per UTC day its versions fall in and the
unpartitioned `items` table has one file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from pyiceberg.catalog import Catalog

from mozart_etl.config.models import TenantConfig
from mozart_etl.dbt.iceberg_source import local_relation, raw_dataset
from mozart_etl.load.catalog import open_catalog
from mozart_etl.load.commit import MAINTENANCE_PROPERTY
from mozart_etl.load.ledger import LEDGER_TABLE, read_ledger
from mozart_etl.load.versions import live_rows
from mozart_etl.maintenance.run import (
    REPORT_FOLDER,
    MaintenanceReport,
    maintain_tenant,
    sweep_orphans,
)
from mozart_etl.maintenance.settings import MaintenanceSettings
from mozart_etl.ops.sweep import referenced_files
from tests.helpers import seoul_day
from tests.maintenance import history
from tests.maintenance.history import (
    DAYS,
    captured,
    days,
    raw_content,
    snapshot_clock,
    tenant_at,
    write_tenant,
)

TABLES = ("lots", "items")
KEYS = {"lots": ["lot_id"], "items": ["item_id"]}


@dataclass
class Maintained:
    tenant: TenantConfig
    catalog: Catalog
    settings: MaintenanceSettings
    now: datetime
    files_before: dict[str, int]
    snapshots_before: dict[str, int]
    partitions: dict[str, int]
    content_before: dict[str, pa.Table]
    ledger_before: pa.Table
    report: MaintenanceReport


def _files(catalog: Catalog, tenant: TenantConfig, name: str) -> list[str]:
    table = catalog.load_table((tenant.raw_namespace, name))
    return table.inspect.files().column("file_path").to_pylist()


def _partitions(catalog: Catalog, tenant: TenantConfig, name: str) -> int:
    table = catalog.load_table((tenant.raw_namespace, name))
    files = table.inspect.files()
    if "partition" not in files.column_names or not table.spec().fields:
        return 1
    return len({str(p) for p in files.column("partition").to_pylist()})


@pytest.fixture(scope="module")
def maintained(tmp_path_factory: pytest.TempPathFactory) -> Maintained:
    root = tmp_path_factory.mktemp("sixty")
    tenant = tenant_at(write_tenant(root))
    catalog = open_catalog(tenant)
    with pytest.MonkeyPatch.context() as patch, snapshot_clock(patch) as clock:
        for index, day in enumerate(days()):
            clock[0] = captured(day)
            history.load_day(catalog, tenant, index, day)
    before = {name: catalog.load_table((tenant.raw_namespace, name)) for name in TABLES}
    settings = MaintenanceSettings()
    now = datetime.now(UTC)
    state = Maintained(
        tenant=tenant,
        catalog=catalog,
        settings=settings,
        now=now,
        files_before={n: len(_files(catalog, tenant, n)) for n in TABLES},
        snapshots_before={n: len(t.metadata.snapshots) for n, t in before.items()},
        partitions={n: _partitions(catalog, tenant, n) for n in TABLES},
        content_before={n: raw_content(catalog, tenant, n) for n in TABLES},
        ledger_before=read_ledger(catalog, tenant),
        report=maintain_tenant(tenant, settings, now=now),
    )
    print(  # the figures the report quotes (pytest -s)
        "maintenance of 60 days:",
        {n: (state.files_before[n], len(_files(catalog, tenant, n))) for n in TABLES},
        {n: state.snapshots_before[n] for n in TABLES},
        [(e.table, e.snapshots_after) for e in state.report.expiry],
        state.report.ledger,
    )
    return state


def test_sixty_days_leave_many_small_files(maintained: Maintained) -> None:
    """The history makes the problem: a file per partition a load touches."""
    # lots: each day's versions fall in two UTC days, and each UTC day gets
    # files from two loads (its own and the late row of the next day's sync).
    assert maintained.files_before == {"lots": 2 * DAYS, "items": DAYS}
    assert maintained.snapshots_before == {"lots": DAYS, "items": DAYS}


def test_files_per_table_at_most_one_per_partition(maintained: Maintained) -> None:
    tenant, catalog = maintained.tenant, maintained.catalog
    after = {name: len(_files(catalog, tenant, name)) for name in TABLES}
    assert maintained.partitions == {"lots": DAYS + 1, "items": 1}
    assert after == maintained.partitions  # the stated bound, reached
    by_table = {c.table: c for c in maintained.report.compaction}
    assert by_table["lots"].outcome == "compacted"
    assert by_table["lots"].files_before == 2 * DAYS
    assert by_table["lots"].files_after == DAYS + 1
    assert by_table["items"].files_after == 1
    # Only partitions with two files or more were rewritten: the first and
    # last UTC days hold one file each and keep it.
    assert by_table["lots"].files_rewritten == 2 * DAYS - 2
    assert by_table["lots"].files_written == DAYS - 1
    snapshot = catalog.load_table((tenant.raw_namespace, "lots")).current_snapshot()
    assert snapshot is not None and snapshot.summary is not None
    assert snapshot.summary[MAINTENANCE_PROPERTY] == "compaction"


def test_every_version_and_as_of_read_unchanged(maintained: Maintained) -> None:
    tenant, catalog = maintained.tenant, maintained.catalog
    for name in TABLES:
        after = raw_content(catalog, tenant, name)
        before = maintained.content_before[name]
        assert after.num_rows == before.num_rows > 0
        assert after.equals(before), name  # every version, every column
        # What dbt reads of the compacted snapshot's files: DuckDB's reader (one
        # schema, local disk), and the plugin's dataset where that is not exact.
        raw = catalog.load_table((tenant.raw_namespace, name))
        dataset = raw_dataset(raw)
        assert dataset is not None
        with duckdb.connect() as con:
            relation = local_relation(con, raw)
            assert relation is not None
            reads = [relation.to_arrow_table(), dataset.to_table()]
        for read in reads:
            read = read.cast(before.schema)  # large_string → string
            assert read.sort_by([(c, "ascending") for c in read.column_names]).equals(
                before
            ), name
    # As dbt's staging reads raw: each key's version at the end of a day.
    lots_before = maintained.content_before["lots"]
    lots_after = raw_content(catalog, tenant, "lots")
    for index in (0, 1, 17, 30, 58, DAYS - 1):
        end = seoul_day(days()[index]).end
        before = history.as_of(lots_before, KEYS["lots"], end)
        assert before.num_rows > 0
        assert history.as_of(lots_after, KEYS["lots"], end).equals(before)
    # Day 30 sees lot L30-0 still running; day 31 sees it done.
    day_30 = history.as_of(lots_after, ["lot_id"], seoul_day(days()[30]).end)
    day_31 = history.as_of(lots_after, ["lot_id"], seoul_day(days()[31]).end)
    status = {
        row["lot_id"]: row["status"] for row in day_30.to_pylist() if row["lot_id"]
    }
    assert status["L30-0"] == "RUN"
    assert {r["lot_id"]: r["status"] for r in day_31.to_pylist()}["L30-0"] == "DONE"


def test_snapshots_within_retention(maintained: Maintained) -> None:
    tenant, catalog = maintained.tenant, maintained.catalog
    keep_after = maintained.now - maintained.settings.retention
    # The days whose sync ran within the retention keep their snapshots.
    recent = sum(1 for day in days() if captured(day) >= keep_after)
    assert 5 <= recent <= 8
    for name in TABLES:
        table = catalog.load_table((tenant.raw_namespace, name))
        current = table.current_snapshot()
        assert current is not None
        stamps = {
            s.snapshot_id: datetime.fromtimestamp(s.timestamp_ms / 1000, UTC)
            for s in table.metadata.snapshots
        }
        old = [i for i, at in stamps.items() if at < keep_after]
        assert old == [], f"{name}: snapshots older than the retention remain"
        assert len(stamps) == recent + 1  # + the compaction's
        assert current.snapshot_id in stamps


def test_ledger_compacted_and_unchanged(maintained: Maintained) -> None:
    tenant, catalog = maintained.tenant, maintained.catalog
    ledger = catalog.load_table((tenant.raw_namespace, LEDGER_TABLE))
    assert maintained.report.ledger is not None
    assert maintained.report.ledger.files_before > 1
    assert len(ledger.inspect.files()) == 1
    after = read_ledger(catalog, tenant)
    assert after.num_rows == maintained.ledger_before.num_rows == DAYS
    order = [("table_name", "ascending"), ("extract_id", "ascending")]
    assert after.sort_by(order).equals(maintained.ledger_before.sort_by(order))


def test_report_in_the_lake(maintained: Maintained) -> None:
    root = Path(maintained.tenant.storage.lake_root) / maintained.tenant.lake_prefix
    (path,) = (root / REPORT_FOLDER).glob("*.json")
    saved = MaintenanceReport.model_validate_json(path.read_text())
    assert saved.compaction == maintained.report.compaction
    assert [e.snapshots_after for e in saved.expiry] == [
        e.snapshots_after for e in maintained.report.expiry
    ]


def test_sweep_removes_the_replaced_files_once_unreferenced(
    maintained: Maintained,
) -> None:
    """The files compaction replaced stay while a kept snapshot references
    them; those of expired snapshots go once older than the grace period."""
    tenant, catalog = maintained.tenant, maintained.catalog
    later = datetime.now(UTC) + timedelta(days=2)  # every file past its grace
    swept = sweep_orphans(tenant, maintained.settings, now=later)
    assert swept.iceberg_files, "nothing was swept"
    for name in TABLES:
        table = catalog.load_table((tenant.raw_namespace, name))
        data = Path(table.location().removeprefix("file://")) / "data"
        on_disk = {str(p) for p in data.rglob("*.parquet")}
        assert on_disk == {p for p in referenced_files(table) if p.endswith(".parquet")}
        assert raw_content(catalog, tenant, name).equals(
            maintained.content_before[name]
        )


def test_a_second_run_finds_nothing_and_loads_go_on(maintained: Maintained) -> None:
    tenant, catalog = maintained.tenant, maintained.catalog
    again = maintain_tenant(tenant, maintained.settings)
    assert [c.outcome for c in again.compaction] == ["nothing to do"] * 2
    # The next day loads on the compacted table as on any other.
    index = DAYS
    day = days(DAYS + 1)[index]
    history.load_day(catalog, tenant, index, day)
    items = catalog.load_table((tenant.raw_namespace, "items"))
    live = live_rows(items, tenant.table("items")).select(["item_id", "name", "price"])
    expected = pa.Table.from_pylist(history.item_rows(index), schema=live.schema)
    assert live.sort_by("item_id").equals(expected.sort_by("item_id"))
    lots = raw_content(catalog, tenant, "lots")
    added = lots.num_rows - maintained.content_before["lots"].num_rows
    assert added == len(history.lot_rows(index, day)) - 1  # the re-read is held
