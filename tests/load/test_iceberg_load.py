"""Load accepted rows into a real PyIceberg SQL catalog (SQLite) under tmp_path.

Every load goes through the real validator, so the rows are exactly what the
load stage receives in a run: the extract less its quarantined rows.

Raw keeps every version of a row (`load/versions.py`): the tests compare raw's
live rows (each key's latest version unless deleted) with the source's current
rows, and raw's versions with the versions the loads must have appended.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pyiceberg.catalog import Catalog
from pyiceberg.transforms import DayTransform
from pyiceberg.types import (
    BooleanType,
    DecimalType,
    LongType,
    StringType,
    TimestamptzType,
)

from mozart_etl.config.models import TableConfig, TenantConfig
from mozart_etl.core.lake import Lake
from mozart_etl.load import iceberg
from mozart_etl.load.catalog import open_catalog
from mozart_etl.load.iceberg import (
    AUDIT_COLUMNS,
    LoadResult,
    load_partition,
    raw_table_exists,
)
from mozart_etl.load.versions import DELETED, VALID_FROM, VERSION_COLUMNS, live_rows
from mozart_etl.validate.validator import accepted_rows, validate_extract
from tests.helpers import (
    Row,
    content_hash,
    make_tenant,
    seoul_day,
    table_dict,
    utc,
    write_extract,
)

D1, D2, D3 = date(2026, 11, 14), date(2026, 11, 15), date(2026, 11, 16)

LOT_COLUMNS = [
    {"name": "lot id", "type": "string", "nullable": False},
    {"name": "qty", "type": "bigint"},
    {"name": "amount", "type": "decimal", "precision": 12, "scale": 2},
    {"name": "status", "type": "string"},
    {"name": "updated_at", "type": "timestamptz", "nullable": False},
]


def _tenant(
    tmp_path: Path,
    mode: str,
    columns: list[dict[str, Any]] | None = None,
    **source: Any,
) -> TenantConfig:
    extra: dict[str, Any] = {"mode": mode}
    if mode != "full_refresh":
        extra["cursor"] = "updated_at"
    lots = table_dict("lots", columns or LOT_COLUMNS, primary_key=["lot id"], **extra)
    if not source:
        return make_tenant(tmp_path, [lots])
    sqlite = {"type": "sqlite", "database": str(tmp_path / "source.sqlite")}
    return make_tenant(tmp_path, [lots], source={**sqlite, **source})


def _lot(lot: str, qty: int | None, at: datetime, **values: Any) -> Row:
    return {
        "lot id": lot,
        "qty": qty,
        "amount": Decimal(qty or 0) / 4,
        "status": "RUN",
        "updated_at": at,
        **values,
    }


def _captured(day: date) -> datetime:
    """The instant the test's sync of `day` reads the source: an hour after
    the production day's end."""
    return seoul_day(day).end + timedelta(hours=1)


def _after(day: date) -> datetime:
    """When an undated change (a full-refresh row that changed, a deletion)
    begins: just after the sync of `day` read the source, which still saw the
    old state."""
    return _captured(day) + timedelta(microseconds=1)


def _load(
    catalog: Catalog,
    tenant: TenantConfig,
    rows: list[Row],
    day: date,
    *,
    run_id: str,
    initial: bool = False,
    table: TableConfig | None = None,
) -> LoadResult:
    """Extract (as Parquet, read at `captured(day)`), validate and load."""
    table = table or tenant.table("lots")
    extract_id = f"{day:%Y%m%d}-{run_id}"
    manifest = write_extract(
        tenant, table, rows, seoul_day(day), extract_id=extract_id, initial=initial
    ).model_copy(update={"captured_at": _captured(day)})
    report = validate_extract(tenant, table, manifest)
    accepted = accepted_rows(Lake(tenant), report)  # as the load task reads them
    return load_partition(catalog, tenant, table, manifest, accepted, run_id=run_id)


def _scan(catalog: Catalog, tenant: TenantConfig, name: str = "lots") -> pa.Table:
    return catalog.load_table((tenant.raw_namespace, name)).scan().to_arrow()


def _live(
    catalog: Catalog, tenant: TenantConfig, table: TableConfig | None = None
) -> list[Row]:
    """Raw's current rows (`live_rows`) as source rows: no version or audit
    columns, by key."""
    table = table or tenant.table("lots")
    raw = catalog.load_table((tenant.raw_namespace, table.name))
    live = live_rows(raw, table).drop_columns([*VERSION_COLUMNS, *AUDIT_COLUMNS])
    keys = list(table.primary_key)
    return sorted(live.to_pylist(), key=lambda row: [row[k] for k in keys])


