"""`transform:` in tenant.yaml: its shape is checked with the schema, its module
file by `mozart validate` (the module itself is imported only by its task)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
import yaml

from mozart_etl.config.loader import load_tenant
from mozart_etl.core.errors import ConfigError
from mozart_etl.ops.cli import main
from mozart_etl.ops.scaffold import new_tenant
from mozart_etl.transform.reference import check_transform_files
from tests.helpers import table_dict, tenant_dict

COLUMNS = [{"name": "event_id", "type": "bigint", "nullable": False}]


def _folder(tmp_path: Path, transform: str) -> Path:
    folder = tmp_path / "tenants" / "acme"
    folder.mkdir(parents=True)
    table = table_dict("events", COLUMNS, primary_key=["event_id"], transform=transform)
    data = tenant_dict(tmp_path, [table])
    (folder / "tenant.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return folder


def test_a_malformed_reference_names_table_and_field(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "transforms.normalise")
    with pytest.raises(ConfigError) as caught:
        load_tenant(folder)
    assert "  - tables[events].transform: String should match pattern" in str(
        caught.value
    )


def test_validate_reports_a_missing_module_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = _folder(tmp_path, "plant.rules:normalise")
    assert load_tenant(folder).table("events").transform == "plant.rules:normalise"
    caplog.set_level(logging.INFO)

    assert main(["--tenants-dir", str(tmp_path / "tenants"), "validate"]) == 1
    assert (
        f"[tenant=acme table=events] {folder / 'tenant.yaml'}: tables[events]."
        f"transform: 'plant.rules:normalise' needs the file "
        f"{folder / 'plant' / 'rules.py'}, which does not exist"
    ) in caplog.text

    (folder / "plant").mkdir()
    (folder / "plant" / "rules.py").write_text("def normalise(batches):\n    ...\n")
    assert main(["--tenants-dir", str(tmp_path / "tenants"), "validate"]) == 0


def test_the_template_scaffolds_a_transform_and_a_prod_override(
    tmp_path: Path,
) -> None:
    root = Path(__file__).resolve().parents[2]
    tenants = tmp_path / "tenants"
    tenants.mkdir()
    shutil.copytree(root / "tenants" / "_template", tenants / "_template")
    folder = new_tenant("plant_z", tenants)

    local = load_tenant(folder)
    check_transform_files(folder, local)  # transforms.py came along
    assert local.table("equipment_event").transform == (
        "transforms:normalise_equipment_id"
    )
    assert local.alerting.emails == []
    prod = load_tenant(folder, env="prod")
    assert prod.alerting.emails == ["plant_z-oncall@example.com"]
    assert prod.model_copy(update={"alerting": local.alerting}) == local
