"""Per-tenant access in Airflow: tenant.yaml `access` as the DAGs'
`access_control`, and the global permissions every tenant role holds.

Airflow 3 enforces DAG-level access only through the FAB auth manager (the
stack's): the dag-processor writes a DAG's `access_control` into FAB's
permission tables whenever it serializes the DAG, and the api-server checks
those for the UI and the REST API alike. Under another auth manager the
mapping is parsed and ignored.

FAB decides in two steps, and a tenant role needs both:

- DAG-level (`DAG:<dag_id>`, `DAG Run:<dag_id>`), from `access_control`:
  `can_read` on the DAG lets a role see it, `can_edit` lets it pause, clear
  and mark it, `can_create` on its runs lets it trigger.
- Global permissions on the DAG's sub-entities (task instances, logs, XComs,
  run edits): FAB has no per-DAG variant of those, and it always checks them
  together with the DAG-level permission above, so they reveal or change
  nothing of a DAG the role cannot read. The stack's role init
  (stack/airflow/tenant_roles.py) gives every tenant role exactly
  `READ_BASE` or `OPERATE_BASE`. Neither holds a permission on the resource
  `DAGs` itself: that would open every tenant's DAG.

This module imports neither Airflow nor FAB: the names are FAB's resource and
action strings (`airflow.providers.fab.www.security.permissions`), which
tests/factory/test_access.py checks against the installed provider.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Literal

from mozart_etl.config.models import TenantConfig

Permission = tuple[str, str]
"""(action, resource) as FAB names them, e.g. ("can_read", "Task Logs")."""
AccessControl = dict[str, dict[str, set[str]]]
"""role -> {"DAGs" | "DAG Runs": actions}: Airflow's `DAG(access_control=...)`."""
RoleKind = Literal["read", "operate"]

DAGS = "DAGs"
DAG_RUNS = "DAG Runs"
READ = "can_read"
EDIT = "can_edit"
CREATE = "can_create"
MENU = "menu_access"

DAG_READ: dict[str, frozenset[str]] = {
    DAGS: frozenset({READ}),
    DAG_RUNS: frozenset({READ}),
}
"""A reader's DAG-level grants: the DAG and its runs, read only."""
DAG_OPERATE: dict[str, frozenset[str]] = {
    DAGS: frozenset({READ, EDIT}),  # edit: pause, clear, mark success/failed
    DAG_RUNS: frozenset({READ, CREATE}),  # create: trigger
}
"""An operator's: also edit the DAG and create (trigger) its runs. Deleting
runs or the DAG stays with Admin."""

READ_BASE: frozenset[Permission] = frozenset(
    {
        (READ, "Website"),
        (READ, DAG_RUNS),
        (READ, "Task Instances"),
        (READ, "Task Logs"),
        (READ, "XComs"),
        (READ, "DAG Code"),
        (READ, "DAG Dependencies"),
        (READ, "DAG Versions"),
        (READ, "DAG Warnings"),
        (READ, "HITL Detail"),
        (READ, "My Profile"),
        (EDIT, "My Profile"),
        (READ, "My Password"),
        (EDIT, "My Password"),
        (MENU, DAGS),
        (MENU, DAG_RUNS),
        (MENU, "Task Instances"),
        (MENU, "Browse"),
        (MENU, "Docs"),
        (MENU, "Documentation"),
    }
)
"""Global permissions of every tenant role: FAB's Viewer less everything not
scoped by DAG (the `DAGs` resource, assets, pools, jobs, import errors,
cluster activity), which would show other tenants' names or figures."""
OPERATE_BASE: frozenset[Permission] = READ_BASE | {
    (EDIT, DAG_RUNS),  # mark a run, clear it
    (EDIT, "Task Instances"),  # clear and mark tasks
    (EDIT, "HITL Detail"),
}
"""An operator role's: clearing and marking need global edit on runs and task
instances (FAB has no per-DAG form of it), confined by `can_edit` on the DAG."""


def access_control(tenant: TenantConfig) -> AccessControl:
    """The `access_control` of the tenant's DAGs: its read roles see them, its
    operate roles also run them (a role in both lists operates)."""
    access = tenant.access
    grants = {role: DAG_READ for role in access.read_roles(tenant.tenant_id)}
    grants |= {role: DAG_OPERATE for role in access.operate_roles(tenant.tenant_id)}
    return {
        role: {resource: set(actions) for resource, actions in grant.items()}
        for role, grant in grants.items()
    }


def tenant_roles(tenants: Iterable[TenantConfig]) -> dict[str, RoleKind]:
    """Every role some tenant names, and whether it operates any tenant (then
    its global permissions are `OPERATE_BASE`, else `READ_BASE`)."""
    roles: dict[str, RoleKind] = {}
    for tenant in tenants:
        for role in tenant.access.read_roles(tenant.tenant_id):
            roles.setdefault(role, "read")
        for role in tenant.access.operate_roles(tenant.tenant_id):
            roles[role] = "operate"
    return roles


def base_permissions(kind: RoleKind) -> frozenset[Permission]:
    return OPERATE_BASE if kind == "operate" else READ_BASE


@contextmanager
def access_control_warning_silenced() -> Iterator[None]:
    """Around `DAG(access_control=...)`, or on the function that builds it:
    the Task SDK warns on every DAG built with it that
    `airflow.security.permissions` is deprecated. That module is not used
    here, and `access_control` has no successor under the FAB auth manager
    (Airflow's deprecated_permissions page); a warning per tenant per parse
    would only bury real ones in the dag-processor's log."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message="The airflow.security.permissions module is deprecated",
            category=DeprecationWarning,
        )
        yield