def _versions(
    catalog: Catalog, tenant: TenantConfig, table: TableConfig | None = None
) -> list[Row]:
    """Every version raw holds, with its version columns (no audit columns)."""
    table = table or tenant.table("lots")
    data = _scan(catalog, tenant, table.name).drop_columns(list(AUDIT_COLUMNS))
    return sorted(data.to_pylist(), key=_version_order(table))


def _version(row: Row, valid_from: datetime | None = None, **flags: bool) -> Row:
    """The version a source row becomes: valid from its cursor (`updated_at`)
    unless the capture dates it, deleted only when said so."""
    return {
        **row,
        VALID_FROM: valid_from or row["updated_at"],
        DELETED: flags.get("deleted", False),
    }


def _sorted_versions(rows: list[Row], table: TableConfig) -> list[Row]:
    return sorted(rows, key=_version_order(table))


def _version_order(table: TableConfig) -> Any:
    keys = list(table.primary_key)
    return lambda row: ([row[k] for k in keys], row[VALID_FROM], row[DELETED])


def _lot_id(row: Row) -> str:
    return row["lot id"]


def _hash(catalog: Catalog, tenant: TenantConfig) -> str:
    """Every version's content (version columns included, audit columns not)."""
    return content_hash(_scan(catalog, tenant), exclude=AUDIT_COLUMNS)


def _day_rows(day: date, *, version: int = 1) -> list[Row]:
    """Three lots updated inside production day `day` (Seoul), values by version."""
    start = seoul_day(day).start
    tag = f"{day:%m%d}"
    return [
        _lot(f"{tag}-a", 10 * version, start),
        _lot(f"{tag}-b", 20 * version, start + timedelta(hours=12)),
        _lot(f"{tag}-c", 30 * version, seoul_day(day).end - timedelta(microseconds=1)),
    ]


# --- full refresh --------------------------------------------------------------


def test_full_refresh_twice_gives_the_same_table(tmp_path: Path) -> None:
    """The same source read twice adds no version: each row is compared with
    its key's live version, and none changed."""
    tenant = _tenant(tmp_path, "full_refresh")
    table = tenant.table("lots")
    catalog = open_catalog(tenant)
    rows = [_lot("A", 1, utc(2026, 1, 1)), _lot("B", None, utc(2026, 2, 1))]

    first = _load(catalog, tenant, rows, D2, run_id="run-1")
    after_first = (_hash(catalog, tenant), _scan(catalog, tenant).num_rows)
    second = _load(catalog, tenant, rows, D3, run_id="run-2")

    assert (_hash(catalog, tenant), _scan(catalog, tenant).num_rows) == after_first
    assert _live(catalog, tenant) == rows
    # Valid from the first capture: the source does not date its rows.
    expected = [_version(row, _captured(D2)) for row in rows]
    assert _versions(catalog, tenant) == _sorted_versions(expected, table)
    assert (first.rows_in_table, second.rows_in_table) == (2, 2)
    assert set(_scan(catalog, tenant).column("_mozart_run_id").to_pylist()) == {"run-1"}
    # No snapshot: only the instant the second sync read the source is kept
    # (where the next sync's undated changes begin).
    raw = catalog.load_table(("acme_raw", "lots"))
    assert second.snapshot_id == first.snapshot_id == raw.current_snapshot().snapshot_id
    assert len(raw.snapshots()) == 1
    captured_at = raw.properties[iceberg.CAPTURED_PROPERTY]
    assert datetime.fromisoformat(captured_at) == _captured(D3)


