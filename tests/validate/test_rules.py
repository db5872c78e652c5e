"""Validation over real Parquet extracts: each rule kind, implicit rules,
quarantine and accepted files, tolerances, severities and the report."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mozart_etl.config.constants import SourceType
from mozart_etl.config.models import TableConfig, TenantConfig
from mozart_etl.core.errors import ConfigError, ValidationFailed
from mozart_etl.core.lake import Lake
from mozart_etl.extract.connectors import Credentials, connector_for
from mozart_etl.extract.extractor import extract_table
from mozart_etl.validate.validator import (
    FAILED_RULES_COLUMN,
    ROW_COLUMN,
    ValidationReport,
    accepted_rows,
    read_accepted,
    validate_extract,
)
from tests.helpers import (
    TYPED_ROWS,
    Row,
    assert_typed_roundtrip,
    day_window,
    expected_typed_schema,
    make_tenant,
    read_extract,
    seoul_day,
    table_dict,
    typed_table,
    write_extract,
    write_sqlite,
)

DAY = seoul_day(date(2026, 11, 15))
KEY = ("lot id", "seq")

LOT_COLUMNS = [
    {"name": "lot id", "type": "string", "nullable": False},
    {"name": "seq", "type": "int", "nullable": False},
    {"name": "status", "type": "string"},
    {"name": "qty_in", "type": "bigint"},
    {"name": "qty_out", "type": "bigint"},
    {"name": "order", "type": "int"},
    {"name": "yield_pct", "type": "double"},
]


def _row(lot: str | None, seq: int, **values: Any) -> Row:
    defaults = {
        "status": "RUN",
        "qty_in": 10,
        "qty_out": 9,
        "order": seq,
        "yield_pct": 90.0,
    }
    return {"lot id": lot, "seq": seq, **defaults, **values}


@dataclass(frozen=True)
class Outcome:
    """What validation left in the lake, whether or not it raised."""

    report: dict[str, Any]
    accepted: list[Row]
    quarantined: list[Row]
    error: ValidationFailed | None
    extracted: list[Row]

    def failed(self, rule: str) -> int:
        return next(r["failed"] for r in self.report["rules"] if r["name"] == rule)

    def tolerated(self, rule: str) -> bool:
        return next(r["tolerated"] for r in self.report["rules"] if r["name"] == rule)

    @property
    def accepted_keys(self) -> list[tuple[Any, ...]]:
        """Read back when the run may load; after a failed validation (which
        writes no accepted rows) the extract's rows that were not quarantined."""
        if self.error is None:
            keys = [_key(row) for row in self.accepted]
        else:
            assert not self.accepted
            keys = [_key(r) for r in self.extracted if _key(r) not in self.quarantine]
        assert len(keys) == self.report["accepted"]
        return sorted(keys)

    @property
    def quarantine(self) -> dict[tuple[Any, ...], list[str]]:
        """Each quarantined key → the rules it broke."""
        return {_key(row): row[FAILED_RULES_COLUMN] for row in self.quarantined}


def _key(row: Row) -> tuple[Any, ...]:
    return tuple(row[name] for name in KEY)


def _lots(
    tmp_path: Path,
    rules: list[dict[str, Any]],
    columns: list[dict[str, Any]] | None = None,
) -> tuple[TenantConfig, TableConfig]:
    lots = table_dict("lots", columns or LOT_COLUMNS, primary_key=KEY, rules=rules)
    tenant = make_tenant(tmp_path, [lots])
    return tenant, tenant.table("lots")


def _validate(
    tmp_path: Path,
    rules: list[dict[str, Any]],
    rows: list[Row],
    *,
    columns: list[dict[str, Any]] | None = None,
    parts: int = 1,
) -> Outcome:
    tenant, table = _lots(tmp_path, rules, columns)
    manifest = write_extract(tenant, table, rows, DAY, parts=parts)
    error: ValidationFailed | None = None
    try:
        validate_extract(tenant, table, manifest)
    except ValidationFailed as exc:
        error = exc
    folder = Path(manifest.folder) / "validated"
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    extracted = read_extract(manifest).to_pylist()
    quarantined = pq.read_table(folder / "quarantine.parquet").to_pylist()
    for row in quarantined:  # each quarantined row names its place in the extract
        position = row.pop(ROW_COLUMN)
        assert extracted[position] == {
            name: value for name, value in row.items() if name != FAILED_RULES_COLUMN
        }
    accepted = read_accepted(Lake(tenant), ValidationReport.model_validate(report))
    return Outcome(
        report=report,
        accepted=accepted.to_pylist(),  # none after a failed validation
        extracted=extracted,
        quarantined=quarantined,
        error=error,
    )


