"""The transform stage on real files and a real PyIceberg SQL catalog: accepted
rows → the tenant's function → Parquet + manifest → raw; reruns, schema checks,
failures that name the function and the batch."""

from __future__ import annotations

import shutil
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mozart_etl.config.models import TenantConfig
from mozart_etl.core.errors import TransformFailed
from mozart_etl.core.lake import ExtractManifest, Lake
from mozart_etl.extract.types import arrow_schema
from mozart_etl.load.catalog import open_catalog
from mozart_etl.load.ledger import load_and_record
from mozart_etl.transform.importer import load_function
from mozart_etl.transform.stage import (
    TransformManifest,
    read_manifest,
    read_output,
    run_transform,
)
from mozart_etl.validate.validator import ValidationReport, validate_extract
from tests.helpers import make_tenant, seoul_day, table_dict, utc, write_extract

FIXTURE = Path(__file__).with_name("transforms_fixture.py")
DAY = seoul_day(date(2026, 11, 15))
RUN_ID = "manual__2026-11-15T15:00:00+00:00"
RUN_FOLDER = "run=manual__2026-11-15T15_00_00_00_00"
COLUMNS = [
    {"name": "event_id", "type": "bigint", "nullable": False},
    {"name": "equipment_id", "type": "string", "nullable": False},
    {"name": "value", "type": "double"},
    {"name": "updated_at", "type": "timestamptz", "nullable": False},
]
AT = utc(2026, 11, 15, 1, 30)
ROWS = [
    {"event_id": 1, "equipment_id": " cmp-01", "value": 1.5, "updated_at": AT},
    {"event_id": 2, "equipment_id": "CMP-02 ", "value": 2.0, "updated_at": AT},
    {"event_id": 3, "equipment_id": "dep-01", "value": -1.0, "updated_at": AT},
    {"event_id": 4, "equipment_id": "Dep-02", "value": None, "updated_at": AT},
    {"event_id": 5, "equipment_id": "cln-01", "value": 0.0, "updated_at": AT},
    {"event_id": 6, "equipment_id": "CLN-02", "value": 9.25, "updated_at": AT},
]
ACCEPTED_IDS = [1, 2, 4, 5, 6]  # event 3 breaks `value >= 0`: quarantined


def _setup(tmp_path: Path, function: str) -> tuple[TenantConfig, Path]:
    """Tenant `acme` with table `events` transformed by `transforms:<function>`."""
    folder = tmp_path / "tenants" / "acme"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURE, folder / "transforms.py")
    events = table_dict(
        "events",
        COLUMNS,
        primary_key=["event_id"],
        mode="merge",
        cursor="updated_at",
        rules=[{"type": "range", "column": "value", "min": 0, "max_failures": 1}],
        transform=f"transforms:{function}",
    )
    return make_tenant(tmp_path, [events]), folder


def _validated(tenant: TenantConfig) -> tuple[ExtractManifest, ValidationReport]:
    table = tenant.table("events")
    extract = write_extract(tenant, table, ROWS, DAY, initial=True)
    return extract, validate_extract(tenant, table, extract)


def _transform(
    tenant: TenantConfig, folder: Path, report: ValidationReport, **kwargs: Any
) -> TransformManifest:
    options: dict[str, Any] = {"run_id": RUN_ID, "batch_rows": 2, **kwargs}
    return run_transform(tenant, tenant.table("events"), folder, report, **options)


def _stage_rows(manifest: TransformManifest) -> list[dict[str, Any]]:
    table = pa.concat_tables(pq.read_table(f.path) for f in manifest.files)
    return sorted(table.to_pylist(), key=lambda row: row["event_id"])


def _ids(rows: list[dict[str, Any]]) -> list[tuple[int, str]]:
    return [(row["event_id"], row["equipment_id"]) for row in rows]


def _listing(folder: str) -> list[str]:
    return sorted(path.name for path in Path(folder).iterdir())


