"""Create every role the tenants name (tenant.yaml `access`) in the FAB auth
manager, each with exactly its global permissions; run by airflow-init
(init.sh) on every `up`, before the dag-processor starts.

Before, because the dag-processor writes each DAG's `access_control` into
FAB's tables as it serializes the DAG, and a role that does not exist yet
makes that DAG's file an import error. Exactly, because this is what keeps
tenants apart: a tenant role holds no permission on the resource `DAGs`
(every DAG), so what it sees is what `access_control` gives it, DAG by DAG
(mozart_etl/factory/access.py says which permissions and why). A global
permission granted to a tenant role by hand (UI → Security → Roles) is
revoked here; its DAG-level grants are the dag-processor's to keep.
Idempotent: a second run changes nothing. A role no tenant names any more is
left as it is (it may be someone's own); the dag-processor has already
revoked its grants on the tenants' DAGs.

    python stack/airflow/tenant_roles.py   # with the Airflow services' environment
"""

from __future__ import annotations

import sys

from airflow.providers.fab.auth_manager.cli_commands.utils import (
    get_application_builder,
)

from mozart_etl.config.registry import load_all
from mozart_etl.factory.access import Permission, base_permissions, tenant_roles

DAG_SCOPED = ("DAG:", "DAG Run:")
"""Prefixes of the per-DAG resources that `access_control` manages."""


def main() -> int:
    entries = load_all()
    roles = tenant_roles(entry.config for entry in entries if entry.config)
    for entry in entries:
        if entry.config is None:  # its DAG is an error DAG, Admin only
            sys.stdout.write(f"tenant {entry.tenant_id}: invalid, roles not read\n")
    with get_application_builder() as appbuilder:
        security = appbuilder.sm
        for name, kind in sorted(roles.items()):
            role = security.add_role(name)  # returns the role if it exists
            wanted = base_permissions(kind)
            held: dict[Permission, object] = {
                (p.action.name, p.resource.name): p
                for p in role.permissions
                if not p.resource.name.startswith(DAG_SCOPED)
            }
            for key in sorted(held.keys() - wanted):
                security.remove_permission_from_role(role, held[key])
            for action, resource in sorted(wanted - held.keys()):
                permission = security.create_permission(action, resource)
                security.add_permission_to_role(role, permission)
            added, revoked = len(wanted - held.keys()), len(held.keys() - wanted)
            sys.stdout.write(f"role {name} ({kind}): +{added} -{revoked} permissions\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