# --- clean data ----------------------------------------------------------------


def test_clean_extract_is_accepted_unchanged(tmp_path: Path) -> None:
    rows = [_row("A", 1), _row("A", 2, status=None), _row("B", 1, qty_out=None)]

    outcome = _validate(tmp_path, [], rows)

    assert outcome.error is None
    assert sorted(outcome.accepted, key=_key) == rows
    assert outcome.quarantined == []
    assert outcome.report["rows"] == 3
    assert (outcome.report["accepted"], outcome.report["quarantined"]) == (3, 0)
    assert [(r["name"], r["kind"], r["failed"]) for r in outcome.report["rules"]] == [
        ("required_columns", "not_null", 0),
        ("primary_key_unique", "unique", 0),
    ]


@pytest.mark.parametrize("quarantined", [False, True])
def test_accepted_and_quarantined_rows_keep_the_extracted_types_and_values(
    tmp_path: Path, quarantined: bool
) -> None:
    """From a real extract: every type survives validation as extracted, on
    either side (DuckDB fetches the quarantined rows; a column named `day` sits
    in a `day=…` folder of the lake and stays the extract's)."""
    path = tmp_path / "source.sqlite"
    ddl = (
        "CREATE TABLE typed (id INTEGER, label TEXT, big INTEGER, small INTEGER, "
        "ratio REAL, flag INTEGER, day TEXT, local_ts TEXT, instant TEXT, "
        'amount TEXT, "order" TEXT, "lot id" TEXT)'
    )
    write_sqlite(path, ddl, "typed", TYPED_ROWS)
    never = {"type": "expression", "name": "never", "expr": "id < 0"}
    extra = {"rules": [{**never, "max_fraction": 1.0}]} if quarantined else {}
    tenant = make_tenant(tmp_path, [typed_table(**extra)])
    connector = connector_for(SourceType.SQLITE, Credentials(database=str(path)))
    manifest = extract_table(
        tenant,
        tenant.table("typed"),
        DAY,
        connector,
        window=day_window(tenant.table("typed"), DAY),
    )

    report = validate_extract(tenant, tenant.table("typed"), manifest)

    accepted = read_accepted(Lake(tenant), report)
    quarantine = pq.read_table(report.quarantine_path)
    # timestamptz stays timestamp[us, tz=UTC] whatever the worker's time zone.
    assert accepted.schema == expected_typed_schema()
    assert quarantine.schema == expected_typed_schema().append(
        pa.field(FAILED_RULES_COLUMN, pa.list_(pa.string()))
    ).append(pa.field(ROW_COLUMN, pa.int64()))
    kept, rejected = (quarantine, accepted) if quarantined else (accepted, quarantine)
    assert rejected.num_rows == 0
    assert_typed_roundtrip(kept.select(expected_typed_schema().names))
    assert kept.select(expected_typed_schema().names).equals(read_extract(manifest))
    if quarantined:
        assert quarantine.column(FAILED_RULES_COLUMN).to_pylist() == [["never"]] * 4
        assert quarantine.column(ROW_COLUMN).to_pylist() == [0, 1, 2, 3]


def test_empty_extract_validates_to_empty_files(tmp_path: Path) -> None:
    outcome = _validate(tmp_path, [{"type": "not_null", "columns": ["status"]}], [])

    assert outcome.error is None
    assert (outcome.accepted, outcome.quarantined) == ([], [])
    assert (outcome.report["rows"], outcome.report["accepted"]) == (0, 0)


# --- each rule kind ------------------------------------------------------------