def test_output_lands_in_the_transform_stage_and_in_raw(tmp_path: Path) -> None:
    tenant, folder = _setup(tmp_path, "normalise")
    extract, report = _validated(tenant)
    assert report.accepted == 5 and report.quarantined == 1

    manifest = _transform(tenant, folder, report)

    assert manifest.folder == (
        f"{tmp_path}/lake/acme/transform/events/day=2026-11-15/{RUN_FOLDER}"
    )
    assert (manifest.rows_in, manifest.rows) == (5, 5)
    assert manifest.transform == "transforms:normalise"
    assert manifest.input_path == report.accepted_path
    assert manifest.extract_id == extract.extract_id
    assert _listing(manifest.folder) == ["_manifest.json", "part-00000.parquet"]
    assert read_manifest(Lake(tenant), manifest.folder) == manifest
    assert pq.read_schema(manifest.files[0].path) == arrow_schema(
        tenant.table("events")
    )
    expected = [
        {"event_id": 1, "equipment_id": "CMP-01", "value": 1.5, "updated_at": AT},
        {"event_id": 2, "equipment_id": "CMP-02", "value": 2.0, "updated_at": AT},
        {"event_id": 4, "equipment_id": "DEP-02", "value": None, "updated_at": AT},
        {"event_id": 5, "equipment_id": "CLN-01", "value": 0.0, "updated_at": AT},
        {"event_id": 6, "equipment_id": "CLN-02", "value": 9.25, "updated_at": AT},
    ]
    assert _stage_rows(manifest) == expected

    # The load writes the transform's rows (as run_load does with a transform).
    lake = Lake(tenant)
    rows = read_output(lake, read_manifest(lake, manifest.folder))
    catalog = open_catalog(tenant)
    result, record = load_and_record(
        catalog,
        tenant,
        tenant.table("events"),
        extract,
        rows,
        run_id=RUN_ID,
        quarantined=report.quarantined,
    )
    assert (result.rows_loaded, result.rows_in_table) == (5, 5)
    raw = catalog.load_table(("acme_raw", "events")).scan().to_arrow()
    loaded = sorted(raw.to_pylist(), key=lambda row: row["event_id"])
    assert [{k: row[k] for k in expected[0]} for row in loaded] == expected
    assert {row["_mozart_run_id"] for row in loaded} == {RUN_ID}
    assert record.rows_loaded == 5


def test_a_rerun_replaces_its_partition(tmp_path: Path) -> None:
    tenant, folder = _setup(tmp_path, "normalise")
    _, report = _validated(tenant)
    first = _transform(tenant, folder, report, rows_per_file=2)
    assert _listing(first.folder) == [
        "_manifest.json",
        "part-00000.parquet",
        "part-00001.parquet",
        "part-00002.parquet",
    ]
    other_run = _transform(tenant, folder, report, run_id="scheduled__2026-11-16")

    # The tenant fixes its function; the same run's transform is run again.
    tenant, folder = _setup(tmp_path, "lower")
    second = _transform(tenant, folder, report, rows_per_file=10)

    assert second.folder == first.folder
    assert _listing(second.folder) == ["_manifest.json", "part-00000.parquet"]
    assert read_manifest(Lake(tenant), second.folder) == second
    assert _ids(_stage_rows(second)) == [
        (1, "cmp-01"),
        (2, "cmp-02"),
        (4, "dep-02"),
        (5, "cln-01"),
        (6, "cln-02"),
    ]
    # Another run's output of the same day is its own, and stays.
    assert other_run.folder.endswith("/day=2026-11-15/run=scheduled__2026-11-16")
    assert _ids(_stage_rows(other_run))[0] == (1, "CMP-01")


def test_a_failing_transform_names_function_and_batch(tmp_path: Path) -> None:
    tenant, folder = _setup(tmp_path, "normalise")
    _, report = _validated(tenant)
    good = _transform(tenant, folder, report)
    tenant, folder = _setup(tmp_path, "explode")

    with pytest.raises(TransformFailed) as caught:
        _transform(tenant, folder, report)

    # Batches of 2 accepted rows: [1, 2], then [4] (event 3 was quarantined).
    assert str(caught.value) == (
        "[tenant=acme table=events] transform transforms:explode: raised on input "
        "batch 1 (rows 2..2): ValueError: vendor status 0x7f cannot be decoded"
    )
    assert caught.value.terminal
    assert isinstance(caught.value.__cause__, ValueError)
    # The run's earlier output is gone and nothing complete replaced it: the
    # load cannot pick up stale rows.
    with pytest.raises(FileNotFoundError, match="no transform manifest"):
        read_manifest(Lake(tenant), good.folder)


