"""Import a tenant's transform module by file path, under a name of its own."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mozart_etl.config.models import TableConfig, TenantConfig
from mozart_etl.core.errors import TransformFailed
from mozart_etl.transform.reference import TransformRef

MODULE_PREFIX = "mozart_tenant_transforms"


def module_name(tenant_id: str, ref: TransformRef) -> str:
    """`mozart_tenant_transforms.<tid>.<module>`: two tenants' `transforms.py`
    never share a module, nor shadow a library of the same name."""
    return f"{MODULE_PREFIX}.{tenant_id}.{ref.module}"


def load_function(
    folder: Path, tenant: TenantConfig, table: TableConfig
) -> Callable[..., Any]:
    """The table's transform function, from a fresh import of its file (a test
    or a worker that ran another copy of the tenant never sees a stale module)."""
    ref = TransformRef.of(table)
    path = ref.path(folder)
    name = module_name(tenant.tenant_id, ref)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None or not path.is_file():
        raise TransformFailed(
            f"transform {ref}: no module file {path}",
            tenant=tenant.tenant_id,
            table=table.name,
        )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look modules up here
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise TransformFailed(
            f"transform {ref}: importing {path} failed: {type(exc).__name__}: {exc}",
            tenant=tenant.tenant_id,
            table=table.name,
        ) from exc
    function = getattr(module, ref.function, None)
    if not callable(function):
        raise TransformFailed(
            f"transform {ref}: {path} defines no function {ref.function!r}",
            tenant=tenant.tenant_id,
            table=table.name,
        )
    return function