def test_not_null(tmp_path: Path) -> None:
    rules = [{"type": "not_null", "columns": ["status", "qty_in"], "max_failures": 3}]
    rows = [
        _row("A", 1),
        _row("A", 2, status=None),
        _row("A", 3, qty_in=None),
        _row("A", 4, status=None, qty_in=None),
        _row("A", 5, qty_out=None),
    ]

    outcome = _validate(tmp_path, rules, rows)

    rule = "not_null(status,qty_in)"
    assert outcome.error is None
    assert outcome.quarantine == {("A", 2): [rule], ("A", 3): [rule], ("A", 4): [rule]}
    assert outcome.accepted_keys == [("A", 1), ("A", 5)]
    assert outcome.failed(rule) == 3


def test_unique_fails_every_duplicate(tmp_path: Path) -> None:
    rules = [{"type": "unique", "columns": ["order"], "max_failures": 5}]
    orders = [1, 2, 2, 3, 3, 3, 4]
    rows = [_row("A", seq, order=order) for seq, order in enumerate(orders, 1)]

    outcome = _validate(tmp_path, rules, rows)

    assert outcome.error is None
    assert sorted(outcome.quarantine) == [("A", s) for s in (2, 3, 4, 5, 6)]
    assert set(map(tuple, outcome.quarantine.values())) == {("unique(order)",)}
    assert outcome.accepted_keys == [("A", 1), ("A", 7)]


def test_unique_over_several_columns_and_files(tmp_path: Path) -> None:
    rules = [{"type": "unique", "columns": ["status", "order"], "name": "status_order"}]
    rows = [
        _row("A", 1, status="RUN", order=1),
        _row("A", 2, status="DONE", order=1),
        _row("A", 3, status="RUN", order=2),
        _row("A", 4, status="RUN", order=1),  # duplicates row 1, in the 2nd file
    ]

    outcome = _validate(tmp_path, rules, rows, parts=2)

    assert outcome.quarantine == {
        ("A", 1): ["status_order"],
        ("A", 4): ["status_order"],
    }
    assert outcome.accepted_keys == [("A", 2), ("A", 3)]
    assert outcome.error is not None
    assert "status_order: 2 row(s)" in str(outcome.error)


def test_accepted_values_ignores_null_and_is_case_sensitive(tmp_path: Path) -> None:
    rules = [
        {
            "type": "accepted_values",
            "column": "status",
            "values": ["WAIT", "RUN", "DONE"],
            "max_failures": 2,
        }
    ]
    statuses = ["RUN", "DONE", "HOLD", "run", None, "WAIT"]
    rows = [_row("A", seq, status=s) for seq, s in enumerate(statuses, 1)]

    outcome = _validate(tmp_path, rules, rows)

    rule = "accepted_values(status)"
    assert outcome.error is None
    assert outcome.quarantine == {("A", 3): [rule], ("A", 4): [rule]}
    assert outcome.accepted_keys == [("A", 1), ("A", 2), ("A", 5), ("A", 6)]


def test_accepted_values_on_integers(tmp_path: Path) -> None:
    rules = [{"type": "accepted_values", "column": "order", "values": [1, 2]}]
    rows = [_row("A", 1, order=1), _row("A", 2, order=2), _row("A", 3, order=3)]

    outcome = _validate(tmp_path, rules, rows)

    assert outcome.quarantine == {("A", 3): ["accepted_values(order)"]}
    assert outcome.error is not None


YIELDS = [-0.5, 0.0, 50.0, 100.0, 100.5, None]


@pytest.mark.parametrize(
    ("inclusive", "failing"),
    [(True, [1, 5]), (False, [1, 2, 4, 5])],
    ids=["inclusive", "exclusive"],
)
def test_range(tmp_path: Path, inclusive: bool, failing: list[int]) -> None:
    rules = [
        {
            "type": "range",
            "column": "yield_pct",
            "min": 0,
            "max": 100,
            "inclusive": inclusive,
            "max_failures": 4,
        }
    ]
    rows = [_row("A", seq, yield_pct=y) for seq, y in enumerate(YIELDS, 1)]

    outcome = _validate(tmp_path, rules, rows)

    assert outcome.error is None
    assert sorted(outcome.quarantine) == [("A", seq) for seq in failing]
    passing = [seq for seq in range(1, 7) if seq not in failing]
    assert outcome.accepted_keys == [("A", seq) for seq in passing]
    assert outcome.failed("range(yield_pct)") == len(failing)