@pytest.mark.parametrize(
    ("function", "column", "message"),
    [
        (
            "wrong_type",
            "event_id",
            "output batch 0: column 'event_id' is string, expected int64",
        ),
        (
            "drops_column",
            None,
            "output batch 0 has columns ['event_id', 'equipment_id', 'updated_at']: "
            "missing ['value'], unexpected [] "
            "(expected ['event_id', 'equipment_id', 'value', 'updated_at'])",
        ),
        (
            "null_ids",
            "equipment_id",
            "output batch 0: column 'equipment_id' is not nullable but holds 2 null(s)",
        ),
        (
            "returns_table",
            None,
            "must return an iterator of pyarrow.RecordBatch (e.g. `yield` each "
            "batch), not Table",
        ),
        (
            "keys_only",
            None,
            "its output schema lacks ['updated_at'], which the load needs "
            "(primary key and cursor)",
        ),
        ("missing", None, "transforms.py defines no function 'missing'"),
    ],
)
def test_output_that_does_not_fit_is_rejected_before_load(
    tmp_path: Path, function: str, column: str | None, message: str
) -> None:
    tenant, folder = _setup(tmp_path, function)
    _, report = _validated(tenant)
    with pytest.raises(TransformFailed) as caught:
        _transform(tenant, folder, report)
    assert caught.value.column == column
    assert caught.value.table == "events"
    where = "tenant=acme table=events" + (f" column={column}" if column else "")
    assert str(caught.value).startswith(f"[{where}] transform transforms:{function}: ")
    assert message in str(caught.value)


def test_a_declared_output_schema_replaces_the_declared_columns(
    tmp_path: Path,
) -> None:
    tenant, folder = _setup(tmp_path, "with_group")
    _, report = _validated(tenant)
    manifest = _transform(tenant, folder, report)
    schema = pq.read_schema(manifest.files[0].path)
    assert schema.names == [
        "event_id",
        "equipment_group",
        "equipment_id",
        "value",
        "updated_at",
    ]
    assert manifest.columns["equipment_group"] == "string"
    rows = _stage_rows(manifest)
    assert [(r["event_id"], r["equipment_group"], r["equipment_id"]) for r in rows] == [
        (1, "CMP", "CMP-01"),
        (2, "CMP", "CMP-02"),
        (4, "DEP", "DEP-02"),
        (5, "CLN", "CLN-01"),
        (6, "CLN", "CLN-02"),
    ]


def test_tenants_transform_modules_never_collide(tmp_path: Path) -> None:
    acme, acme_folder = _setup(tmp_path / "a", "normalise")
    beta_folder = tmp_path / "b" / "tenants" / "beta"
    beta_folder.mkdir(parents=True)
    (beta_folder / "transforms.py").write_text(
        "def normalise(batches):\n    return iter(())\n"
    )
    beta = TenantConfig.model_validate(
        {**acme.model_dump(mode="json", by_alias=True), "tenant_id": "beta"}
    )
    table = acme.table("events")
    first = load_function(acme_folder, acme, table)
    second = load_function(beta_folder, beta, beta.table("events"))
    assert first.__module__ == "mozart_tenant_transforms.acme.transforms"
    assert second.__module__ == "mozart_tenant_transforms.beta.transforms"
    assert list(second(iter([]))) == []
    assert sys.modules[first.__module__].__file__ == str(acme_folder / "transforms.py")
    assert "transforms" not in sys.modules  # no bare name that shadows a library


def test_an_empty_day_gives_one_empty_file(tmp_path: Path) -> None:
    tenant, folder = _setup(tmp_path, "normalise")
    table = tenant.table("events")
    extract = write_extract(tenant, table, [], DAY, initial=True)
    report = validate_extract(tenant, table, extract)
    manifest = _transform(tenant, folder, report)
    assert (manifest.rows_in, manifest.rows, len(manifest.files)) == (0, 0, 1)
    data = read_output(Lake(tenant), manifest)
    assert data.num_rows == 0
    assert data.schema == arrow_schema(table)