def test_full_refresh_closes_rows_gone_from_the_source(tmp_path: Path) -> None:
    """A key the source no longer holds gets a deletion version (a copy of its
    last version); a changed row, a new version; both valid from just after
    the previous sync, which still saw the old state. The old versions stay."""
    tenant = _tenant(tmp_path, "full_refresh")
    table = tenant.table("lots")
    catalog = open_catalog(tenant)
    at = utc(2026, 1, 1)
    before = [_lot("A", 1, at), _lot("B", 2, at)]
    after = [_lot("B", 5, at), _lot("C", 3, at)]

    _load(catalog, tenant, before, D1, run_id="r1")
    result = _load(catalog, tenant, after, D2, run_id="r2")

    assert _live(catalog, tenant) == after
    expected = [
        _version(before[0], _captured(D1)),
        _version(before[0], _after(D1), deleted=True),
        _version(before[1], _captured(D1)),
        _version(after[0], _after(D1)),
        _version(after[1], _after(D1)),
    ]
    assert _versions(catalog, tenant) == _sorted_versions(expected, table)
    assert (result.rows_loaded, result.rows_in_table) == (2, 5)
    runs = {
        (r["lot id"], r[DELETED]): r["_mozart_run_id"]
        for r in _scan(catalog, tenant).to_pylist()
        if r[VALID_FROM] == _after(D1)
    }
    assert runs == {("A", True): "r2", ("B", False): "r2", ("C", False): "r2"}


def test_load_result_and_audit_columns(tmp_path: Path) -> None:
    tenant = _tenant(tmp_path, "full_refresh")
    catalog = open_catalog(tenant)
    rows = [_lot("A", 1, utc(2026, 1, 1)), _lot("B", 2, utc(2026, 1, 2))]
    assert not raw_table_exists(catalog, tenant, tenant.table("lots"))

    before = datetime.now(UTC)
    result = _load(catalog, tenant, rows, D2, run_id="scheduled__2026-11-15")
    after = datetime.now(UTC)

    assert raw_table_exists(catalog, tenant, tenant.table("lots"))
    iceberg_table = catalog.load_table(("acme_raw", "lots"))
    assert result.identifier == "acme_raw.lots"
    assert (result.tenant_id, result.table, result.mode) == (
        "acme",
        "lots",
        "full_refresh",
    )
    assert (result.production_day, result.rows_loaded, result.rows_in_table) == (
        D2,
        2,
        2,
    )
    assert result.snapshot_id == iceberg_table.current_snapshot().snapshot_id
    data = _scan(catalog, tenant)
    # The source's columns, the version columns, then the audit columns.
    assert data.column_names == [
        *(c["name"] for c in LOT_COLUMNS),
        VALID_FROM,
        DELETED,
        *AUDIT_COLUMNS,
    ]
    assert set(data.column(VALID_FROM).to_pylist()) == {_captured(D2)}
    assert data.column(DELETED).to_pylist() == [False, False]
    assert set(data.column("_mozart_run_id").to_pylist()) == {"scheduled__2026-11-15"}
    assert set(data.column("_mozart_partition").to_pylist()) == {"2026-11-15"}
    loaded_at = set(data.column("_mozart_loaded_at").to_pylist())
    assert len(loaded_at) == 1
    assert before <= loaded_at.pop() <= after
    schema = iceberg_table.schema()
    assert isinstance(schema.find_field("lot id").field_type, StringType)
    assert isinstance(schema.find_field("qty").field_type, LongType)
    assert schema.find_field("amount").field_type == DecimalType(12, 2)
    assert isinstance(schema.find_field("updated_at").field_type, TimestamptzType)
    assert isinstance(
        schema.find_field("_mozart_loaded_at").field_type, TimestamptzType
    )
    assert isinstance(schema.find_field(VALID_FROM).field_type, TimestamptzType)
    assert isinstance(schema.find_field(DELETED).field_type, BooleanType)


# --- incremental ---------------------------------------------------------------


def test_incremental_table_is_partitioned_by_the_day_versions_became_valid(
    tmp_path: Path,
) -> None:
    tenant = _tenant(tmp_path, "incremental")
    catalog = open_catalog(tenant)

    _load(catalog, tenant, _day_rows(D2), D2, run_id="r1")

    raw = catalog.load_table(("acme_raw", "lots"))
    source = raw.schema().find_field(VALID_FROM).field_id
    assert [(f.name, f.transform, f.source_id) for f in raw.spec().fields] == [
        (f"{VALID_FROM}_day", DayTransform(), source)
    ]


def test_incremental_same_window_twice_gives_the_same_table(tmp_path: Path) -> None:
    """A version is known by its key and cursor: reading a window again adds
    nothing."""
    tenant = _tenant(tmp_path, "incremental")
    catalog = open_catalog(tenant)
    _load(catalog, tenant, _day_rows(D1), D1, run_id="r1")
    _load(catalog, tenant, _day_rows(D2), D2, run_id="r2")
    once = _hash(catalog, tenant)

    result = _load(catalog, tenant, _day_rows(D2), D2, run_id="r3")

    assert _hash(catalog, tenant) == once
    assert result.rows_in_table == 6
    assert _scan(catalog, tenant).num_rows == 6
    assert _live(catalog, tenant) == sorted(_day_rows(D1) + _day_rows(D2), key=_lot_id)
    assert "r3" not in set(_scan(catalog, tenant).column("_mozart_run_id").to_pylist())


