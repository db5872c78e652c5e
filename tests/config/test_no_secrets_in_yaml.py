"""No secret in any tenant.yaml, and `mozart config` masks what came from one.

Keys and passwords live in Airflow connections, named by id
(docs/operations.md, "Secrets and connections"). Every tenant.yaml of the
repository (tenants, the scaffold's template, test fixtures), the shared
tenants/_platform.yaml and the tenant settings shown in the docs are read for
(a) a `${VAR}` whose name says it is a secret (`…_SECRET_KEY`, `…_PASSWORD`,
`…_TOKEN`) and (b) a literal value under a secret-named key. The detector is
checked on the lines the tenants held before (it must find them).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mozart_etl.config.environments import reads_secret_variable
from mozart_etl.ops.cli import main
from tests.helpers import table_dict, tenant_dict

ROOT = Path(__file__).resolve().parents[2]
SKIPPED = {".venv", ".git", "node_modules", "dbt_packages", ".mozart"}
SECRET_KEY = re.compile(
    r"pass|secret|token|credential|private|api_?key|access_key", re.I
)
TENANT_KEYS = {"tenant_id", "source", "storage", "iceberg", "dbt", "tables", "publish"}
FENCE = re.compile(r"^```ya?ml\n(.*?)^```", re.M | re.S)


def _yaml_files() -> list[Path]:
    found = [
        path
        for path in ROOT.rglob("tenant.yaml")
        if not SKIPPED & set(path.relative_to(ROOT).parts)
    ]
    return sorted([*found, ROOT / "tenants" / "_platform.yaml"])


def _findings(text: str) -> list[str]:
    """Every secret-named variable and literal secret-keyed value in a YAML
    text (a tenant.yaml, the platform file, or a docs example)."""
    found = [
        f"line {number}: {line.strip()}"
        for number, line in enumerate(text.splitlines(), 1)
        if reads_secret_variable(line.split("#", 1)[0])
    ]
    document = yaml.safe_load(text.replace("__TENANT_ID__", "t")) or {}
    found += [f"{path}: a literal secret" for path in _literal_secrets(document)]
    return found


def _literal_secrets(node: Any, path: str = "") -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            child = f"{path}.{key}" if path else str(key)
            if SECRET_KEY.search(str(key)) and isinstance(value, str | int) and value:
                yield child
            yield from _literal_secrets(value, child)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _literal_secrets(item, f"{path}[{index}]")


def test_every_tenant_yaml_is_read() -> None:
    names = {str(path.relative_to(ROOT)) for path in _yaml_files()}
    assert {
        "tenants/demo/tenant.yaml",
        "tenants/acme/tenant.yaml",
        "tenants/_template/tenant.yaml",
        "tenants/_platform.yaml",
    } <= names


@pytest.mark.parametrize("path", _yaml_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_key_or_password_in_tenant_yaml(path: Path) -> None:
    assert _findings(path.read_text(encoding="utf-8")) == []


def test_no_key_or_password_in_the_docs_tenant_examples() -> None:
    examples = 0
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for block in FENCE.findall(doc.read_text(encoding="utf-8")):
            try:
                document = yaml.safe_load(block)
            except yaml.YAMLError:
                continue  # an excerpt with `…`: not a document
            if not isinstance(document, dict) or not TENANT_KEYS & set(document):
                continue  # a compose excerpt or another file's
            examples += 1
            assert _findings(block) == [], f"{doc.name}:\n{block}"
    assert examples >= 3  # the docs do show tenant settings


def test_the_detector_finds_what_the_tenants_held_before() -> None:
    before = """
storage:
  lake_root: ${MOZART_HOME:.mozart}/lake
  s3:
    endpoint_url: ${MOZART_S3_ENDPOINT:}
    access_key_id: ${MOZART_S3_ACCESS_KEY:}
    secret_access_key: ${MOZART_S3_SECRET_KEY:}
source:
  conn_id: ${MOZART_KEYSPACE_CONN_ID:}
  password: hunter2
"""
    assert [f.split(":")[0] for f in _findings(before)] == [
        "line 6",
        "line 7",
        "storage.s3.access_key_id",
        "storage.s3.secret_access_key",
        "source.password",
    ]


# --- mozart config ----------------------------------------------------------------

OWNER_SECRET = "owner-From-A-Secret-3e9"
EMAIL_SECRET = "oncall-Secret-41@example.com"


def test_mozart_config_masks_values_from_secret_variables(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`owner` is no secret by its name; its value came from `${…_TOKEN}`, so
    it is masked. A value from an ordinary variable is printed as it is."""
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("PLANT_OWNER_TOKEN", OWNER_SECRET)
    monkeypatch.setenv("PLANT_ALERT_PASSWORD", EMAIL_SECRET)
    monkeypatch.setenv("PLANT_DESCRIPTION", "Plant P1")
    data = tenant_dict(
        tmp_path,
        [table_dict("lots", [{"name": "id", "type": "int"}], primary_key=["id"])],
        tenant_id="plant",
    )
    data["owner"] = "${PLANT_OWNER_TOKEN}"
    data["description"] = "${PLANT_DESCRIPTION}"
    data["alerting"] = {"emails": ["ops@example.com", "${PLANT_ALERT_PASSWORD}"]}
    data["dbt"]["vars"] = {"site": "P1", "site_key": "k-${PLANT_OWNER_TOKEN:x}"}
    folder = tmp_path / "tenants" / "plant"
    folder.mkdir(parents=True)
    (folder / "tenant.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")

    code = main(["--tenants-dir", str(tmp_path / "tenants"), "config", "plant"])
    out = capsys.readouterr().out

    assert code == 0
    assert OWNER_SECRET not in out and EMAIL_SECRET not in out
    assert OWNER_SECRET not in caplog.text
    lines = out.splitlines()
    assert "owner: '***'" in lines
    assert "description: Plant P1" in lines
    assert "  emails: [ops@example.com, '***']" in lines
    assert "    site: P1" in lines  # dbt.vars, a free-form mapping
    assert "    site_key: '***'" in lines
