"""`plan_version:` in tenant.yaml: pattern and default checked when loaded; the
DAG's `plan_ver` Param carries the tenant's pattern into the trigger form."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from airflow.sdk.exceptions import ParamValidationError
from pydantic import ValidationError

from mozart_etl.config.loader import load_tenant
from mozart_etl.config.plan_version import PlanVersionConfig
from mozart_etl.factory.dag_factory import plan_ver_param

ROOT = Path(__file__).resolve().parents[2]


def test_default_is_derived_from_the_production_day() -> None:
    plan = load_tenant(ROOT / "tenants" / "demo").plan_version
    assert plan.resolve(None, date(2026, 11, 19)) == "2026-W47"
    assert plan.resolve("", date(2026, 1, 1)) == "2026-W01"
    assert plan.resolve(None, date(2025, 12, 29)) == "2026-W01"  # the ISO year
    assert plan.resolve("SCENARIO-A", date(2026, 11, 19)) == "SCENARIO-A"
    with pytest.raises(ValueError, match=r"'2026-11-W47' does not match"):
        plan.resolve("2026-11-W47", date(2026, 11, 19))
    product = PlanVersionConfig()
    assert product.resolve(None, date(2027, 1, 3)) == "2026-W53"  # ISO year


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"pattern": "[0-9]+"}, "must be anchored"),
        ({"pattern": "^([0-9]$"}, "plan_version.pattern"),
        ({"pattern": "^W[0-9]{2}$", "default": "%Y-W%V"}, "gives '2024-W01'"),
        # The tenant's pattern may be loose; a plan version stays a plain token.
        ({"pattern": "^.*$", "default": "%Y '%V'"}, "gives \"2024 '01'\""),
        # A version names one planning period, once.
        (
            {"pattern": "^.*$", "default": "%Y-%m-W%V"},
            r"gives ISO week 2024-W05 two names \('2024-01-W05' and '2024-02-W05'\)",
        ),
        (
            {"pattern": "^.*$", "default": "%Y-W%V"},
            r"names two periods '2024-W01' \(2024-01-01 and 2024-12-30\)",
        ),
    ],
)
def test_bad_settings_are_refused(settings: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PlanVersionConfig.model_validate(settings)


def test_param_validates_against_the_tenant_pattern() -> None:
    tenant = load_tenant(ROOT / "tenants" / "demo")
    param = plan_ver_param(tenant)
    assert param.schema["pattern"] == tenant.plan_version.pattern
    assert param.resolve("SCENARIO-B") == "SCENARIO-B"
    assert param.resolve(None) is None  # empty: the run derives the default
    with pytest.raises(ParamValidationError, match=r"\^\(\[0-9\]\{4\}"):
        param.resolve("scenario b")