def test_incremental_rerun_of_a_window_adds_only_new_versions(tmp_path: Path) -> None:
    """A rerun appends only the (key, cursor) versions raw lacks: a row updated
    again (a later cursor) is a new version over the old one, which stays; a
    row changed without moving its cursor is not a new version; a row gone
    from the source stays live (no `deletes` declared)."""
    tenant = _tenant(tmp_path, "incremental")
    table = tenant.table("lots")
    catalog = open_catalog(tenant)
    for day in (D1, D2, D3):
        _load(catalog, tenant, _day_rows(day), day, run_id=f"first-{day}")

    a, b, c = _day_rows(D2)
    updated_b = {**b, "qty": 99, "updated_at": b["updated_at"] + timedelta(hours=1)}
    same_cursor_c = {**c, "qty": 77}  # `a` is gone from the source
    result = _load(catalog, tenant, [updated_b, same_cursor_c], D2, run_id="rerun")

    current = [*_day_rows(D1), a, updated_b, c, *_day_rows(D3)]
    assert _live(catalog, tenant) == sorted(current, key=_lot_id)
    first = [*_day_rows(D1), *_day_rows(D2), *_day_rows(D3)]
    expected = [_version(row) for row in [*first, updated_b]]
    assert _versions(catalog, tenant) == _sorted_versions(expected, table)
    assert result.rows_in_table == 10
    data = _scan(catalog, tenant).to_pylist()
    reruns = [r["lot id"] for r in data if r["_mozart_run_id"] == "rerun"]
    assert reruns == ["1115-b"]


def test_incremental_days_in_any_order_give_the_same_table(tmp_path: Path) -> None:
    """Loads of days in any order give the same versions, so the same live rows."""
    in_order = (D1, D2, D3)
    hashes: dict[tuple[date, ...], str] = {}
    live: dict[tuple[date, ...], list[Row]] = {}
    for index, order in enumerate(itertools.permutations(in_order)):
        tenant = _tenant(tmp_path / f"order{index}", "incremental")
        catalog = open_catalog(tenant)
        for day in order:
            # Each day's rows, and a later version of D1's first lot.
            rows = _day_rows(day)
            if day != D1:
                rows.append(
                    {
                        **_day_rows(D1)[0],
                        "qty": day.day,
                        "updated_at": rows[0]["updated_at"],
                    }
                )
            _load(catalog, tenant, rows, day, run_id=f"r-{day}")
        hashes[order] = _hash(catalog, tenant)
        live[order] = _live(catalog, tenant)
        if order == in_order:
            expected = [
                *_day_rows(D1)[1:],
                {**_day_rows(D1)[0], "qty": D3.day, "updated_at": seoul_day(D3).start},
                *_day_rows(D2),
                *_day_rows(D3),
            ]
            assert live[order] == sorted(expected, key=_lot_id)
            assert _scan(catalog, tenant).num_rows == 11

    assert len(hashes) == 6
    assert set(hashes.values()) == {hashes[in_order]}
    assert all(rows == live[in_order] for rows in live.values())


def test_an_older_extract_loaded_late_never_becomes_current(tmp_path: Path) -> None:
    """A whole-table read loaded after newer syncs (a cleared first run) adds
    only the versions it alone saw; the newer versions stay current."""
    tenant = _tenant(tmp_path, "incremental")
    table = tenant.table("lots")
    catalog = open_catalog(tenant)
    history = [*_day_rows(D1), *_day_rows(D2)]
    old_a = history[0]
    new_a = {**old_a, "qty": 11, "updated_at": seoul_day(D3).start}
    late = _lot("late", 5, seoul_day(D1).start + timedelta(hours=1))
    _load(catalog, tenant, history, D2, run_id="first", initial=True)
    _load(catalog, tenant, [new_a, *_day_rows(D3)], D3, run_id="d3")

    # The first run's read again, with a row committed late that only it saw.
    result = _load(catalog, tenant, [*history, late], D2, run_id="again", initial=True)

    current = [new_a, *history[1:], late, *_day_rows(D3)]
    assert _live(catalog, tenant) == sorted(current, key=_lot_id)
    every = [*history, new_a, *_day_rows(D3), late]
    assert _versions(catalog, tenant) == _sorted_versions(
        [_version(row) for row in every], table
    )
    assert result.rows_in_table == len(every)


