"""7. The lake's disk fills up while an extract writes it.

The lake is a real 1 MiB tmpfs (the tests run as root here); the source then
grows past it. The extract fails with ENOSPC named, leaves no manifest, and
the previous extract and raw table stay current; with room again, the retry
loads everything.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from mozart_etl.core.errors import MozartError
from mozart_etl.core.lake import Lake, latest_manifest
from mozart_etl.load.catalog import open_catalog
from tests.helpers import table_dict, tenant_dict
from tests.reliability.chaos import Recorder, lake_orphans, raw_figures
from tests.reliability.pipeline import run_table, tenant_of, write_tenant

DAY = date(2026, 11, 15)
COLUMNS = [
    {"name": "id", "type": "bigint", "nullable": False},
    {"name": "payload", "type": "string"},
]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "lake"
    mount.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True
    )
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def _fill_source(path: Path, first: int, last: int) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS blobs (id INTEGER, payload TEXT)")
        conn.executemany(
            "INSERT INTO blobs VALUES (?, ?)",
            [(i, os.urandom(512).hex()) for i in range(first, last + 1)],
        )
    conn.close()


def _remount_larger(mount: Path) -> None:
    subprocess.run(["mount", "-o", "remount,size=16m", str(mount)], check=True)


def test_a_full_lake_fails_clearly_and_keeps_the_previous_data(
    tmp_path: Path, small_disk: Path, chaos: Recorder
) -> None:
    chaos.name("7. lake disk full (1 MiB tmpfs) mid-extract, room again, retry")
    source = tmp_path / "source.sqlite"
    _fill_source(source, 1, 100)  # ~100 KiB of incompressible text
    data = tenant_dict(tmp_path, [table_dict("blobs", COLUMNS)])
    data["source"] = {"type": "sqlite", "database": str(source)}
    data["storage"]["lake_root"] = str(small_disk)
    folder = write_tenant(tmp_path / "tenants", data)
    tenant = tenant_of(folder)
    first = run_table(folder, "blobs", DAY, "run-1")
    raw = open_catalog(tenant).load_table((tenant.raw_namespace, "blobs"))
    snapshot = raw.current_snapshot().snapshot_id

    _fill_source(source, 101, 3000)  # ~3 MiB: more than the disk holds
    with pytest.raises((OSError, MozartError)) as caught:
        run_table(folder, "blobs", DAY, "run-2")

    error = str(caught.value)
    assert "No space left on device" in error, error
    assert "tenant=acme table=blobs" in error, error
    lake = Lake(tenant)
    assert (
        latest_manifest(lake, "blobs", DAY).extract_id
        == (first["extract"]["extract_id"])
    )
    raw = open_catalog(tenant).load_table((tenant.raw_namespace, "blobs"))
    assert raw.current_snapshot().snapshot_id == snapshot
    orphans = lake_orphans(Path(lake.day_folder("blobs", DAY)))

    _remount_larger(small_disk)
    retry = run_table(folder, "blobs", DAY, "run-2")

    assert retry["reconcile"]["source_rows"] == retry["reconcile"]["raw_rows"] == 3000
    lost, dups = raw_figures(
        open_catalog(tenant),
        (tenant.raw_namespace, "blobs"),
        ["id"],
        [(i,) for i in range(1, 3001)],
    )
    chaos.record(
        lost=lost,
        dups=dups,
        orphans=orphans,
        cause=f"{type(caught.value).__name__}: No space left on device",
    )
    assert (lost, dups) == (0, 0)