def test_range_with_only_a_minimum(tmp_path: Path) -> None:
    rules = [{"type": "range", "column": "qty_in", "min": 0, "name": "qty_positive"}]
    rows = [
        _row("A", 1, qty_in=-1),
        _row("A", 2, qty_in=0),
        _row("A", 3, qty_in=10**12),
    ]

    outcome = _validate(tmp_path, rules, rows)

    assert outcome.quarantine == {("A", 1): ["qty_positive"]}
    assert outcome.accepted_keys == [("A", 2), ("A", 3)]


def test_expression_fails_only_false_rows(tmp_path: Path) -> None:
    rules = [
        {
            "type": "expression",
            "name": "qty_out_le_qty_in",
            "expr": 'qty_out <= qty_in AND "order" >= 0',
            "max_failures": 2,
        }
    ]
    rows = [
        _row("A", 1, qty_in=10, qty_out=9),
        _row("A", 2, qty_in=10, qty_out=10),
        _row("A", 3, qty_in=10, qty_out=11),
        _row("A", 4, qty_in=10, qty_out=None),  # NULL: passes, like CHECK
        _row("A", 5, order=-1),
    ]

    outcome = _validate(tmp_path, rules, rows)

    assert outcome.error is None
    rule = ["qty_out_le_qty_in"]
    assert outcome.quarantine == {("A", 3): rule, ("A", 5): rule}
    assert outcome.accepted_keys == [("A", 1), ("A", 2), ("A", 4)]


def test_pattern_matches_the_whole_value_and_ignores_null(tmp_path: Path) -> None:
    rules = [
        {
            "type": "pattern",
            "column": "status",
            "pattern": "[A-Z]{3,4}",
            "max_failures": 3,
        }
    ]
    statuses = ["RUN", "DONE", "run", "RUNNING", "RUN1", None, ""]
    rows = [_row("A", seq, status=s) for seq, s in enumerate(statuses, 1)]

    outcome = _validate(tmp_path, rules, rows)

    rule = "pattern(status)"
    assert outcome.error is not None  # 4 failures > max_failures 3
    assert outcome.failed(rule) == 4
    assert outcome.quarantine == {("A", s): [rule] for s in (3, 4, 5, 7)}
    assert outcome.accepted_keys == [("A", 1), ("A", 2), ("A", 6)]


def test_pattern_is_bound_not_spliced(tmp_path: Path) -> None:
    """Quotes and SQL in a pattern are regex text, never SQL."""
    rules = [{"type": "pattern", "column": "status", "pattern": "O'B.*|x' OR 1=1"}]
    rows = [
        _row("A", 1, status="O'Brien"),
        _row("A", 2, status="x' OR 1=1"),
        _row("A", 3, status="Obrien"),
    ]

    outcome = _validate(tmp_path, rules, rows)

    assert outcome.quarantine == {("A", 3): ["pattern(status)"]}
    assert outcome.accepted_keys == [("A", 1), ("A", 2)]
    assert outcome.error is not None
    assert "pattern(status): 1 row(s)" in str(outcome.error)


def test_pattern_passing(tmp_path: Path) -> None:
    rules = [{"type": "pattern", "column": "lot id", "pattern": r"LOT-\d{3}"}]
    rows = [_row("LOT-001", 1), _row("LOT-002", 1)]

    outcome = _validate(tmp_path, rules, rows)

    assert outcome.error is None
    assert outcome.failed("pattern(lot id)") == 0
    assert outcome.accepted_keys == [("LOT-001", 1), ("LOT-002", 1)]