@pytest.mark.parametrize(
    ("kind", "zone", "cursors", "valid_from"),
    [
        # A naive timestamp is a wall time of the source's zone (UTC undeclared).
        (
            "timestamp",
            None,
            [datetime(2026, 11, 14, 15), datetime(2026, 11, 15, 14, 59, 59, 999999)],
            [utc(2026, 11, 14, 15), utc(2026, 11, 15, 14, 59, 59, 999999)],
        ),
        (
            "timestamp",
            "Asia/Seoul",
            [datetime(2026, 11, 15, 0), datetime(2026, 11, 15, 23, 59, 59, 999999)],
            [utc(2026, 11, 14, 15), utc(2026, 11, 15, 14, 59, 59, 999999)],
        ),
        # A date is valid from its local midnight.
        ("date", None, [date(2026, 11, 15)], [utc(2026, 11, 15)]),
        ("date", "Asia/Seoul", [date(2026, 11, 15)], [utc(2026, 11, 14, 15)]),
    ],
)
def test_naive_and_date_cursors_are_valid_from_their_instant_in_the_source_zone(
    tmp_path: Path,
    kind: str,
    zone: str | None,
    cursors: list[Any],
    valid_from: list[datetime],
) -> None:
    """`_mozart_valid_from` is the cursor as a UTC instant, read in the
    source's zone; a rerun of the same cursors with other values adds nothing."""
    columns = [
        {"name": "lot id", "type": "string", "nullable": False},
        {"name": "qty", "type": "bigint"},
        {"name": "updated_at", "type": kind, "nullable": False},
    ]
    tenant = _tenant(
        tmp_path, "incremental", columns, **({"timezone": zone} if zone else {})
    )
    catalog = open_catalog(tenant)
    rows = [
        {"lot id": f"in{i}", "qty": 1, "updated_at": at} for i, at in enumerate(cursors)
    ]
    _load(catalog, tenant, rows, D2, run_id="first")
    rerun = [{**row, "qty": 2} for row in rows]
    _load(catalog, tenant, rerun, D2, run_id="rerun")

    versions = _versions(catalog, tenant)
    assert [(v["lot id"], v["qty"], v[VALID_FROM]) for v in versions] == [
        (f"in{i}", 1, at) for i, at in enumerate(valid_from)
    ]
    assert _live(catalog, tenant) == rows


# --- merge ---------------------------------------------------------------------


def test_merge_keeps_the_old_version_and_makes_the_new_one_current(
    tmp_path: Path,
) -> None:
    """An updated key gets a new version (its new cursor) beside the old one; a
    new key its first; untouched keys keep theirs, audit columns included."""
    tenant = _tenant(tmp_path, "merge")
    table = tenant.table("lots")
    catalog = open_catalog(tenant)
    day1 = [
        _lot("L1", 10, utc(2026, 11, 13, 16)),
        _lot("L2", 20, utc(2026, 11, 13, 17), status="WAIT"),
        _lot("L3", 30, utc(2026, 11, 13, 18)),
    ]
    _load(catalog, tenant, day1, D1, run_id="r1")

    day2 = [
        _lot("L2", 25, utc(2026, 11, 14, 16), status="DONE"),
        _lot("L4", 40, utc(2026, 11, 14, 17)),
    ]
    result = _load(catalog, tenant, day2, D2, run_id="r2")

    assert _live(catalog, tenant) == [day1[0], day2[0], day1[2], day2[1]]
    expected = [_version(row) for row in [*day1, *day2]]
    assert _versions(catalog, tenant) == _sorted_versions(expected, table)
    audit = {
        (row["lot id"], row["qty"]): (row["_mozart_run_id"], row["_mozart_partition"])
        for row in _scan(catalog, tenant).to_pylist()
    }
    assert audit == {
        ("L1", 10): ("r1", "2026-11-14"),
        ("L2", 20): ("r1", "2026-11-14"),
        ("L3", 30): ("r1", "2026-11-14"),
        ("L2", 25): ("r2", "2026-11-15"),
        ("L4", 40): ("r2", "2026-11-15"),
    }
    assert (result.rows_loaded, result.rows_in_table) == (2, 5)


