"""2. SIGKILL between the data files and the Iceberg commit; 4. commit conflicts.

The crash is real: a child process runs the load with the catalog's
`commit_table` replaced by SIGKILL to itself, so the data and manifest files
are on disk but no snapshot points at them.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import CommitFailedException

from mozart_etl.config.models import TenantConfig
from mozart_etl.core.errors import LoadError
from mozart_etl.load.catalog import open_catalog
from mozart_etl.load.iceberg import AUDIT_COLUMNS, load_partition
from mozart_etl.load.versions import DELETED, VALID_FROM, live_rows
from mozart_etl.ops.sweep import sweep_tenant
from tests.helpers import content_hash, make_tenant, seoul_day, table_dict, utc
from tests.helpers import write_extract as write_lake_extract
from tests.reliability.chaos import Recorder, iceberg_orphans, raw_figures

ROOT = Path(__file__).resolve().parents[2]
DAY = date(2026, 11, 15)
COLUMNS = [
    {"name": "lot_id", "type": "string", "nullable": False},
    {"name": "step_seq", "type": "int", "nullable": False},
    {"name": "qty", "type": "bigint"},
    {"name": "updated_at", "type": "timestamptz", "nullable": False},
]

# The child: the same tenant and rows, and a commit that never happens.
CHILD = """
import os, signal, sys
from pathlib import Path
from pyiceberg.catalog.sql import SqlCatalog

def _die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

SqlCatalog.commit_table = _die
from tests.reliability.test_load_crash import load_version
load_version(Path(sys.argv[1]), sys.argv[2], version=2, run_id="crashed")
"""


def tenant_for(home: Path, mode: str) -> TenantConfig:
    extra = {"mode": mode}
    if mode != "full_refresh":
        extra["cursor"] = "updated_at"
    lots = table_dict("lots", COLUMNS, primary_key=["lot_id", "step_seq"], **extra)
    return make_tenant(home, [lots])


def rows_of(version: int) -> list[dict]:
    """Every key's `version`: later versions are updated later (a new cursor)."""
    start = seoul_day(DAY).start + timedelta(hours=version - 1)
    return [
        {
            "lot_id": f"L{i % 7}",
            "step_seq": i,
            "qty": i * version,
            "updated_at": start.replace(minute=i % 60),
        }
        for i in range(50)
    ]


def _live_qty(catalog: Catalog, tenant: TenantConfig) -> dict[tuple, int]:
    """Raw's live rows (each key's latest version): qty by key."""
    raw = catalog.load_table(("acme_raw", "lots"))
    live = live_rows(raw, tenant.table("lots")).to_pylist()
    return {(row["lot_id"], row["step_seq"]): row["qty"] for row in live}


def load_version(home: Path, mode: str, *, version: int, run_id: str) -> int | None:
    tenant = tenant_for(home, mode)
    table = tenant.table("lots")
    rows = rows_of(version)
    manifest = write_lake_extract(
        tenant, table, rows, seoul_day(DAY), extract_id=f"x-{run_id}"
    )
    import pyarrow.parquet as pq

    data = pq.read_table(manifest.files[0].path)
    result = load_partition(
        open_catalog(tenant), tenant, table, manifest, data, run_id=run_id
    )
    return result.snapshot_id


def _state(catalog: Catalog) -> tuple[int, str, int]:
    table = catalog.load_table(("acme_raw", "lots"))
    data = table.scan().to_arrow()
    return (
        table.current_snapshot().snapshot_id,
        content_hash(data, exclude=AUDIT_COLUMNS),
        data.num_rows,
    )


KEY = ["lot_id", "step_seq"]


def _source_keys() -> list[tuple]:
    return [(row["lot_id"], row["step_seq"]) for row in rows_of(1)]


def _data_files(home: Path) -> set[Path]:
    return set((home / "iceberg").rglob("*.parquet"))


@pytest.mark.parametrize("mode", ["full_refresh", "incremental", "merge"])
def test_crash_before_commit_keeps_the_previous_snapshot(
    tmp_path: Path, mode: str, chaos: Recorder
) -> None:
    chaos.name(f"2. load SIGKILL between data files and commit ({mode}), rerun")
    snapshot = load_version(tmp_path, mode, version=1, run_id="good")
    catalog = open_catalog(tenant_for(tmp_path, mode))
    before = _state(catalog)
    files_before = _data_files(tmp_path)
    assert before[0] == snapshot and before[2] == 50

    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path), mode],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert child.returncode == -signal.SIGKILL, child.stderr
    # The crashed load wrote its data files; no snapshot references them.
    assert _data_files(tmp_path) - files_before
    assert _state(open_catalog(tenant_for(tmp_path, mode))) == before

    # The next run succeeds: the new version of every key, once, over the old.
    load_version(tmp_path, mode, version=2, run_id="rerun")
    after = _state(open_catalog(tenant_for(tmp_path, mode)))
    assert after[0] != before[0]
    assert after[2] == 100
    rows = catalog.load_table(("acme_raw", "lots")).scan().to_arrow()
    assert sorted(rows.column("qty").to_pylist()) == sorted(
        [*range(50), *(i * 2 for i in range(50))]
    )
    live = _live_qty(catalog, tenant_for(tmp_path, mode))
    assert live == {(r["lot_id"], r["step_seq"]): r["qty"] for r in rows_of(2)}
    lost, dups = raw_figures(catalog, ("acme_raw", "lots"), KEY, _source_keys())
    left = iceberg_orphans(catalog, ("acme_raw", "lots"))
    assert left >= 1  # the crashed commit's data files, unreferenced

    # `mozart sweep` removes them and nothing a snapshot references.
    tenant = tenant_for(tmp_path, mode)
    sweep_tenant(tenant, grace=timedelta(0))
    assert iceberg_orphans(catalog, ("acme_raw", "lots")) == 0
    assert _state(open_catalog(tenant)) == after
    chaos.record(
        lost=lost, dups=dups, orphans=0, cause=f"{left} dead files swept by sweep"
    )
    assert (lost, dups) == (0, 0)


