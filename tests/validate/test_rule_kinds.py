"""The rule kinds as a whole: each is one class, registered once, that compiles
to the check class of its evaluation strategy; results are tagged by scope;
every rule module can be the first thing a process imports."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

import mozart_etl.validate.rules as rules_package
from mozart_etl.validate.rules import RULE_KINDS, RuleBase, RuleContext, compile_rules
from mozart_etl.validate.rules.checks import (
    BrokenKeys,
    DuplicateKey,
    RowPredicate,
    RowRuleResult,
    RuleResult,
    TableAggregate,
    TableRuleResult,
)
from mozart_etl.validate.validator import ValidationReport
from tests.helpers import make_tenant, table_dict

ROOT = Path(__file__).resolve().parents[2]
RULE_MODULES = sorted(
    f"mozart_etl.validate.rules.{info.name}"
    for info in pkgutil.iter_modules(rules_package.__path__)
)
COLUMNS = [
    {"name": "lot_id", "type": "string", "nullable": False},
    {"name": "step", "type": "int", "nullable": False},
    {"name": "qty", "type": "bigint"},
    {"name": "amount", "type": "decimal", "precision": 10, "scale": 2},
    {"name": "arrived_at", "type": "timestamptz"},
    {"name": "left_at", "type": "timestamptz"},
    {"name": "updated_at", "type": "timestamptz"},
]
WINDOW_END = datetime(2026, 11, 15, 15, tzinfo=UTC)


def _kind_names() -> list[str]:
    return [kind.model_fields["type"].annotation.__args__[0] for kind in RULE_KINDS]


def test_every_rule_class_in_the_rule_modules_is_registered_once() -> None:
    """A kind written but not added to `Rule` would be refused by tenant.yaml."""
    defined = {
        cls
        for name in RULE_MODULES
        for _, cls in inspect.getmembers(importlib.import_module(name), inspect.isclass)
        if issubclass(cls, RuleBase) and "type" in cls.model_fields
    }

    assert set(RULE_KINDS) == defined
    assert len(set(_kind_names())) == len(RULE_KINDS)


def test_docs_list_every_rule_kind() -> None:
    text = (ROOT / "docs" / "validation.md").read_text(encoding="utf-8")

    assert [kind for kind in _kind_names() if f"| `{kind}` |" not in text] == []


@pytest.mark.parametrize(
    "module",
    ["mozart_etl.core.calendar", "mozart_etl.validate.validator", *RULE_MODULES],
)
def test_a_rule_module_imports_first_in_a_fresh_process(module: str) -> None:
    """The config schema imports the rule registry, and the rule modules import
    the config package: no import order may meet a half-loaded module."""
    probe = f"import {module}; from mozart_etl.config.models import TableConfig"

    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stderr


def _compiled(tmp_path: Path, rules: list[dict[str, Any]], **table: Any) -> list[Any]:
    lots = table_dict(
        "lots", COLUMNS, primary_key=["lot_id", "step"], rules=rules, **table
    )
    config = make_tenant(tmp_path, [lots]).table("lots")
    return compile_rules(config, RuleContext(table=config, window_end=WINDOW_END))


def test_each_kind_compiles_to_the_check_of_its_strategy(tmp_path: Path) -> None:
    rules = [
        {"type": "not_null", "columns": ["qty"]},
        {"type": "unique", "columns": ["qty", "lot_id"]},
        {"type": "accepted_values", "column": "lot_id", "values": ["A", "B"]},
        {"type": "range", "column": "qty", "min": 0, "inclusive": False},
        {"type": "pattern", "column": "lot_id", "pattern": "L-[0-9]+"},
        {"type": "expression", "name": "positive", "expr": "qty > 0"},
        {
            "type": "sequence",
            "partition_by": ["lot_id"],
            "order_by": "step",
            "start": "arrived_at",
            "previous_end": "left_at",
        },
        {"type": "decimal_fits", "column": "amount", "max_failures": 2},
        {"type": "row_count", "min": 1, "max": 10},
        {"type": "freshness", "max_age_hours": 6},
    ]

    checks = _compiled(tmp_path, rules, mode="merge", cursor="updated_at")

    assert [(type(c).__name__, c.name) for c in checks] == [
        ("RowPredicate", "required_columns"),
        ("DuplicateKey", "primary_key_unique"),
        ("RowPredicate", "not_null(qty)"),
        ("DuplicateKey", "unique(qty,lot_id)"),
        ("RowPredicate", "accepted_values(lot_id)"),
        ("RowPredicate", "range(qty)"),
        ("RowPredicate", "pattern(lot_id)"),
        ("RowPredicate", "positive"),
        ("BrokenKeys", "sequence(lot_id)"),
        ("DecimalFitsPredicate", "decimal_fits(amount)"),
        ("TableAggregate", "row_count"),
        ("TableAggregate", "freshness(updated_at)"),
    ]
    required, key, _, unique, values, range_, *_ = checks
    assert (required.sql, required.params) == (
        '"lot_id" IS NULL OR "step" IS NULL',
        [],
    )
    assert isinstance(key, DuplicateKey) and key.key == ["lot_id", "step"]
    assert isinstance(unique, DuplicateKey) and unique.key == ["qty", "lot_id"]
    assert values.params == ["A", "B"]
    assert (range_.sql, range_.params) == (
        '"qty" IS NOT NULL AND ("qty" <= ?)',
        [0.0],
    )
    sequence, decimal, row_count, freshness = checks[8:]
    assert isinstance(sequence, BrokenKeys) and sequence.key == ["lot_id", "step"]
    assert isinstance(decimal, RowPredicate)
    assert (decimal.column, decimal.max_failures) == ("amount", 2)
    assert decimal.broken == (
        "more than 8 integer digit(s): 'amount' is declared decimal(10,2)"
    )
    assert isinstance(row_count, TableAggregate)
    assert (row_count.sql, row_count.params, row_count.expected) == (
        "count(*) < ? OR count(*) > ?",
        [1, 10],
        "rows >= 1 and <= 10",
    )
    assert freshness.params == [datetime(2026, 11, 15, 9, tzinfo=UTC)]


def test_row_results_count_rows_and_table_results_say_what_they_saw(
    tmp_path: Path,
) -> None:
    checks = _compiled(
        tmp_path,
        [
            {"type": "range", "column": "qty", "min": 0, "max_fraction": 0.25},
            {"type": "row_count", "min": 5},
        ],
    )
    by_name = {check.name: check for check in checks}

    within = by_name["range(qty)"].result(failed=2, rows=8)
    beyond = by_name["range(qty)"].result(failed=3, rows=8)
    too_few = by_name["row_count"].result(broken=True, observed=3)

    assert (within.failed, within.tolerated, beyond.tolerated) == (2, True, False)
    assert within.summary() == "range(qty): 2 row(s)"
    assert (too_few.failed, too_few.tolerated) == (1, False)
    assert too_few.summary() == "row_count: count(*) = 3, expected rows >= 5"


def test_results_read_back_by_their_scope() -> None:
    """report.json and XComs written before the tagged results (a table result
    with `column: null`, a row result without `detail`) read back as before."""
    written = [
        {
            "name": "primary_key_unique",
            "kind": "unique",
            "severity": "error",
            "failed": 0,
            "tolerated": True,
            "scope": "row",
            "column": None,
        },
        {
            "name": "row_count",
            "kind": "row_count",
            "severity": "warn",
            "failed": 1,
            "tolerated": False,
            "scope": "table",
            "detail": "count(*) = 0, expected rows >= 1",
            "column": None,
        },
    ]

    row, table = TypeAdapter(list[RuleResult]).validate_python(written)

    assert isinstance(row, RowRuleResult) and row.detail is None
    assert isinstance(table, TableRuleResult)
    assert table.summary() == "row_count: count(*) = 0, expected rows >= 1"
    report = ValidationReport(
        tenant_id="acme",
        table="lots",
        production_day=date(2026, 11, 15),
        extract_id="x",
        rows=0,
        accepted=0,
        quarantined=0,
        rules=[row, table],
        accepted_path="",
        accepted_files=[],
        quarantine_path="q",
    )
    again = ValidationReport.model_validate_json(report.model_dump_json())
    assert again == report
    assert [r.scope for r in again.rules] == ["row", "table"]
    assert report.blocking == []
