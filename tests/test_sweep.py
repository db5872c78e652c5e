"""`mozart sweep`: what killed attempts leave is removed, what a reader uses is not."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mozart_etl.core.lake import MANIFEST, ExtractManifest, Lake
from mozart_etl.load.catalog import open_catalog
from mozart_etl.load.iceberg import load_partition
from mozart_etl.ops.cli import main
from mozart_etl.ops.sweep import sweep_tenant
from tests.helpers import make_tenant, seoul_day, table_dict, write_extract

DAY = date(2026, 11, 15)
COLUMNS = [
    {"name": "id", "type": "bigint", "nullable": False},
    {"name": "updated_at", "type": "timestamptz", "nullable": False},
]
ROWS = [{"id": i, "updated_at": seoul_day(DAY).start} for i in range(5)]


def _age(path: Path, hours: float) -> None:
    """Set every file under `path` to `hours` old."""
    stamp = (datetime.now(UTC) - timedelta(hours=hours)).timestamp()
    for file in [path, *path.rglob("*")]:
        os.utime(file, (stamp, stamp))


def _dead_copy(manifest: ExtractManifest, extract_id: str, hours: float) -> Path:
    """An attempt killed before its manifest: the same parts, no manifest."""
    folder = Path(manifest.folder)
    dead = folder.parent / f"extract={extract_id}"
    shutil.copytree(folder, dead)
    (dead / MANIFEST).unlink()
    _age(dead, hours)
    return dead


def test_sweep_removes_old_dead_attempts_only(tmp_path: Path) -> None:
    tenant = make_tenant(tmp_path, [table_dict("lots", COLUMNS)])
    table = tenant.table("lots")
    manifest = write_extract(tenant, table, ROWS, seoul_day(DAY))
    _age(Path(manifest.folder), 48)  # live and old: kept for its manifest
    catalog = open_catalog(tenant)
    rows = pq.read_table(manifest.files[0].path)
    load_partition(catalog, tenant, table, manifest, rows, run_id="r1")
    old = _dead_copy(manifest, "20261115T010000000000Z-dead0001", hours=30)
    young = _dead_copy(manifest, "20261115T020000000000Z-dead0002", hours=2)
    # A commit killed after writing its data file: no snapshot lists it.
    raw = catalog.load_table((tenant.raw_namespace, "lots"))
    data = Path(raw.location().removeprefix("file://")) / "data"
    stray = data / "00000-0-killed.parquet"
    shutil.copyfile(manifest.files[0].path, stray)
    _age(stray, 30)

    planned = sweep_tenant(tenant, dry_run=True)
    assert planned.lake_folders == [str(old)]
    assert planned.iceberg_files == {"lots": [str(stray)]}
    assert old.exists() and stray.exists()  # a dry run deletes nothing

    done = sweep_tenant(tenant)  # default grace: a day

    assert done.lake_folders == [str(old)] and done.lake_files == 1
    assert not old.exists() and not stray.exists()
    assert young.exists()  # may still be writing
    assert Path(manifest.folder, MANIFEST).exists()
    scanned = catalog.load_table((tenant.raw_namespace, "lots")).scan().to_arrow()
    assert sorted(scanned["id"].to_pylist()) == list(range(5))


def test_snapshot_run_folders_listed_by_a_manifest_are_kept(tmp_path: Path) -> None:
    """A `snapshot` table's run folders hold no manifest of their own: the day's
    manifest lists their files."""
    tenant = make_tenant(tmp_path, [table_dict("lots", COLUMNS)])
    lake = Lake(tenant)
    manifest = write_extract(tenant, tenant.table("lots"), ROWS, seoul_day(DAY))
    run_folder = Path(lake.run_folder("lots", "plan_run_id", "PR-1", "x1"))
    run_folder.mkdir(parents=True)
    moved = run_folder / "part-00000.parquet"
    shutil.move(manifest.files[0].path, moved)
    listed = manifest.model_copy(
        update={"files": [manifest.files[0].model_copy(update={"path": str(moved)})]}
    )
    lake.write_manifest(listed)
    _age(Path(lake.root), 48)

    assert sweep_tenant(tenant).lake_folders == []
    assert moved.exists()


def test_sweep_command_lists_what_it_would_remove(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tenants = tmp_path / "tenants"
    tenant = make_tenant(tmp_path, [table_dict("lots", COLUMNS)])
    manifest = write_extract(tenant, tenant.table("lots"), ROWS, seoul_day(DAY))
    dead = _dead_copy(manifest, "20261115T010000000000Z-dead0001", hours=30)
    folder = tenants / tenant.tenant_id
    folder.mkdir(parents=True)
    (folder / "tenant.yaml").write_text(
        tenant.model_dump_json(exclude_none=True), encoding="utf-8"
    )

    code = main(["--tenants-dir", str(tenants), "sweep", tenant.tenant_id, "--dry-run"])

    assert code == 0
    out = capsys.readouterr().out
    assert f"tenant {tenant.tenant_id}: would remove 1 files" in out
    assert f"extract folder {dead}" in out
    assert dead.exists()