def test_range_with_date_bounds(tmp_path: Path) -> None:
    columns = [*LOT_COLUMNS[:3], {"name": "due", "type": "date"}]
    rules = [
        {
            "type": "range",
            "column": "due",
            "min": date(2026, 11, 1),
            "max": date(2026, 11, 30),
            "name": "due_in_november",
        }
    ]
    dues = [date(2026, 10, 31), date(2026, 11, 1), date(2026, 11, 30), None]
    rows = [
        {"lot id": "A", "seq": seq, "status": "RUN", "due": due}
        for seq, due in enumerate(dues, 1)
    ]

    outcome = _validate(tmp_path, rules, rows, columns=columns)

    assert outcome.quarantine == {("A", 1): ["due_in_november"]}
    assert outcome.accepted_keys == [("A", 2), ("A", 3), ("A", 4)]


def test_quarantine_keeps_every_value_of_a_rejected_row(tmp_path: Path) -> None:
    """The quarantine file holds the rows as extracted, plus the rule tags."""
    rules = [{**QTY_RULE, "max_failures": 5}]
    bad = _row("Q", 7, status="HOLD", qty_in=5, qty_out=6, order=-3, yield_pct=1.25)
    rows = [_row("A", 1), bad]

    outcome = _validate(tmp_path, rules, rows)

    assert outcome.quarantined == [{**bad, FAILED_RULES_COLUMN: ["qty_out_le_qty_in"]}]
    assert outcome.accepted == [rows[0]]


# --- implicit rules ------------------------------------------------------------


def test_required_columns_and_primary_key_are_checked_implicitly(
    tmp_path: Path,
) -> None:
    columns = [
        *LOT_COLUMNS[:3],
        {"name": "qty_in", "type": "bigint", "nullable": False},
    ]
    rows = [
        _row("A", 1),
        _row(None, 2),  # a key column is NULL
        _row("B", 1, qty_in=None),  # a non-nullable column is NULL
        _row("C", 1),
        _row("C", 1, status="DONE"),  # duplicate key
    ]
    for row in rows:
        for name in ("qty_out", "order", "yield_pct"):
            del row[name]

    outcome = _validate(tmp_path, [], rows, columns=columns)

    assert len(outcome.quarantined) == 4
    assert outcome.quarantine[(None, 2)] == ["required_columns"]
    assert outcome.quarantine[("B", 1)] == ["required_columns"]
    duplicates = [r for r in outcome.quarantined if r["lot id"] == "C"]
    assert sorted(r["status"] for r in duplicates) == ["DONE", "RUN"]
    assert all(r[FAILED_RULES_COLUMN] == ["primary_key_unique"] for r in duplicates)
    assert outcome.accepted_keys == [("A", 1)]
    assert outcome.failed("required_columns") == 2
    assert outcome.failed("primary_key_unique") == 2
    assert outcome.error is not None


def test_a_row_lists_every_rule_it_breaks_in_rule_order(tmp_path: Path) -> None:
    rules = [
        {"type": "accepted_values", "column": "status", "values": ["RUN"]},
        {"type": "range", "column": "yield_pct", "max": 100, "name": "yield_max"},
        {"type": "expression", "name": "out_le_in", "expr": "qty_out <= qty_in"},
    ]
    rows = [
        _row("A", 1),
        _row("A", 2, status="HOLD", yield_pct=120.0, qty_out=11),
        _row("A", 2, yield_pct=101.0),
    ]

    outcome = _validate(tmp_path, rules, rows)

    got = sorted(outcome.quarantined, key=lambda r: r["yield_pct"])
    assert [r[FAILED_RULES_COLUMN] for r in got] == [
        ["primary_key_unique", "yield_max"],
        ["primary_key_unique", "accepted_values(status)", "yield_max", "out_le_in"],
    ]
    assert outcome.accepted_keys == [("A", 1)]


# --- tolerances and severities -------------------------------------------------


def _broken_qty_rows(broken: int, total: int) -> list[Row]:
    """`total` rows of which the first `broken` have qty_out > qty_in."""
    return [
        _row("A", seq, qty_out=11 if seq <= broken else 9)
        for seq in range(1, total + 1)
    ]


QTY_RULE = {
    "type": "expression",
    "name": "qty_out_le_qty_in",
    "expr": "qty_out <= qty_in",
}