def test_merge_rerun_of_the_same_day_gives_the_same_table(tmp_path: Path) -> None:
    tenant = _tenant(tmp_path, "merge")
    catalog = open_catalog(tenant)
    _load(catalog, tenant, _day_rows(D1), D1, run_id="r1")
    _load(catalog, tenant, _day_rows(D2), D2, run_id="r2")
    once = _hash(catalog, tenant)

    _load(catalog, tenant, _day_rows(D2), D2, run_id="r3")

    assert _hash(catalog, tenant) == once
    assert _scan(catalog, tenant).num_rows == 6
    assert _live(catalog, tenant) == sorted(_day_rows(D1) + _day_rows(D2), key=_lot_id)


def test_merge_on_a_composite_key(tmp_path: Path) -> None:
    columns = [
        {"name": "lot id", "type": "string", "nullable": False},
        {"name": "step seq", "type": "int", "nullable": False},
        {"name": "qty", "type": "bigint"},
        {"name": "updated_at", "type": "timestamptz", "nullable": False},
    ]
    steps = table_dict(
        "steps",
        columns,
        primary_key=["lot id", "step seq"],
        mode="merge",
        cursor="updated_at",
    )
    tenant = make_tenant(tmp_path, [steps])
    table, catalog = tenant.table("steps"), open_catalog(tenant)
    at1, at2 = utc(2026, 11, 13, 16), utc(2026, 11, 14, 16)

    def step(lot: str, seq: int, qty: int, at: datetime) -> Row:
        return {"lot id": lot, "step seq": seq, "qty": qty, "updated_at": at}

    first = [step("A", 1, 10, at1), step("A", 2, 20, at1), step("B", 1, 30, at1)]
    _load(catalog, tenant, first, D1, run_id="r1", table=table)
    # (A, 2) changes; (B, 2) is new; (A, 1) and (B, 1) are not in this extract.
    second = [step("A", 2, 21, at2), step("B", 2, 40, at2)]
    _load(catalog, tenant, second, D2, run_id="r2", table=table)

    assert _live(catalog, tenant, table) == [first[0], second[0], first[2], second[1]]
    expected = [_version(row) for row in [*first, *second]]
    assert _versions(catalog, tenant, table) == _sorted_versions(expected, table)


# --- slices --------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["full_refresh", "incremental", "merge"])
def test_a_load_written_in_slices_is_one_commit_of_every_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """The load holds SLICE_ROWS rows at a time (memory stays flat as the
    partition grows), and still commits once, with one `loaded_at`: the new
    versions and (full refresh) the deletions of keys gone from the source."""
    monkeypatch.setattr(iceberg, "SLICE_ROWS", 2)
    tenant = _tenant(tmp_path, mode)
    table = tenant.table("lots")
    catalog = open_catalog(tenant)
    first = _day_rows(D1)
    _load(catalog, tenant, first, D1, run_id="r1")
    commits = len(catalog.load_table(("acme_raw", "lots")).metadata.metadata_log)
    start = seoul_day(D2).start
    second = [
        *_day_rows(D2),
        _lot("1115-d", 4, start + timedelta(hours=1)),
        _lot(first[0]["lot id"], 99, start + timedelta(hours=2)),  # a day-1 key
    ]

    result = _load(catalog, tenant, second, D2, run_id="r2")

    if mode == "full_refresh":  # every row of the source, undated: by the syncs
        live = second
        versions = [_version(row, _captured(D1)) for row in first]
        versions += [_version(row, _after(D1)) for row in second]
        versions += [_version(row, _after(D1), deleted=True) for row in first[1:]]
    else:  # day 1's other lots are not in the extract and stay live
        live = first[1:] + second
        versions = [_version(row) for row in first + second]
    assert _live(catalog, tenant) == sorted(live, key=_lot_id)
    assert _versions(catalog, tenant) == _sorted_versions(versions, table)
    added = len(versions) - len(first)
    raw = catalog.load_table(("acme_raw", "lots"))
    summary = raw.current_snapshot().summary
    assert (result.rows_loaded, int(summary["added-records"])) == (5, added)
    assert int(summary["added-data-files"]) >= 3  # slices of 2, 2 and 1 rows
    assert len(raw.metadata.metadata_log) == commits + 1
    loaded = raw.scan(row_filter="_mozart_run_id == 'r2'").to_arrow()
    assert loaded.num_rows == added
    assert len(set(loaded.column("_mozart_loaded_at").to_pylist())) == 1


