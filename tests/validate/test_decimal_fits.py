"""The implicit `decimal_fits` rule: a decimal value with more integer digits
than its declared `decimal(P,S)` allows is refused, naming the column.

Such values reach the extract's Parquet files from a fast path that checks
only what fits 128 bits, never from pyarrow's own constructors (which refuse
them): the files here are built from the values' unscaled integers.
"""

from __future__ import annotations

from datetime import date
from decimal import Context, Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mozart_etl.core.errors import ValidationFailed
from mozart_etl.core.lake import Lake
from mozart_etl.validate.validator import ROW_COLUMN, validate_extract
from tests.helpers import make_tenant, seoul_day, table_dict, write_extract

DAY = seoul_day(date(2026, 11, 15))
EXACT = Context(prec=80)


def _decimals(values: list[str], precision: int, scale: int) -> pa.Array:
    """A decimal128(P,S) array holding `values` as given, in range or not."""
    unscaled = [int(Decimal(v).scaleb(scale, context=EXACT)) for v in values]
    data = b"".join(n.to_bytes(16, "little", signed=True) for n in unscaled)
    return pa.Array.from_buffers(
        pa.decimal128(precision, scale), len(values), [None, pa.py_buffer(data)]
    )


CASES = {
    # (P, S): (values that fit, values that do not)
    (38, 18): (
        ["99999999999999999999.999999999999999999", "-0.000000000000000001", "0"],
        ["123456789012345678901", "-100000000000000000000", "100000000000000000000.5"],
    ),
    (10, 2): (["99999999.99", "-99999999.99", "0.01"], ["100000000", "-123456789.5"]),
    (5, 5): (["0.99999", "-0.5", "0"], ["1", "-1.00001"]),
    (38, 0): (["99999999999999999999999999999999999999"], ["-10" + "0" * 37]),
}


@pytest.mark.parametrize(("precision", "scale"), sorted(CASES))
def test_values_past_the_declared_precision_fail_naming_the_column(
    tmp_path: Path, precision: int, scale: int
) -> None:
    fit, overflow = CASES[(precision, scale)]
    declared = {"type": "decimal", "precision": precision, "scale": scale}
    columns = [
        {"name": "id", "type": "bigint", "nullable": False},
        {"name": "amount", **declared},
    ]
    tenant = make_tenant(tmp_path, [table_dict("t", columns)])
    table = tenant.table("t")
    manifest = write_extract(tenant, table, [], DAY)
    values = fit + overflow
    pq.write_table(
        pa.table(
            {
                "id": pa.array(range(len(values)), pa.int64()),
                "amount": _decimals(values, precision, scale),
            }
        ),
        manifest.files[0].path,
    )

    with pytest.raises(ValidationFailed) as caught:
        validate_extract(tenant, table, manifest)

    message = str(caught.value)
    assert message.startswith(
        "[tenant=acme table=t column=amount rule=decimal_fits(amount)] "
    ), message
    digits = precision - scale
    assert (
        f"decimal_fits(amount): {len(overflow)} row(s) with more than {digits} "
        f"integer digit(s): 'amount' is declared decimal({precision},{scale})"
    ) in message
    quarantine = message.rsplit("Rejected rows: ", 1)[1]
    held = pq.read_table(quarantine, filesystem=Lake(tenant).fs)
    assert held.column(ROW_COLUMN).to_pylist() == list(range(len(fit), len(values)))


def test_a_table_without_decimals_has_no_such_rule(tmp_path: Path) -> None:
    columns = [{"name": "id", "type": "bigint", "nullable": False}]
    tenant = make_tenant(tmp_path, [table_dict("t", columns)])
    table = tenant.table("t")
    report = validate_extract(
        tenant, table, write_extract(tenant, table, [{"id": 1}], DAY)
    )
    assert [rule.name for rule in report.rules] == [
        "required_columns",
        "primary_key_unique",
    ]


def _amounts_extract(tmp_path: Path, values: list[str], rules: list[dict]):
    columns = [
        {"name": "id", "type": "bigint", "nullable": False},
        {"name": "amount", "type": "decimal", "precision": 12, "scale": 2},
    ]
    tenant = make_tenant(tmp_path, [table_dict("t", columns, rules=rules)])
    table = tenant.table("t")
    manifest = write_extract(tenant, table, [], DAY)
    pq.write_table(
        pa.table(
            {
                "id": pa.array(range(len(values)), pa.int64()),
                "amount": _decimals(values, 12, 2),
            }
        ),
        manifest.files[0].path,
    )
    return tenant, table, manifest


def test_a_declared_decimal_fits_rule_quarantines_up_to_its_tolerance(
    tmp_path: Path,
) -> None:
    """Declared on a column, the rule takes its tolerance: the overflowing
    rows are quarantined and the run goes on; past it, the run fails."""
    values = ["1.50", "12345678901.00", "2.25", "-99999999999.99"]
    rule = {"type": "decimal_fits", "column": "amount", "max_failures": 2}
    tenant, table, manifest = _amounts_extract(tmp_path / "a", values, [rule])

    report = validate_extract(tenant, table, manifest)

    assert (report.quarantined, report.accepted) == (2, 2)
    held = pq.read_table(report.quarantine_path, filesystem=Lake(tenant).fs)
    assert held.column(ROW_COLUMN).to_pylist() == [1, 3]
    assert [r.name for r in report.rules].count("decimal_fits(amount)") == 1

    rule["max_failures"] = 1
    tenant, table, manifest = _amounts_extract(tmp_path / "b", values, [rule])
    with pytest.raises(ValidationFailed, match="column=amount"):
        validate_extract(tenant, table, manifest)


def test_decimal_fits_on_a_column_that_is_not_decimal_is_refused(
    tmp_path: Path,
) -> None:
    rule = {"type": "decimal_fits", "column": "id"}
    with pytest.raises(ValueError, match="decimal_fits needs a decimal column"):
        _amounts_extract(tmp_path, [], [rule])