def test_within_max_failures_rows_are_quarantined_without_error(tmp_path: Path) -> None:
    rules = [{**QTY_RULE, "max_failures": 2}]

    outcome = _validate(tmp_path, rules, _broken_qty_rows(2, 5))

    assert outcome.error is None
    assert sorted(outcome.quarantine) == [("A", 1), ("A", 2)]
    assert outcome.accepted_keys == [("A", 3), ("A", 4), ("A", 5)]
    assert outcome.tolerated("qty_out_le_qty_in") is True


def test_beyond_max_failures_raises_naming_rule_and_count(tmp_path: Path) -> None:
    rules = [{**QTY_RULE, "max_failures": 2}]

    outcome = _validate(tmp_path, rules, _broken_qty_rows(3, 5))

    assert outcome.error is not None
    message = str(outcome.error)
    assert message.startswith(
        "[tenant=acme table=lots rule=qty_out_le_qty_in] 1 rule(s) failed"
    )
    assert "(qty_out_le_qty_in: 3 row(s)) of 5 rows; nothing was loaded" in message
    assert outcome.report["quarantine_path"] in message
    # Written before raising, for inspection.
    assert sorted(outcome.quarantine) == [("A", 1), ("A", 2), ("A", 3)]
    assert outcome.accepted_keys == [("A", 4), ("A", 5)]
    assert outcome.tolerated("qty_out_le_qty_in") is False


@pytest.mark.parametrize(("broken", "raises"), [(1, False), (2, True)])
def test_max_fraction(tmp_path: Path, broken: int, raises: bool) -> None:
    rules = [{**QTY_RULE, "max_fraction": 0.25}]

    outcome = _validate(tmp_path, rules, _broken_qty_rows(broken, 4))

    assert (outcome.error is not None) is raises
    assert outcome.failed("qty_out_le_qty_in") == broken
    assert sorted(outcome.quarantine) == [("A", seq) for seq in range(1, broken + 1)]


def test_every_blocking_rule_is_named_with_its_count(tmp_path: Path) -> None:
    rules = [
        {**QTY_RULE, "max_fraction": 0.1},
        {"type": "range", "column": "yield_pct", "max": 100, "name": "yield_max"},
        {"type": "not_null", "columns": ["status"], "max_failures": 1},
    ]
    rows = [*_broken_qty_rows(2, 4), _row("B", 1, yield_pct=101.0, status=None)]

    outcome = _validate(tmp_path, rules, rows)

    assert outcome.error is not None
    message = str(outcome.error)
    assert "2 rule(s) failed beyond tolerance" in message
    assert "(qty_out_le_qty_in: 2 row(s), yield_max: 1 row(s)) of 5 rows" in message
    assert "not_null(status)" not in message
    assert outcome.failed("not_null(status)") == 1


def test_warn_rule_counts_but_keeps_rows(tmp_path: Path) -> None:
    rules = [{**QTY_RULE, "severity": "warn"}]

    outcome = _validate(tmp_path, rules, _broken_qty_rows(2, 4))

    assert outcome.error is None
    assert outcome.failed("qty_out_le_qty_in") == 2
    assert outcome.quarantined == []
    assert outcome.accepted_keys == [("A", s) for s in range(1, 5)]
    assert outcome.report["quarantined"] == 0


def test_warn_rule_before_an_error_rule(tmp_path: Path) -> None:
    """Which rows go to quarantine follows each rule's severity, not its position."""
    rules = [
        {"type": "range", "column": "yield_pct", "max": 100, "severity": "warn"},
        {**QTY_RULE, "max_failures": 5},
    ]
    rows = [
        _row("A", 1),
        _row("A", 2, yield_pct=120.0),  # breaks the warn rule only
        _row("A", 3, qty_out=11),  # breaks the error rule only
    ]

    outcome = _validate(tmp_path, rules, rows)

    assert outcome.error is None
    assert outcome.quarantine == {("A", 3): ["qty_out_le_qty_in"]}
    assert outcome.accepted_keys == [("A", 1), ("A", 2)]


# --- where the accepted rows are ------------------------------------------------