# --- schema evolution ----------------------------------------------------------


@pytest.mark.parametrize("mode", ["merge", "incremental", "full_refresh"])
def test_added_column_evolves_the_schema_and_old_rows_read_null(
    tmp_path: Path, mode: str
) -> None:
    tenant = _tenant(tmp_path, mode)
    catalog = open_catalog(tenant)
    old = [_lot("L1", 10, utc(2026, 11, 13, 16)), _lot("L2", 20, utc(2026, 11, 13, 17))]
    _load(catalog, tenant, old, D1, run_id="r1")

    remark = {"name": "remark", "type": "string"}
    evolved = _tenant(tmp_path, mode, [*LOT_COLUMNS, remark])
    table = evolved.table("lots")
    new = [
        _lot("L2", 21, utc(2026, 11, 14, 16), remark="재작업"),
        _lot("L3", 30, utc(2026, 11, 14, 17), remark=None),
        _lot("L4", 40, utc(2026, 11, 14, 18), remark="ok"),
    ]
    result = _load(catalog, evolved, new, D2, run_id="r2", table=table)

    was = [{**row, "remark": None} for row in old]  # old versions read null
    if mode == "full_refresh":  # L1 is gone from the source: closed
        live = new
        versions = [_version(row, _captured(D1)) for row in was]
        versions += [_version(row, _after(D1)) for row in new]
        versions.append(_version(was[0], _after(D1), deleted=True))
    else:  # L2's new version is current, L1 untouched
        live = was[:1] + new
        versions = [_version(row) for row in was + new]
    assert _live(catalog, evolved) == live
    assert _versions(catalog, evolved) == _sorted_versions(versions, table)
    assert result.rows_in_table == len(versions)
    schema = catalog.load_table(("acme_raw", "lots")).schema()
    assert isinstance(schema.find_field("remark").field_type, StringType)
    assert not schema.find_field("remark").required


def test_a_composite_key_version_is_known_by_every_key_column_and_its_cursor(
    tmp_path: Path,
) -> None:
    """A version is new unless raw holds the same whole key with the same
    cursor: another step of a lot at a cursor raw already holds is new; the
    same step at the same cursor is not, whatever its values."""
    columns = [
        {"name": "lot id", "type": "string", "nullable": False},
        {"name": "step seq", "type": "int", "nullable": False},
        {"name": "qty", "type": "bigint"},
        {"name": "updated_at", "type": "timestamptz", "nullable": False},
    ]
    steps = table_dict(
        "steps",
        columns,
        primary_key=["lot id", "step seq"],
        mode="merge",
        cursor="updated_at",
    )
    tenant = make_tenant(tmp_path, [steps])
    table, catalog = tenant.table("steps"), open_catalog(tenant)
    at1, at2 = utc(2026, 11, 13, 16), utc(2026, 11, 14, 16)

    def step(lot: str, seq: int, qty: int, at: datetime) -> Row:
        return {"lot id": lot, "step seq": seq, "qty": qty, "updated_at": at}

    first = [step(lot, seq, 1, at1) for lot in "ABCDE" for seq in (1, 2)]
    _load(catalog, tenant, first, D1, run_id="r1", table=table)
    second = [
        step("B", 2, 5, at2),  # a new version of (B, 2)
        step("D", 1, 6, at1),  # (D, 1) at a cursor raw holds: not new
        step("C", 3, 7, at1),  # a new key at a cursor other steps of C hold
    ]
    result = _load(catalog, tenant, second, D2, run_id="r2", table=table)

    got = _scan(catalog, tenant, "steps").to_pylist()
    keyed = {
        (r["lot id"], r["step seq"], r["updated_at"]): (r["qty"], r["_mozart_run_id"])
        for r in got
    }
    expected = {(r["lot id"], r["step seq"], at1): (1, "r1") for r in first}
    expected |= {("B", 2, at2): (5, "r2"), ("C", 3, at1): (7, "r2")}
    assert (len(got), keyed) == (12, expected)
    assert result.rows_in_table == 12
    live = {
        (r["lot id"], r["step seq"]): r["qty"] for r in _live(catalog, tenant, table)
    }
    assert live == {(r["lot id"], r["step seq"]): 1 for r in first} | {
        ("B", 2): 5,
        ("C", 3): 7,
    }
