"""A crash mid-extract leaves no visible run; a rerun becomes current."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from mozart_etl.config.models import TenantConfig
from mozart_etl.extract.extractor import extract_table
from mozart_etl.lake import MANIFEST, ExtractManifest, Lake, latest_manifest
from tests.extract.test_extract_postgres import _connector, _run, _tenant
from tests.helpers import read_extract, seoul_day, table_dict, tenant_dict

DAY = date(2026, 11, 15)
ROWS = 200_000
COLUMNS = [
    {"name": "id", "type": "bigint"},
    {"name": "note", "type": "string"},
    {"name": "at", "type": "timestamptz"},
]
CHILD = """
import json, sys
from datetime import date
from mozart_etl.calendar import production_day
from mozart_etl.config.models import TenantConfig
from mozart_etl.extract.connectors import Credentials, connector_for
from mozart_etl.extract.extractor import extract_table

data, extract_id = json.loads(sys.argv[1]), sys.argv[2]
tenant = TenantConfig.model_validate(data)
connector = connector_for(tenant.source.type, Credentials.from_settings(tenant.source))
day = production_day(date(2026, 11, 15), "Asia/Seoul")
extract_table(
    tenant, tenant.table("big"), day, connector,
    extract_id=extract_id, rows_per_file=5_000,
)
"""


def _big_table(database: str) -> None:
    _run(database, "CREATE TABLE big (id bigint, note text, at timestamptz)")
    _run(
        database,
        f"INSERT INTO big SELECT g, 'note ' || g, now() "
        f"FROM generate_series(1, {ROWS}) AS g",
    )


def test_killed_extract_is_invisible_and_a_rerun_becomes_current(
    tmp_path: Path, postgres_db: str
) -> None:
    _big_table(postgres_db)
    big = table_dict("big", COLUMNS)
    tenant = _tenant(tmp_path, postgres_db, [big])
    lake = Lake(tenant)
    first = _extract(tenant, "20261115T01-a", postgres_db)

    crashed = Path(lake.extract_folder("big", DAY, "20261115T02-b"))
    data = tenant_dict(
        tmp_path, [big], source=tenant.source.model_dump(), params={"plant": "P1"}
    )
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(data), "20261115T02-b"],
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 30
        while len(list(crashed.glob("part-*.parquet"))) < 3:
            assert child.poll() is None, "the extract ended before it was killed"
            assert time.monotonic() < deadline
            time.sleep(0.005)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()

    assert child.returncode == -signal.SIGKILL
    assert len(list(crashed.glob("part-*.parquet"))) >= 3
    assert not (crashed / MANIFEST).exists()
    assert latest_manifest(lake, "big", DAY) == first

    rerun = _extract(tenant, "20261115T03-c", postgres_db)

    assert latest_manifest(lake, "big", DAY) == rerun
    assert rerun.rows == first.rows == ROWS
    assert read_extract(rerun).equals(read_extract(first))
    # The first extract is untouched: same files, same sizes.
    assert lake.read_manifest(f"{first.folder}/{MANIFEST}") == first
    assert [Path(f.path).stat().st_size for f in first.files] == [
        f.bytes for f in first.files
    ]


def _extract(tenant: TenantConfig, extract_id: str, database: str) -> ExtractManifest:
    return extract_table(
        tenant,
        tenant.table("big"),
        seoul_day(DAY),
        _connector(database),
        extract_id=extract_id,
    )