def test_accepted_rows_are_the_extract_less_its_quarantined_rows(
    tmp_path: Path,
) -> None:
    """Nothing is copied: the accepted rows are the extract's files read less the
    quarantined positions, in order (read 2 rows at a time from 2 files, so the
    positions cross batch and file ends). A failed validation accepts nothing."""
    rows = [
        _row("A", seq, qty_out=11 if seq in (2, 3, 6) else 5) for seq in range(1, 8)
    ]
    tenant, table = _lots(tmp_path, [{**QTY_RULE, "max_failures": 3}])

    clean = write_extract(tenant, table, [_row("A", 1)], DAY, extract_id="clean")
    kept = write_extract(tenant, table, rows, DAY, parts=2, extract_id="kept")
    failing = write_extract(tenant, table, rows * 2, DAY, extract_id="failing")
    clean_report = validate_extract(tenant, table, clean)
    kept_report = validate_extract(tenant, table, kept)
    with pytest.raises(ValidationFailed):
        validate_extract(tenant, table, failing)

    for report, extract in ((clean_report, clean), (kept_report, kept)):
        assert report.accepted_path == extract.folder
        assert report.accepted_files == [f.path for f in extract.files]
    assert len(kept.files) == 2
    assert sorted(p.name for p in Path(f"{kept.folder}/validated").iterdir()) == [
        "quarantine.parquet",
        "report.json",
    ]
    quarantine = pq.read_table(kept_report.quarantine_path)
    assert quarantine.column(ROW_COLUMN).to_pylist() == [1, 2, 5]
    accepted = accepted_rows(Lake(tenant), kept_report)
    assert accepted.count_rows() == 4
    batches = list(accepted.to_batches(batch_size=2))
    got = pa.Table.from_batches(batches, accepted.schema).to_pylist()
    assert [row["seq"] for row in got] == [1, 4, 5, 7]
    assert got == [rows[i] for i in (0, 3, 4, 6)]
    failed = json.loads(
        Path(f"{failing.folder}/validated/report.json").read_text(encoding="utf-8")
    )
    assert (failed["accepted_path"], failed["accepted_files"]) == ("", [])


@pytest.mark.parametrize("name", ["file_index", "file_row_number"])
def test_a_column_named_like_a_row_position_is_refused_by_name(
    tmp_path: Path, name: str
) -> None:
    """DuckDB numbers the extract's rows with these virtual columns; a real
    column of that name would hide them and misplace the quarantine."""
    columns = [*LOT_COLUMNS, {"name": name, "type": "bigint"}]
    tenant, table = _lots(tmp_path, [], columns)
    manifest = write_extract(tenant, table, [{**_row("A", 1), name: 7}], DAY)

    with pytest.raises(ConfigError) as caught:
        validate_extract(tenant, table, manifest)

    assert (caught.value.tenant, caught.value.table) == ("acme", "lots")
    assert caught.value.column == name
    assert f"column {name!r} hides the row positions" in str(caught.value)


# --- the report ----------------------------------------------------------------


def test_report_json_matches_the_returned_report(tmp_path: Path) -> None:
    tenant, table = _lots(
        tmp_path,
        [
            {**QTY_RULE, "max_failures": 1},
            {**QTY_RULE, "name": "w", "severity": "warn"},
        ],
    )
    manifest = write_extract(tenant, table, _broken_qty_rows(1, 3), DAY)

    report = validate_extract(tenant, table, manifest)

    folder = f"{manifest.folder}/validated"
    on_disk = ValidationReport.model_validate_json(
        Path(f"{folder}/report.json").read_text(encoding="utf-8")
    )
    assert on_disk == report
    assert (report.tenant_id, report.table, report.extract_id) == (
        "acme",
        "lots",
        manifest.extract_id,
    )
    assert report.production_day == DAY.day
    assert (report.rows, report.accepted, report.quarantined) == (3, 2, 1)
    assert report.accepted_path == manifest.folder
    assert report.quarantine_path == f"{folder}/quarantine.parquet"
    assert [(r.name, r.severity, r.failed, r.tolerated) for r in report.rules] == [
        ("required_columns", "error", 0, True),
        ("primary_key_unique", "error", 0, True),
        ("qty_out_le_qty_in", "error", 1, True),
        ("w", "warn", 1, False),
    ]
    assert report.blocking == []
