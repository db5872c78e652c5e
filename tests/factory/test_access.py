"""tenant.yaml `access` becomes the DAGs' `access_control` (factory/access.py):
the roles the YAML names, or `<id>_viewer` / `<id>_operator` when it names
none, with FAB's permission names. tests/browser/test_tenant_access.py checks
that Airflow enforces them."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml

from mozart_etl.config.loader import load_tenant, project_root
from mozart_etl.config.models import AccessConfig
from mozart_etl.core.errors import ConfigError
from mozart_etl.factory.access import (
    DAG_OPERATE,
    DAG_READ,
    OPERATE_BASE,
    READ_BASE,
    base_permissions,
    tenant_roles,
)
from mozart_etl.factory.dag_factory import build_tenant_dags
from mozart_etl.factory.maintenance_dag import build_maintenance_dags

READ = {"DAGs": {"can_read"}, "DAG Runs": {"can_read"}}
OPERATE = {"DAGs": {"can_read", "can_edit"}, "DAG Runs": {"can_read", "can_create"}}


def _demo(tmp_path: Path, access: dict[str, Any] | None) -> Path:
    folder = tmp_path / "tenants" / "demo"
    shutil.copytree(project_root() / "tenants" / "demo", folder, symlinks=True)
    path = folder / "tenant.yaml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert "access" not in config  # the repository's demo keeps the default
    if access is not None:
        config["access"] = access
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return folder


def _access_controls(folder: Path) -> tuple[Any, Any]:
    """The tenant DAG's and its maintenance DAG's access_control, as built
    from the folder by the DAG files' own builders."""
    tenant_dag = build_tenant_dags(folder.parent)["demo"]
    maintenance = build_maintenance_dags(folder.parent)["demo.maintenance"]
    return tenant_dag.access_control, maintenance.access_control


def test_the_dags_access_control_is_what_tenant_yaml_says(tmp_path: Path) -> None:
    access = {"read": ["plant_a_viewer", "auditors"], "operate": ["plant_a_operator"]}
    folder = _demo(tmp_path, access)
    expected = {
        "plant_a_viewer": READ,
        "auditors": READ,
        "plant_a_operator": OPERATE,
    }
    assert _access_controls(folder) == (expected, expected)


def test_without_access_the_roles_are_named_after_the_tenant(tmp_path: Path) -> None:
    folder = _demo(tmp_path, access=None)
    expected = {"demo_viewer": READ, "demo_operator": OPERATE}
    assert _access_controls(folder) == (expected, expected)


def test_one_kind_set_the_other_defaults_and_an_empty_list_grants_none(
    tmp_path: Path,
) -> None:
    folder = _demo(tmp_path, {"read": []})
    assert _access_controls(folder)[0] == {"demo_operator": OPERATE}
    folder = _demo(tmp_path / "b", {"operate": ["shift_leads"]})
    assert _access_controls(folder)[0] == {"demo_viewer": READ, "shift_leads": OPERATE}


def test_a_role_that_reads_and_operates_operates(tmp_path: Path) -> None:
    folder = _demo(tmp_path, {"read": ["plant_a"], "operate": ["plant_a"]})
    assert _access_controls(folder)[0] == {"plant_a": OPERATE}


@pytest.mark.parametrize(
    "access",
    [{"read": ["Viewer"]}, {"operate": ["Admin"]}, {"read": ["bad role!"]}],
    ids=["builtin-viewer", "builtin-admin", "not-a-role-name"],
)
def test_builtin_and_malformed_roles_are_refused(
    tmp_path: Path, access: dict[str, Any]
) -> None:
    # The role init rewrites a tenant role's global permissions: never FAB's own.
    with pytest.raises(ConfigError, match="access"):
        load_tenant(_demo(tmp_path, access))


def test_building_with_access_control_does_not_warn(tmp_path: Path) -> None:
    folder = _demo(tmp_path, access=None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build_tenant_dags(folder.parent)
        build_maintenance_dags(folder.parent)
    assert not [w for w in caught if "security.permissions" in str(w.message)]


def test_roles_across_tenants_operate_wins(tmp_path: Path) -> None:
    demo = load_tenant(_demo(tmp_path, {"read": ["shared"], "operate": ["demo_ops"]}))
    acme = load_tenant(project_root() / "tenants" / "acme")
    shared = AccessConfig(read=[], operate=["shared"])
    other = acme.model_copy(update={"access": shared})
    roles = tenant_roles([demo, other])
    assert roles == {"shared": "operate", "demo_ops": "operate"}
    assert tenant_roles([demo]) == {"shared": "read", "demo_ops": "operate"}
    assert base_permissions("read") == READ_BASE < OPERATE_BASE


def test_no_tenant_role_holds_a_permission_on_every_dag() -> None:
    """FAB checks a global `DAGs` permission before the DAG's own: one in the
    base set would open every tenant's DAG to every tenant role."""
    for action, resource in OPERATE_BASE:
        assert resource != "DAGs" or action == "menu_access"
    assert ("can_create", "DAG Runs") not in OPERATE_BASE  # trigger: per DAG only


def test_names_are_the_installed_fab_providers() -> None:
    permissions = pytest.importorskip("airflow.providers.fab.www.security.permissions")
    names = vars(permissions)
    strings = {k: v for k, v in names.items() if isinstance(v, str)}
    resources = {v for k, v in strings.items() if k.startswith("RESOURCE_")}
    actions = {v for k, v in strings.items() if k.startswith("ACTION_")}
    assert {resource for _, resource in OPERATE_BASE} <= resources
    assert {action for action, _ in OPERATE_BASE} <= actions
    details = permissions.RESOURCE_DETAILS_MAP
    for grant in (DAG_READ, DAG_OPERATE):
        for resource, granted in grant.items():
            assert granted <= details[resource]["actions"], resource