def test_a_conflicting_writer_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chaos: Recorder
) -> None:
    chaos.name("4a. another writer commits first (merge): refused clearly, retry lands")
    """Another writer commits between our read of the table and our commit: the
    versions we computed against the older snapshot are not re-applied on the
    new one (the load is refused); the task's retry lands, both writes kept."""
    import pyarrow as pa
    from pyiceberg.catalog.sql import SqlCatalog

    tenant = tenant_for(tmp_path, "merge")
    load_version(tmp_path, "merge", version=1, run_id="first")
    original = SqlCatalog.commit_table
    raced: list[int] = []

    def racing(self: SqlCatalog, *args: object) -> object:
        if not raced:
            raced.append(1)
            other = open_catalog(tenant).load_table(("acme_raw", "lots"))
            row = {
                "lot_id": "OTHER",
                "step_seq": 1,
                "qty": 7,
                "updated_at": utc(2026, 11, 15, 1),
                VALID_FROM: utc(2026, 11, 15, 1),
                DELETED: False,
                "_mozart_run_id": "other-writer",
                "_mozart_loaded_at": utc(2026, 11, 15, 2),
                "_mozart_partition": "2026-11-15",
            }
            other.append(pa.Table.from_pylist([row], schema=other.schema().as_arrow()))
        return original(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(SqlCatalog, "commit_table", racing)
    with pytest.raises(LoadError) as caught:
        load_version(tmp_path, "merge", version=2, run_id="ours")
    monkeypatch.undo()

    # PyIceberg's retry is refused: another writer committed meanwhile.
    assert raced and not caught.value.terminal
    assert "previous snapshot stays current" in str(caught.value)
    data = open_catalog(tenant).load_table(("acme_raw", "lots")).scan().to_arrow()
    assert data.num_rows == 51
    assert sorted(data.column("qty").to_pylist()) == sorted([7, *range(50)])

    # The task's retry merges on top of the other writer's snapshot.
    load_version(tmp_path, "merge", version=2, run_id="retry")
    catalog = open_catalog(tenant)
    data = catalog.load_table(("acme_raw", "lots")).scan().to_arrow()
    assert data.num_rows == 101  # both versions of every key, and the other's
    qty = _live_qty(catalog, tenant)
    assert qty.pop(("OTHER", 1)) == 7
    assert sorted(qty.values()) == [i * 2 for i in range(50)]
    lost, dups = raw_figures(catalog, ("acme_raw", "lots"), KEY, _source_keys())
    chaos.record(lost=lost, dups=dups, cause=type(caught.value).__name__)
    assert (lost, dups) == (0, 0)


def test_commit_conflicts_past_the_retries_fail_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chaos: Recorder
) -> None:
    chaos.name("4b. commit conflicts past PyIceberg's retries: clear error, raw kept")
    tenant = tenant_for(tmp_path, "incremental")
    load_version(tmp_path, "incremental", version=1, run_id="first")
    before = _state(open_catalog(tenant))
    from pyiceberg.catalog.sql import SqlCatalog

    calls: list[int] = []

    def conflict(self: SqlCatalog, *args: object, **kwargs: object) -> None:
        calls.append(1)
        raise CommitFailedException("another writer committed first")

    monkeypatch.setattr(SqlCatalog, "commit_table", conflict)
    table = tenant.table("lots")
    catalog = open_catalog(tenant)
    manifest = write_lake_extract(
        tenant, table, rows_of(2), seoul_day(DAY), extract_id="x-conflict"
    )
    import pyarrow.parquet as pq

    with pytest.raises(LoadError) as caught:
        load_partition(
            catalog,
            tenant,
            table,
            manifest,
            pq.read_table(manifest.files[0].path),
            run_id="conflict",
        )

    assert not caught.value.terminal
    assert "previous snapshot stays current" in str(caught.value)
    assert "another writer committed first" in str(caught.value)
    assert len(calls) >= 2  # PyIceberg retried before giving up
    monkeypatch.undo()
    assert _state(open_catalog(tenant)) == before
    lost, dups = raw_figures(
        open_catalog(tenant), ("acme_raw", "lots"), KEY, _source_keys()
    )
    chaos.record(lost=lost, dups=dups, cause=type(caught.value).__name__)
    assert (lost, dups) == (0, 0)
